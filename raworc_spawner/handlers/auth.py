"""Bearer-token authentication: tokens map to a user and an admin flag.

Tokens are kept only as SHA-256 digests and compared in constant time, so a configuration dump
or a memory read does not reveal them. Configuration may give either the token itself or its
digest as ``sha256:<hex>``.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping

from raworc_spawner.sessions.model import Principal

DIGEST_PREFIX = "sha256:"


def token_digest(token: str) -> str:
    """The hex SHA-256 digest under which a token is stored."""
    return hashlib.sha256(token.encode()).hexdigest()


class TokenAuthenticator:
    """Answers which principal, if any, a bearer token belongs to."""

    def __init__(self, tokens: Mapping[str, Principal]) -> None:
        self._digests: list[tuple[bytes, Principal]] = []
        for token, principal in tokens.items():
            digest = (
                token[len(DIGEST_PREFIX) :].lower()
                if token.startswith(DIGEST_PREFIX)
                else token_digest(token)
            )
            self._digests.append((digest.encode(), principal))

    def authenticate(self, token: str | None) -> Principal | None:
        """The principal owning ``token``, or None. Takes the same time whichever matches."""
        if not token:
            return None
        digest = token_digest(token).encode()
        found: Principal | None = None
        for candidate, principal in self._digests:
            if hmac.compare_digest(candidate, digest):
                found = principal
        return found

    def authenticate_digest(self, digest: str | None) -> Principal | None:
        """The principal whose token has this SHA-256 hex digest (what the login cookie holds)."""
        if not digest:
            return None
        wanted = digest.lower().encode()
        found: Principal | None = None
        for candidate, principal in self._digests:
            if hmac.compare_digest(candidate, wanted):
                found = principal
        return found

    @staticmethod
    def bearer(header: str | None) -> str | None:
        """The token of an ``Authorization: Bearer <token>`` header, or None."""
        if not header:
            return None
        scheme, _, token = header.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        return token.strip()
