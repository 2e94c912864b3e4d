"""Kubernetes Events about a session's objects: which to believe, how to show them, one entry each.

An Event is believed only about the session's *current* pod or claim: its
``involvedObject.uid`` must be that object's uid and, for a pod, it must not be older than the
pod's ``creationTimestamp``. Events about an older pod of the same name, or written by anyone
with another uid, are ignored for state, status and progress. Even a believed Event decides
nothing destructive by itself: the backend fails, deletes or replaces only from what the pod
and claim objects say.

An Event updated in place (same uid; ``count``, ``lastTimestamp`` or ``series.count`` change,
as the event recorder does for repeats) is one entry with its count.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from raworc_spawner.backends.kubernetes.podstate import waits_for_claims
from raworc_spawner.backends.status import KubernetesEvent

Obj = dict[str, Any]

#: Volume warnings that a fresh claim routinely shows while its volume is attached.
_VOLUME_SETTLING = frozenset({"FailedMount", "FailedAttachVolume"})


class Match(enum.StrEnum):
    """Whether an Event is about the session's current object."""

    CURRENT = "current"
    UNKNOWN = "unknown"  # the object is not known yet: keep the Event until it is
    FOREIGN = "foreign"  # another object (an older pod, another writer): ignore it


def involved_uid(event: Obj) -> str:
    """The uid of the object the Event is about ("" when it names none)."""
    return str((event.get("involvedObject") or {}).get("uid") or "")


def involved_kind(event: Obj) -> str:
    """The kind of the object the Event is about (``Pod``, ``PersistentVolumeClaim``)."""
    return str((event.get("involvedObject") or {}).get("kind") or "")


def parse_time(text: object) -> dt.datetime | None:
    """An RFC 3339 time (``metav1.Time`` or ``MicroTime``) as an aware datetime, else None."""
    if not isinstance(text, str) or not text:
        return None
    try:
        return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def event_time(event: Obj) -> dt.datetime | None:
    """When the Event last happened: ``lastTimestamp``, ``series``, ``eventTime``, first seen."""
    series = event.get("series") or {}
    for text in (
        event.get("lastTimestamp"),
        series.get("lastObservedTime"),
        event.get("eventTime"),
        event.get("firstTimestamp"),
        (event.get("metadata") or {}).get("creationTimestamp"),
    ):
        if (moment := parse_time(text)) is not None:
            return moment
    return None


def match(event: Obj, *, current_uid: str | None, created: str | None) -> Match:
    """Whether ``event`` is about the object with ``current_uid`` (created at ``created``).

    ``current_uid`` None: the session's object of that kind is not known yet. Times are whole
    seconds in ``metav1.Time``, so an Event of the second the object was made still counts.
    """
    uid = involved_uid(event)
    if not uid:
        return Match.FOREIGN
    if current_uid is None:
        return Match.UNKNOWN
    if uid != current_uid:
        return Match.FOREIGN
    made, happened = parse_time(created), event_time(event)
    if made is not None and happened is not None and happened < made.replace(microsecond=0):
        return Match.FOREIGN
    return Match.CURRENT


def is_expected_warning(event: Obj, *, claim_age: float | None, grace: float) -> bool:
    """Whether a Warning is the routine kind a healthy start shows, to report as progress.

    A pod tried before its claim exists or is bound (``FailedScheduling`` about claims); a
    volume still attaching or mounting (``FailedMount``, ``FailedAttachVolume``) while the
    claim is younger than ``grace`` seconds.
    """
    reason, message = event.get("reason"), str(event.get("message") or "")
    if reason == "FailedScheduling":
        return waits_for_claims(message)
    if reason in _VOLUME_SETTLING:
        return claim_age is not None and claim_age < grace
    return False


def event_count(event: Obj) -> int:
    """How often the Event happened: ``series.count``, else ``count``, else 1."""
    series = event.get("series") or {}
    return int(series.get("count") or event.get("count") or 1)


def event_summary(event: Obj) -> KubernetesEvent:
    """A Kubernetes event as the status endpoint and progress stream show it."""
    involved = event.get("involvedObject") or {}
    series = event.get("series") or {}
    return KubernetesEvent(
        type=event.get("type"),
        reason=event.get("reason"),
        message=event.get("message"),
        object=f"{involved.get('kind', '')}/{involved.get('name', '')}",
        count=event_count(event),
        last_timestamp=event.get("lastTimestamp")
        or series.get("lastObservedTime")
        or event.get("eventTime"),
    )


@dataclass(frozen=True, slots=True)
class Entry:
    """One believed Event: the uid of the object it is about and how it is shown."""

    object_uid: str
    shown: KubernetesEvent


class EventBook:
    """One session's believed Events, one entry per Event uid, the last ``keep`` of them."""

    def __init__(self, *, keep: int) -> None:
        self.keep = keep
        self._entries: OrderedDict[str, Entry] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def record(self, event: Obj) -> bool:
        """Keep ``event`` (replacing an earlier version of it); True when it is new."""
        meta = event.get("metadata") or {}
        key = str(meta.get("uid") or meta.get("name") or id(event))
        new = key not in self._entries
        self._entries[key] = Entry(involved_uid(event), event_summary(event))
        self._entries.move_to_end(key)
        while len(self._entries) > max(self.keep, 0):
            self._entries.popitem(last=False)
        return new

    def shown(self, uids: set[str]) -> tuple[KubernetesEvent, ...]:
        """The entries about the objects ``uids``, oldest first."""
        return tuple(e.shown for e in self._entries.values() if e.object_uid in uids)

    def last(self, object_uid: str | None, reasons: frozenset[str]) -> KubernetesEvent | None:
        """The latest entry about ``object_uid`` with one of ``reasons``."""
        for entry in reversed(self._entries.values()):
            if entry.object_uid == object_uid and entry.shown.reason in reasons:
                return entry.shown
        return None
