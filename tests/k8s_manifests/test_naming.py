"""Object names, label sanitizing and recognising a session's objects."""

from __future__ import annotations

import datetime as dt
import re
from types import SimpleNamespace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from raworc_spawner.backends.kubernetes.naming import (
    SESSION_SELECTOR,
    annotation_time,
    foreign_selector,
    instance_selector,
    is_label_value,
    label_value,
    parse_annotation_time,
    pod_name,
    pvc_name,
    session_id_of,
    session_labels,
    unowned_selector,
)
from tests.k8s_manifests.conftest import SESSION_ID

LABEL_RE = re.compile(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?")


def test_pod_and_pvc_names_follow_the_seed() -> None:
    assert pod_name(SESSION_ID) == f"session-{SESSION_ID}"
    assert pvc_name(SESSION_ID) == f"session-pvc-{SESSION_ID}"


def test_an_id_that_cannot_make_an_object_name_is_refused() -> None:
    with pytest.raises(ValueError, match="DNS-1123"):
        pod_name("Not An Id")


def test_valid_label_values_are_kept_as_they_are() -> None:
    for name in ("ml-training-session", "a", "A.b_c-9", ""):
        assert label_value(name) == name


@pytest.mark.parametrize(
    "name",
    ["x" * 64, "ml training", "-leading", "trailing.", "café ☕", "数据分析", "a/b:c", "  ", "---"],
)
def test_invalid_names_become_valid_label_values(name: str) -> None:
    value = label_value(name)
    assert len(value) <= 63 and LABEL_RE.fullmatch(value), value
    assert value == label_value(name)  # deterministic


def test_sanitized_names_keep_the_readable_part() -> None:
    assert label_value("ml training").startswith("ml-training-")
    assert label_value("café").startswith("cafe-")


def test_names_that_sanitize_alike_stay_distinct() -> None:
    names = ["ml training", "ml_training ", "ml/training", "x" * 64, "x" * 65, "数据", "分析"]
    values = [label_value(n) for n in names]
    assert len(set(values)) == len(names)


@given(st.text(max_size=200))
def test_any_text_becomes_a_valid_label_value(text: str) -> None:
    value = label_value(text)
    assert is_label_value(value)
    assert LABEL_RE.fullmatch(value) and len(value) <= 63


@given(st.text(max_size=80), st.text(max_size=80))
def test_distinct_texts_get_distinct_label_values(a: str, b: str) -> None:
    if a != b:
        assert label_value(a) != label_value(b)


def test_session_labels_are_the_four_contract_labels() -> None:
    assert session_labels(SESSION_ID, "ml training") == {
        "app": "raworc",
        "component": "session",
        "session-id": SESSION_ID,
        "session-name": label_value("ml training"),
    }
    assert SESSION_SELECTOR == "app=raworc,component=session"


def test_the_session_id_is_read_from_metadata_in_any_shape() -> None:
    labels = session_labels(SESSION_ID, "x")
    assert session_id_of({"labels": labels}) == SESSION_ID
    assert session_id_of({"metadata": {"labels": labels}}) == SESSION_ID
    assert session_id_of(SimpleNamespace(labels=labels)) == SESSION_ID


def test_objects_that_are_not_a_sessions_have_no_session_id() -> None:
    assert session_id_of({"labels": None}) is None
    assert session_id_of({"labels": {"session-id": SESSION_ID}}) is None
    assert session_id_of({"labels": {"app": "raworc", "component": "server"}}) is None
    assert session_id_of(SimpleNamespace(labels=None)) is None


def test_the_selectors_pick_one_instance_the_others_or_the_unowned() -> None:
    assert instance_selector("raworc-3f9a1c0b2d") == (
        "app=raworc,component=session,raworc.dev/instance=raworc-3f9a1c0b2d"
    )
    assert foreign_selector("raworc") == "app=raworc,component=session,raworc.dev/instance!=raworc"
    assert unowned_selector() == "app=raworc,component=session,!raworc.dev/instance"


def test_annotation_times_are_rfc3339_utc_with_z_and_read_back_equal() -> None:
    paris = dt.timezone(dt.timedelta(hours=1))
    moment = dt.datetime(2025, 1, 15, 11, 30, 0, 123456, tzinfo=paris)
    text = annotation_time(moment)
    assert text == "2025-01-15T10:30:00.123456Z"
    assert parse_annotation_time(text) == moment
    assert annotation_time(dt.datetime(2025, 1, 15, 10, 30)) == "2025-01-15T10:30:00Z"


@pytest.mark.parametrize("text", [None, "", "yesterday", "2025-01-15T10:30:00", 7])
def test_an_annotation_that_is_not_an_rfc3339_time_reads_as_none(text: object) -> None:
    assert parse_annotation_time(text) is None
