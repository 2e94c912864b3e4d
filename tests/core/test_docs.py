"""The configuration reference in docs/ is the one the code generates."""

from __future__ import annotations

from pathlib import Path

from raworc_spawner.docgen import render

ROOT = Path(__file__).resolve().parents[2]


def test_the_configuration_reference_is_up_to_date_with_the_traits() -> None:
    committed = (ROOT / "docs" / "configuration.md").read_text()
    assert committed == render(), "docs/configuration.md is stale: run `make docs`"
