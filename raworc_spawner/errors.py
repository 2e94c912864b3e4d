"""The error hierarchy shared by every layer.

Each error carries a stable machine-readable ``code``; the HTTP layer maps classes to status codes
in one place (``handlers/base.py``), so lower layers never mention HTTP.
"""

from __future__ import annotations


class RaworcError(Exception):
    """Base class of every error raworc-spawner raises on purpose."""

    code = "error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidConfig(RaworcError):
    """A setting has a value that is not allowed; raised at start-up."""

    code = "invalid_config"

    def __init__(self, setting: str, value: object, allowed: str) -> None:
        super().__init__(f"{setting}={value!r} is invalid: {allowed}")
        self.setting = setting
        self.value = value


class SessionError(RaworcError):
    """Base class of errors about sessions."""


class SessionNotFound(SessionError):
    """No session with that id exists (or the caller may not see it)."""

    code = "not_found"

    def __init__(self, session_id: str) -> None:
        super().__init__(f"session {session_id} not found")
        self.session_id = session_id


class InvalidTransition(SessionError):
    """The requested state change is not allowed from the session's current state."""

    code = "invalid_transition"


class Conflict(SessionError):
    """The request conflicts with the current state of a resource."""

    code = "conflict"


class BackendMismatch(Conflict):
    """The session's workspace and compute are on another backend than this server's."""

    code = "backend_mismatch"

    def __init__(
        self, session_id: str, *, recorded: str, running: str, action: str, running_there: bool
    ) -> None:
        where = (
            f"cannot {action} session {session_id}: its workspace and compute are on the "
            f"{recorded!r} backend and this server runs {running!r}"
        )
        if running_there:
            hint = (
                f"its compute may still run there: use a server on the {recorded!r} backend, "
                "or stop it with `raworc-spawner cleanup --delete` on this one first"
            )
        else:
            hint = (
                f"use a server on the {recorded!r} backend, or resume it here with a new, "
                f"empty workspace (PUT /api/v0/sessions/{session_id}/state "
                f'{{"state": "ready", "new_workspace": true}}; the old workspace stays on '
                f"{recorded!r})"
            )
        super().__init__(f"{where}. {hint}")
        self.session_id = session_id
        self.recorded = recorded


class ValidationError(SessionError):
    """A field of a request has a value that is not allowed."""

    code = "invalid_field"

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


class Forbidden(SessionError):
    """The caller is authenticated but may not do this."""

    code = "forbidden"


class QuotaExceeded(SessionError):
    """A limit on the number of sessions or requests was reached."""

    code = "quota_exceeded"


class BackendError(RaworcError):
    """The compute backend failed to do what was asked."""

    code = "backend_error"


class BackendUnavailable(BackendError):
    """The compute backend (for example the Kubernetes API server) cannot be reached."""

    code = "backend_unavailable"


class SessionFailed(BackendError):
    """A session's compute failed in a way that retrying the same spec will not fix.

    ``reason`` is a short CamelCase cause (Kubernetes style, e.g. ``ErrImagePull``); the message
    says what happened in words.
    """

    code = "session_failed"

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.detail = message
