"""Fixtures for manifest tests: a sample session, a renderer factory and strict schema checks."""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable
from typing import Any

import pytest

from raworc_spawner.backends.base import SessionSpec
from raworc_spawner.backends.kubernetes.manifests import ManifestRenderer
from raworc_spawner.backends.kubernetes.settings import KubernetesSettings

SESSION_ID = "66709101-b7dd-460f-95a3-799177797a5c"
KUBERNETES_VERSION = "1.32"
CREATED_AT = dt.datetime(2025, 1, 15, 10, 30, 0, tzinfo=dt.UTC)


def make_spec(**overrides: Any) -> SessionSpec:
    """The seed's example session, with fields replaced by ``overrides``."""
    fields: dict[str, Any] = {
        "session_id": SESSION_ID,
        "name": "ml-training-session",
        "owner": "ann",
        "starting_prompt": "ML model training environment",
        "namespace": "research",
        "created_at": CREATED_AT,
    }
    fields.update(overrides)
    return SessionSpec(**fields)


def make_renderer(*, instance_name: str = "raworc", **settings: Any) -> ManifestRenderer:
    """A renderer for ``instance_name`` over KubernetesSettings built from keyword settings."""
    return ManifestRenderer(KubernetesSettings(**settings), instance_name=instance_name)


@functools.cache
def _validator() -> Callable[..., str]:
    import kubernetes_validate  # slow to import: only when a test needs it

    return kubernetes_validate.validate  # type: ignore[no-any-return]


def validate_strictly(manifest: dict[str, Any]) -> None:
    """Validate against the Kubernetes JSON schema, rejecting unknown fields."""
    _validator()(manifest, KUBERNETES_VERSION, strict=True)


@pytest.fixture
def spec() -> SessionSpec:
    """The seed's example session."""
    return make_spec()
