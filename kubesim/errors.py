"""API errors as ``metav1.Status`` objects, with the reasons and messages the API server uses."""

from __future__ import annotations

from typing import Any

from .resources import ResourceType

Obj = dict[str, Any]


class ApiError(Exception):
    """A failed request; :meth:`status` is the body, :attr:`code` the HTTP status."""

    def __init__(
        self,
        code: int,
        reason: str,
        message: str,
        *,
        details: Obj | None = None,
        headers: dict[str, str] | None = None,
        metadata: Obj | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details
        self.headers = headers or {}
        self.metadata = metadata or {}

    def status(self) -> Obj:
        """Return the ``Status`` object the API server would send."""
        body: Obj = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": dict(self.metadata),
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if self.details is not None:
            body["details"] = self.details
        return body


def _details(rt: ResourceType, name: str, **extra: Any) -> Obj:
    details: Obj = {"name": name, "kind": rt.plural}
    if rt.group:
        details["group"] = rt.group
    details.update(extra)
    return details


def qualified(rt: ResourceType) -> str:
    """``pods`` or ``networkpolicies.networking.k8s.io``, as messages spell a resource."""
    return rt.key


def not_found(rt: ResourceType, name: str) -> ApiError:
    return ApiError(
        404, "NotFound", f'{qualified(rt)} "{name}" not found', details=_details(rt, name)
    )


def already_exists(rt: ResourceType, name: str) -> ApiError:
    msg = f'{qualified(rt)} "{name}" already exists'
    return ApiError(409, "AlreadyExists", msg, details=_details(rt, name))


def conflict(rt: ResourceType, name: str, why: str | None = None) -> ApiError:
    why = (
        why
        or "the object has been modified; please apply your changes to the latest version and "
        "try again"
    )
    msg = f'Operation cannot be fulfilled on {qualified(rt)} "{name}": {why}'
    return ApiError(409, "Conflict", msg, details=_details(rt, name))


def invalid(rt: ResourceType, name: str, causes: list[tuple[str, str, str]]) -> ApiError:
    """Build a 422 from ``(reason, field, message)`` causes (``FieldValueInvalid`` …)."""
    texts = [f"{field}: {message}" for _, field, message in causes]
    summary = texts[0] if len(texts) == 1 else "[" + ", ".join(texts) + "]"
    details = _details(rt, name, kind=rt.kind)
    details["causes"] = [{"reason": r, "message": m, "field": f} for r, f, m in causes]
    return ApiError(422, "Invalid", f'{rt.kind} "{name}" is invalid: {summary}', details=details)


def bad_request(message: str) -> ApiError:
    return ApiError(400, "BadRequest", message)


def forbidden(message: str, rt: ResourceType | None = None, name: str = "") -> ApiError:
    details = _details(rt, name) if rt else None
    return ApiError(403, "Forbidden", message, details=details)


def unauthorized() -> ApiError:
    return ApiError(401, "Unauthorized", "Unauthorized")


def expired(message: str) -> ApiError:
    return ApiError(410, "Expired", message)


def too_old(requested: int, oldest: int) -> ApiError:
    return expired(f"too old resource version: {requested} ({oldest})")


def method_not_allowed(verb: str) -> ApiError:
    return ApiError(
        405,
        "MethodNotAllowed",
        f"the server does not allow this method on the requested resource ({verb})",
    )


def path_not_found(path: str) -> ApiError:
    return ApiError(
        404,
        "NotFound",
        "the server could not find the requested resource",
        details={
            "causes": [
                {"reason": "UnexpectedServerResponse", "message": f"404 page not found: {path}"}
            ]
        },
    )


def injected(code: int, retry_after: int = 1) -> ApiError:
    """Build the error a fault rule injects for ``code`` (429 carries ``Retry-After``)."""
    reasons = {
        400: ("BadRequest", "injected bad request"),
        403: ("Forbidden", "injected forbidden"),
        404: ("NotFound", "injected not found"),
        409: ("Conflict", "injected conflict"),
        410: ("Expired", "injected expiry"),
        422: ("Invalid", "injected invalid"),
        429: (
            "TooManyRequests",
            "the server has received too many requests and has asked us to try again later",
        ),
        500: ("InternalError", "Internal error occurred: injected fault"),
        503: ("ServiceUnavailable", "the server is currently unable to handle the request"),
        504: ("Timeout", "the server was unable to return a response in the time allotted"),
    }
    reason, message = reasons.get(code, ("InternalError", f"injected fault {code}"))
    if code == 429:
        return ApiError(
            code,
            reason,
            message,
            details={"retryAfterSeconds": retry_after},
            headers={"Retry-After": str(retry_after)},
        )
    return ApiError(code, reason, message, details={})
