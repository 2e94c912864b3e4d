"""Names, labels and annotations of the Kubernetes objects a session owns.

The seed's contract: a pod ``session-{id}`` and a PVC ``session-pvc-{id}``, both labelled
``app=raworc, component=session, session-id=<id>, session-name=<name>``. A session name is free
text, so its label is sanitized (:func:`label_value`) and the raw name kept in an annotation.

>>> pod_name("66709101-b7dd-460f-95a3-799177797a5c")
'session-66709101-b7dd-460f-95a3-799177797a5c'
>>> label_value("ml-training-session")
'ml-training-session'
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import unicodedata
from collections.abc import Mapping
from typing import Any

APP_LABEL = "app"
COMPONENT_LABEL = "component"
SESSION_ID_LABEL = "session-id"
SESSION_NAME_LABEL = "session-name"
CONTRACT_LABELS = (APP_LABEL, COMPONENT_LABEL, SESSION_ID_LABEL, SESSION_NAME_LABEL)
APP = "raworc"
COMPONENT = "session"
SESSION_SELECTOR = f"{APP_LABEL}={APP},{COMPONENT_LABEL}={COMPONENT}"
#: The owner instance, as a label (to select by) and as an annotation (the same value).
INSTANCE_LABEL = "raworc.dev/instance"
INSTANCE_ANNOTATION = "raworc.dev/instance"
#: Labels the server sets on every session object; settings may not override them.
RESERVED_LABELS = (*CONTRACT_LABELS, INSTANCE_LABEL)

ANNOTATION_PREFIX = "raworc.dev/"
SESSION_NAME_ANNOTATION = "raworc.dev/session-name"
OWNER_ANNOTATION = "raworc.dev/owner"
PROFILE_ANNOTATION = "raworc.dev/profile"
NAMESPACE_ANNOTATION = "raworc.dev/namespace"
CREATED_AT_ANNOTATION = "raworc.dev/created-at"
CLONED_FROM_ANNOTATION = "raworc.dev/cloned-from"
SPEC_HASH_ANNOTATION = "raworc.dev/spec-hash"
WAITING_TIMEOUT_ANNOTATION = "raworc.dev/waiting-timeout-seconds"
HUB_USER_ANNOTATION = "raworc.dev/hub-user"
HUB_SERVER_ANNOTATION = "raworc.dev/hub-server-name"

NETWORK_POLICY_NAME = "session-pods-isolation"

POD_PREFIX = "session-"
PVC_PREFIX = "session-pvc-"

#: The pod's session container, its volumes and where they are mounted (the templates use them).
MAIN_CONTAINER = "session"
WORKSPACE_VOLUME = "workspace"
TMP_VOLUME = "tmp"
WORKSPACE_PATH = "/workspace"
TMP_PATH = "/tmp"

LABEL_VALUE_MAX = 63
_LABEL_VALUE_RE = re.compile(r"([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?")
_NOT_ALLOWED_RE = re.compile(r"[^-A-Za-z0-9_.]+")
_DNS1123_SUBDOMAIN_RE = re.compile(
    r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*"
)
_HASH_LEN = 8


def pod_name(session_id: str) -> str:
    """The name of a session's pod: ``session-{id}``."""
    return _object_name(f"{POD_PREFIX}{session_id}")


def pvc_name(session_id: str) -> str:
    """The name of a session's workspace claim: ``session-pvc-{id}``."""
    return _object_name(f"{PVC_PREFIX}{session_id}")


def is_label_value(text: str) -> bool:
    """Whether ``text`` is a valid Kubernetes label value (the empty string is one)."""
    return len(text) <= LABEL_VALUE_MAX and _LABEL_VALUE_RE.fullmatch(text) is not None


def is_dns1123_subdomain(text: str) -> bool:
    """Whether ``text`` is a DNS-1123 subdomain: the rule for most Kubernetes object names."""
    return len(text) <= 253 and _DNS1123_SUBDOMAIN_RE.fullmatch(text) is not None


def label_value(text: str) -> str:
    """Turn any text into a valid label value, deterministically.

    Valid values come back unchanged. Anything else is transliterated to ASCII, runs of other
    characters become ``-``, it is cut to fit, and ``-`` plus 8 hex digits of the SHA-256 of the
    original text are appended, so two names that differ stay distinct after sanitizing.
    """
    if is_label_value(text):
        return text
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:_HASH_LEN]
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    base = _NOT_ALLOWED_RE.sub("-", ascii_text)
    base = base[: LABEL_VALUE_MAX - _HASH_LEN - 1]
    base = re.sub(r"^[^A-Za-z0-9]+|[^A-Za-z0-9]+$", "", base)
    return f"{base}-{digest}" if base else digest


