"""Hub users can log in to the pages with their hub token; the cookie holds only its digest."""

from __future__ import annotations

from typing import Any

from raworc_spawner.handlers.auth import token_digest
from raworc_spawner.hub.service import HubTokenAuthenticator
from raworc_spawner.sessions.model import Principal


class FakeHubAuth:
    """Answers like ``HubAuth.user_for_token`` for one known hub token."""

    api_url = "http://127.0.0.1:1/hub/api"
    api_token = "service-token"

    def user_for_token(self, token: str, sync: bool = True) -> dict[str, Any] | None:
        return {"name": "kim", "kind": "user", "admin": False} if token == "hubtok" else None


def test_a_verified_hub_token_can_be_found_again_by_its_digest_for_a_while() -> None:
    auth = HubTokenAuthenticator({}, hub_auth=FakeHubAuth())  # type: ignore[arg-type]
    assert auth.authenticate_digest(token_digest("hubtok")) is None  # never verified yet
    assert auth.authenticate("hubtok") == Principal("kim")
    assert auth.authenticate_digest(token_digest("hubtok")) == Principal("kim")
    assert auth.authenticate_digest(token_digest("other")) is None
    auth.login_seconds = 0.0
    assert auth.authenticate_digest(token_digest("hubtok")) is None  # expired: log in again


def test_server_tokens_still_work_by_digest() -> None:
    auth = HubTokenAuthenticator({"own": Principal("ops", admin=True)}, hub_auth=FakeHubAuth())  # type: ignore[arg-type]
    assert auth.authenticate_digest(token_digest("own")) == Principal("ops", admin=True)
