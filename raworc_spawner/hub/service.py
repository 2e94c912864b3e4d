"""The raworc server as a JupyterHub service: hub tokens, hub admins, the service's URL prefix.

When JupyterHub starts the raworc server as a managed service it passes ``JUPYTERHUB_API_URL``,
``JUPYTERHUB_API_TOKEN``, ``JUPYTERHUB_SERVICE_PREFIX`` and ``JUPYTERHUB_SERVICE_URL``. This
module turns those into what the server needs:

- :class:`HubTokenAuthenticator`, a drop-in for ``handlers.auth.TokenAuthenticator``: the
  server's own tokens still work, and any other token is checked with the hub
  (``jupyterhub.services.auth.HubAuth``); hub users become principals with their hub name, and
  hub admins are raworc admins;
- :class:`PrefixedApplication`, which serves the application under the service prefix the
  proxy forwards (``/services/raworc/api/v0/sessions`` reaches ``/api/v0/sessions``);
- :func:`service_address`, the address to listen on.

Token checks are cached by HubAuth (``HubAuth.cache_max_age``, 5 minutes by default); the
first request with a new token waits for one call to the hub. This module is used by the
server only: the spawner never imports it.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
from jupyterhub.services.auth import HubAuth
from tornado import httputil

from raworc_spawner.handlers.auth import TokenAuthenticator, token_digest
from raworc_spawner.sessions.model import Principal

#: Authorization schemes accepted: the REST API's ``Bearer`` and JupyterHub's ``token``.
SCHEMES = ("bearer", "token")


def in_hub() -> bool:
    """Whether this process was started by JupyterHub as a service."""
    return bool(os.environ.get("JUPYTERHUB_API_TOKEN") and os.environ.get("JUPYTERHUB_API_URL"))


class HubTokenAuthenticator(TokenAuthenticator):
    """Bearer tokens of the server itself, then hub tokens (users and their admin flag)."""

    def __init__(
        self,
        tokens: Mapping[str, Principal],
        *,
        hub_auth: HubAuth | None = None,
        admin_cache_seconds: float = 300.0,
        login_seconds: float = 8 * 3600.0,
    ) -> None:
        super().__init__(tokens)
        self.hub_auth = hub_auth or HubAuth()
        self.admin_cache_seconds = admin_cache_seconds
        self.login_seconds = login_seconds
        self._admins: dict[str, tuple[float, bool]] = {}
        self._logins: dict[str, tuple[float, Principal]] = {}

    def authenticate(self, token: str | None) -> Principal | None:
        """The principal of a server token, else of a hub token, else None."""
        principal = super().authenticate(token)
        if principal is not None or not token:
            return principal
        model = self.hub_auth.user_for_token(token, sync=True)
        if not model:
            return None
        name = str(model["name"])
        if model.get("kind", "user") != "user":
            principal = Principal(f"service:{name}")
        else:
            principal = Principal(name, admin=self._is_admin(name, model))
        self._logins[token_digest(token)] = (time.monotonic(), principal)
        return principal

    def authenticate_digest(self, digest: str | None) -> Principal | None:
        """A server token's principal, or a hub user's who logged in to the pages recently.

        The pages' cookie holds only a token's digest, which the hub cannot check: a hub
        token's principal is remembered for ``login_seconds`` after it was last verified
        (a server restart forgets it: users log in again).
        """
        principal = super().authenticate_digest(digest)
        if principal is not None or not digest:
            return principal
        remembered = self._logins.get(digest.lower())
        if remembered is None or time.monotonic() - remembered[0] > self.login_seconds:
            return None
        return remembered[1]

    def _is_admin(self, name: str, model: Mapping[str, Any]) -> bool:
        """The hub's admin flag: in the token's model if it shows it, else asked of the hub."""
        if "admin" in model:
            return bool(model["admin"])
        cached = self._admins.get(name)
        if cached is not None and time.monotonic() - cached[0] < self.admin_cache_seconds:
            return cached[1]
        admin = self._lookup_admin(name)
        self._admins[name] = (time.monotonic(), admin)
        return admin

    def _lookup_admin(self, name: str) -> bool:
        # Needs the service's role to include the read:users scope; without it, nobody is an
        # admin here (the safe answer).
        url = f"{self.hub_auth.api_url.rstrip('/')}/users/{quote(name, safe='')}"
        headers = {"Authorization": f"token {self.hub_auth.api_token}"}
        try:
            response = httpx.get(url, headers=headers, timeout=10)
        except httpx.HTTPError:
            return False
        return response.status_code == 200 and bool(response.json().get("admin"))

    @staticmethod
    def bearer(header: str | None) -> str | None:
        """The token of ``Authorization: Bearer <token>`` or ``Authorization: token <token>``."""
        if not header:
            return None
        scheme, _, token = header.strip().partition(" ")
        if scheme.lower() not in SCHEMES or not token.strip():
            return None
        return token.strip()


class PrefixedApplication(httputil.HTTPServerConnectionDelegate):
    """Serves ``application`` under ``prefix``: the prefix is removed from each request path.

    Requests outside the prefix are passed on unchanged (so ``/health`` keeps answering for
    probes that reach the service directly).
    """

    def __init__(self, application: httputil.HTTPServerConnectionDelegate, prefix: str) -> None:
        self.application = application
        self.prefix = "/" + prefix.strip("/") if prefix.strip("/") else ""

    def start_request(
        self, server_conn: object, request_conn: httputil.HTTPConnection
    ) -> httputil.HTTPMessageDelegate:
        inner = self.application.start_request(server_conn, request_conn)
        return _StripPrefix(inner, self.prefix)

    def on_close(self, server_conn: object) -> None:
        self.application.on_close(server_conn)


class _StripPrefix(httputil.HTTPMessageDelegate):
    def __init__(self, inner: httputil.HTTPMessageDelegate, prefix: str) -> None:
        self.inner = inner
        self.prefix = prefix

    def headers_received(
        self,
        start_line: httputil.RequestStartLine | httputil.ResponseStartLine,
        headers: httputil.HTTPHeaders,
    ) -> Any:
        if isinstance(start_line, httputil.RequestStartLine) and self.prefix:
            path = start_line.path
            if path == self.prefix or path.startswith(self.prefix + "/"):
                path = path[len(self.prefix) :] or "/"
                start_line = httputil.RequestStartLine(start_line.method, path, start_line.version)
        return self.inner.headers_received(start_line, headers)

    def data_received(self, chunk: bytes) -> Any:
        return self.inner.data_received(chunk)

    def finish(self) -> None:
        self.inner.finish()

    def on_connection_close(self) -> None:
        self.inner.on_connection_close()


def service_prefix() -> str:
    """The URL prefix the hub's proxy forwards to this service ("" outside a hub)."""
    return os.environ.get("JUPYTERHUB_SERVICE_PREFIX", "")


def service_address() -> tuple[str, int] | None:
    """``(ip, port)`` from ``JUPYTERHUB_SERVICE_URL``, or None outside a hub."""
    url = os.environ.get("JUPYTERHUB_SERVICE_URL")
    if not url:
        return None
    parts = urlsplit(url)
    return parts.hostname or "127.0.0.1", parts.port or 80
