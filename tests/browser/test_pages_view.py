"""What the pages say, rendered without a server: failures, states, Kubernetes status."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from raworc_spawner.handlers import pages_view as view
from raworc_spawner.sessions.model import SessionState

POD_STATUS: dict[str, Any] = {
    "backend": "kubernetes",
    "namespace": "raworc-sessions",
    "compute": {"state": "running", "reason": None, "message": None},
    "pod": {
        "name": "session-1234",
        "phase": "Running",
        "node": "node-a",
        "pod_ip": "10.1.2.3",
        "host_ip": "192.168.0.7",
        "image": "python:3.11-slim",
        "resources": {
            "requests": {"cpu": "100m", "memory": "128Mi"},
            "limits": {"cpu": "1000m", "memory": "1Gi"},
        },
        "conditions": [{"type": "Ready", "status": "True", "reason": None, "message": None}],
        "containers": [{"name": "session", "state": "running", "ready": True, "restart_count": 0}],
    },
    "pvc": {
        "name": "session-pvc-1234",
        "phase": "Bound",
        "storage_class": "standard",
        "requested": "1Gi",
        "capacity": "1Gi",
        "volume_name": "pvc-abcd",
        "access_modes": ["ReadWriteOnce"],
    },
    "events": [
        {
            "type": "Warning",
            "reason": "BackOff",
            "object": "Pod/session-1234",
            "message": "<b>back-off</b> pulling image",
            "count": 3,
        }
    ],
}


def session(**fields: Any) -> dict[str, Any]:
    """A session as the API represents it."""
    base = {
        "id": "8f0c1f5e-0000-4000-8000-000000000001",
        "name": "s",
        "owner": "alice",
        "namespace": "default",
        "state": "ready",
        "profile": None,
        "starting_prompt": "",
        "waiting_timeout_seconds": None,
        "container_id": None,
        "persistent_volume_id": None,
        "created_at": "2026-01-01T00:00:00Z",
        "started_at": None,
        "last_activity_at": None,
        "terminated_at": None,
        "termination_reason": None,
        "error": None,
    }
    return {**base, **fields}


def test_the_live_scripts_listen_for_every_kind_a_stream_can_carry_and_no_other() -> None:
    kinds = view.live_data()["kinds"]
    for kind in ("created", "ready", "paused", "failed", "deleted", "progress", "warning"):
        assert kind in kinds
    assert "retention-warning" in kinds and "restarting" in kinds
    # Nothing emits these as session event kinds (lost compute and exits are reported as
    # warning/paused/restarting/failed), so no listener is registered for them.
    for kind in ("remixed", "exited", "lost"):
        assert kind not in kinds


def test_every_session_state_has_a_label_and_idle_reads_as_sleeping() -> None:
    for state in SessionState:
        assert view.STATES[state.value].label and view.STATES[state.value].description
    assert view.state_view("idle").label == "sleeping — wakes on next request"
    assert view.state_view("someday").label == "someday"


@pytest.mark.parametrize(
    ("reason", "words"),
    [
        ("ErrImagePull", "KUBERNETES_IMAGE"),
        ("ImagePullBackOff", "can't be pulled"),
        ("Unschedulable", "No node can run the session"),
        ("ProvisioningFailed", "KUBERNETES_STORAGE_CLASS"),
        ("OOMKilled", "ran out of memory"),
        ("ProcessExited", "process exited"),
        ("Timeout", "took too long"),
        ("ComputeLost", "compute was lost"),
    ],
)
def test_a_failure_reason_is_explained_with_what_to_do(reason: str, words: str) -> None:
    failed = session(state="error", termination_reason=reason, error=f"{reason}: it broke")
    explanation = view.explain(failed)
    assert explanation is not None
    assert explanation["reason"] == reason and explanation["detail"] == "it broke"
    text = " ".join((explanation["title"], explanation["meaning"], explanation["action"]))
    assert words in text


def test_the_reason_is_read_from_the_error_when_no_termination_reason_is_kept() -> None:
    failed = session(state="error", error="Unschedulable: 0/3 nodes are available")
    explanation = view.explain(failed)
    assert explanation is not None and explanation["title"] == "No node can run the session"
    assert explanation["detail"] == "0/3 nodes are available"


def test_an_unknown_reason_still_gets_a_useful_explanation() -> None:
    explanation = view.explain(session(state="error", error="something odd happened"))
    assert explanation is not None and explanation["reason"] is None
    assert explanation["title"] == "The session failed"
    assert explanation["detail"] == "something odd happened"
    assert view.explain(session(state="ready")) is None


def test_an_idle_session_says_why_it_sleeps() -> None:
    assert view.sleep_note(session(state="idle", termination_reason="Culled"))
    assert view.sleep_note(session(state="ready")) is None


def test_ages_and_resources_read_naturally() -> None:
    now = datetime(2026, 1, 1, 3, 0, 0, tzinfo=UTC)
    assert view.age("2026-01-01T02:59:30Z", now=now) == "just now"
    assert view.age("2026-01-01T02:55:00Z", now=now) == "5 min ago"
    assert view.age("2025-12-30T03:00:00Z", now=now) == "2 d ago"
    resources = {"cpu_request": "100m", "cpu_limit": "1", "memory_request": "128Mi"}
    assert view.resources_text(resources) == "CPU 100m to 1 · memory 128Mi to ?"
    catalog = {"small": {"default": True, "resources": resources}}
    assert view.profile_text(None, catalog).startswith("small (CPU 100m")
    assert view.profile_text(None, {}) == "local process"


def test_the_kubernetes_panel_shows_node_ips_requests_limits_conditions_and_events() -> None:
    html = view.render(
        "_panel.html",
        {
            "session": session(),
            "state": view.state_view("ready"),
            "explanation": None,
            "sleep_note": None,
            "actions": view.actions_for("ready"),
            "compute": POD_STATUS,
            "kube_events": POD_STATUS["events"],
            "xsrf_token": "t",
        },
    )
    for text in ("node-a", "10.1.2.3", "192.168.0.7", "1000m", "128Mi", "Ready", "Bound"):
        assert text in html
    assert "session-pvc-1234" in html and "ReadWriteOnce" in html
    assert "&lt;b&gt;back-off&lt;/b&gt;" in html and "<b>back-off" not in html
