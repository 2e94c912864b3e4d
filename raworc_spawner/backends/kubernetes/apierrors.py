"""Errors from the Kubernetes API server, one class per status that callers treat differently.

Raised by ``client.py`` from the ``Status`` object the API server returns; the rest of the
backend catches these classes, never HTTP status numbers.
"""

from __future__ import annotations

from typing import Any

from raworc_spawner.errors import BackendError, BackendUnavailable


class APIError(BackendError):
    """The API server answered with an error ``Status``."""

    status = 0

    def __init__(
        self,
        message: str,
        *,
        status: int = 0,
        reason: str = "",
        details: dict[str, Any] | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status or self.status
        self.reason = reason
        self.details = details or {}
        self.retry_after = retry_after


class APIUnauthorized(APIError):
    """401: the credentials were not accepted."""

    status = 401


class APIForbidden(APIError):
    """403: the credentials may not do this (RBAC)."""

    status = 403


class APINotFound(APIError):
    """404: no such object (or namespace)."""

    status = 404


class APIConflict(APIError):
    """409: the object exists already (``AlreadyExists``) or was modified (``Conflict``)."""

    status = 409


class APIGone(APIError):
    """410: the resourceVersion is older than the server keeps; list again."""

    status = 410


class APIInvalid(APIError):
    """422: the object failed validation; ``details['causes']`` says which fields."""

    status = 422


class APITooManyRequests(APIError):
    """429: throttled; retry after ``retry_after`` seconds."""

    status = 429


class APIServerError(APIError):
    """5xx: the API server failed; retrying may help."""

    status = 500


class APIUnreachable(BackendUnavailable):
    """The API server could not be reached at all (connection refused, timeout, TLS)."""


_BY_STATUS: dict[int, type[APIError]] = {
    401: APIUnauthorized,
    403: APIForbidden,
    404: APINotFound,
    409: APIConflict,
    410: APIGone,
    422: APIInvalid,
    429: APITooManyRequests,
}


def error_for(status: int, body: dict[str, Any], retry_after: float | None) -> APIError:
    """The error class for an HTTP status and its ``Status`` body."""
    cls = _BY_STATUS.get(status) or (APIServerError if status >= 500 else APIError)
    message = str(body.get("message") or f"HTTP {status}")
    return cls(
        message,
        status=status,
        reason=str(body.get("reason") or ""),
        details=body.get("details") if isinstance(body.get("details"), dict) else None,
        retry_after=retry_after,
    )


def is_retryable(error: BaseException) -> bool:
    """Whether a request that failed with ``error`` may succeed when sent again."""
    return isinstance(error, APITooManyRequests | APIServerError | APIUnreachable)
