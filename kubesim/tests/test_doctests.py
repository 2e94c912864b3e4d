"""The examples in kubesim's docstrings run and hold."""

from __future__ import annotations

import doctest
import importlib
from pathlib import Path

import pytest

import kubesim

PACKAGE = Path(kubesim.__file__).parent


def modules_with_examples() -> list[str]:
    """Dotted names of the package's modules whose docstrings hold ``>>>`` examples."""
    names = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if "tests" in path.relative_to(PACKAGE).parts:
            continue
        if ">>> " in path.read_text():
            relative = path.relative_to(PACKAGE.parent).with_suffix("")
            names.append(".".join(relative.parts))
    return names


def test_there_are_docstring_examples_to_run() -> None:
    assert "kubesim.quantity" in modules_with_examples()


@pytest.mark.parametrize("name", modules_with_examples())
def test_docstring_examples_hold(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed in {name}"
