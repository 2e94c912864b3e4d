"""The status of a session as the ``status`` endpoint shows it (the "status proxy")."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from raworc_spawner.backends.base import BackendStatus
from raworc_spawner.sessions.model import Session, SessionEvent

#: Recorded events the status shows (the latest ones).
STATUS_EVENTS = 20


@dataclass(frozen=True, slots=True)
class SessionStatus:
    """A session with its compute and workspace as the backend sees them now.

    ``backend`` is the backend's own description (``BackendStatus``); ``events`` are the latest
    recorded events and ``progress`` the latest transient ones (both oldest first).
    """

    session: Session
    backend: BackendStatus
    events: Sequence[SessionEvent]
    progress: Sequence[SessionEvent]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready data (the REST API's representation)."""
        return {
            "session": self.session.to_dict(),
            "backend": self.backend.to_dict(),
            "events": [event.to_dict() for event in self.events[-STATUS_EVENTS:]],
            "progress": [event.to_dict() for event in self.progress],
        }