def session_labels(session_id: str, name: str) -> dict[str, str]:
    """The four contract labels of a session's pod and PVC."""
    return {
        APP_LABEL: APP,
        COMPONENT_LABEL: COMPONENT,
        SESSION_ID_LABEL: label_value(session_id),
        SESSION_NAME_LABEL: label_value(name),
    }


def instance_selector(instance: str) -> str:
    """The label selector of one instance's session objects.

    >>> instance_selector("raworc-3f9a1c0b2d")
    'app=raworc,component=session,raworc.dev/instance=raworc-3f9a1c0b2d'
    """
    return f"{SESSION_SELECTOR},{INSTANCE_LABEL}={instance}"


def foreign_selector(instance: str) -> str:
    """The label selector of session objects *not* of ``instance``.

    In label-selector semantics ``key!=value`` also matches objects without the key
    (Kubernetes docs, "Labels and Selectors": equality-based requirements), so this selects
    other instances' objects and those that name no instance.

    >>> foreign_selector("raworc")
    'app=raworc,component=session,raworc.dev/instance!=raworc'
    """
    return f"{SESSION_SELECTOR},{INSTANCE_LABEL}!={instance}"


def unowned_selector() -> str:
    """The label selector of session objects that name no owner instance (older versions').

    >>> unowned_selector()
    'app=raworc,component=session,!raworc.dev/instance'
    """
    return f"{SESSION_SELECTOR},!{INSTANCE_LABEL}"


def instance_of(obj: Mapping[str, Any]) -> str | None:
    """The owner instance an object's label names (what selection goes by); None without one."""
    labels = (obj.get("metadata") or {}).get("labels") or {}
    owner = labels.get(INSTANCE_LABEL)
    return str(owner) if owner else None


def session_id_of(metadata: Any) -> str | None:
    """The session id an object belongs to, from its metadata's labels; None if not a session's.

    Accepts object metadata as a dict (``obj["metadata"]``), a whole object dict, or a client
    model with a ``labels`` attribute.
    """
    if isinstance(metadata, Mapping) and "metadata" in metadata:
        metadata = metadata["metadata"]
    labels = metadata.get("labels") if isinstance(metadata, Mapping) else None
    if labels is None and not isinstance(metadata, Mapping):
        labels = getattr(metadata, "labels", None)
    if not isinstance(labels, Mapping):
        return None
    if labels.get(APP_LABEL) != APP or labels.get(COMPONENT_LABEL) != COMPONENT:
        return None
    session_id = labels.get(SESSION_ID_LABEL)
    return str(session_id) if session_id else None


def session_id_of_name(name: str) -> str | None:
    """The session id in a pod or PVC name (``session-{id}``, ``session-pvc-{id}``), else None.

    For objects known only by name, such as the ``involvedObject`` of an Event.

    >>> session_id_of_name("session-pvc-abc"), session_id_of_name("session-abc")
    ('abc', 'abc')
    """
    for prefix in (PVC_PREFIX, POD_PREFIX):
        if name.startswith(prefix):
            return name[len(prefix) :] or None
    return None


def annotation_time(moment: dt.datetime) -> str:
    """``moment`` as RFC 3339 in UTC with ``Z`` (a naive time is taken as UTC).

    Microseconds are kept when there are any, so the record rebuilt from it is the same.

    >>> annotation_time(dt.datetime(2025, 1, 15, 10, 30, tzinfo=dt.UTC))
    '2025-01-15T10:30:00Z'
    """
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def parse_annotation_time(text: object) -> dt.datetime | None:
    """An RFC 3339 time from an annotation, in UTC; None when absent or not a time.

    >>> parse_annotation_time("2025-01-15T10:30:00.5Z")
    datetime.datetime(2025, 1, 15, 10, 30, 0, 500000, tzinfo=datetime.timezone.utc)
    """
    if not isinstance(text, str) or not text:
        return None
    try:
        moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        return None  # RFC 3339 requires an offset: a bare time is not one
    return moment.astimezone(dt.UTC)


def _object_name(name: str) -> str:
    if not is_dns1123_subdomain(name):
        raise ValueError(f"{name!r} is not a valid Kubernetes object name (DNS-1123 subdomain)")
    return name


def recorded_annotations(
    *, name: str, waiting_timeout_seconds: int | None
) -> dict[str, str | None]:
    """The annotations of a session's fields that may change, for a merge patch.

    None removes an annotation (RFC 7386): a session without an idle timeout of its own.
    """
    timeout = None if waiting_timeout_seconds is None else str(waiting_timeout_seconds)
    return {SESSION_NAME_ANNOTATION: name, WAITING_TIMEOUT_ANNOTATION: timeout}


def parse_seconds(text: object) -> int | None:
    """A non-negative whole number of seconds from an annotation; None when absent or not one.

    >>> parse_seconds("600"), parse_seconds("soon"), parse_seconds(None)
    (600, None, None)
    """
    if isinstance(text, str) and text.isdigit():
        return int(text)
    return None
