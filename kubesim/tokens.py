"""ServiceAccount tokens: the TokenRequest API (``serviceaccounts/<name>/token``) and their check.

Tokens are JWTs signed with a key that lives as long as the simulator (HS256 where a real
cluster uses RS256). A token authenticates as ``system:serviceaccount:<namespace>:<name>`` while
it has not expired and the ServiceAccount it was issued for (same UID) still exists.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass
from typing import Any

from .errors import bad_request, invalid, not_found
from .objects import Obj
from .resources import CATALOG
from .store import Store
from .validation import invalid_value

ISSUER = "https://kubernetes.default.svc.cluster.local"
DEFAULT_EXPIRATION = 3600
MIN_EXPIRATION = 600
MAX_EXPIRATION = 2**32


@dataclass(frozen=True)
class UserInfo:
    """Who a request comes from: a user name, its groups and (for service accounts) a UID."""

    name: str
    groups: tuple[str, ...] = ()
    uid: str = ""


def service_account_user(namespace: str, name: str, uid: str = "") -> UserInfo:
    """The user a ServiceAccount authenticates as, with the groups the API server adds."""
    return UserInfo(
        f"system:serviceaccount:{namespace}:{name}",
        ("system:serviceaccounts", f"system:serviceaccounts:{namespace}", "system:authenticated"),
        uid,
    )


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class ServiceAccountTokens:
    """Issues and verifies ServiceAccount tokens against the accounts in the store."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._key = secrets.token_bytes(32)
        self._kid = _b64(hashlib.sha256(self._key).digest()[:12])

    def issue(self, namespace: str, name: str, body: Any) -> Obj:
        """Answer a TokenRequest for ``namespace/name`` with a fresh token in its status."""
        account = self.store.get("serviceaccounts", namespace, name)
        if account is None:
            raise not_found(CATALOG.by_key("serviceaccounts"), name)
        request = body if isinstance(body, dict) else {}
        if request.get("kind", "TokenRequest") != "TokenRequest":
            raise bad_request(f"expected a TokenRequest, got {request.get('kind')}")
        spec = dict(request.get("spec") or {})
        seconds = int(spec.get("expirationSeconds") or DEFAULT_EXPIRATION)
        if not MIN_EXPIRATION <= seconds <= MAX_EXPIRATION:
            raise invalid(
                CATALOG.by_key("serviceaccounts"),
                name,
                [
                    invalid_value(
                        "spec.expirationSeconds",
                        seconds,
                        "may not specify a duration less than 10 minutes",
                    )
                ],
            )
        audiences = list(spec.get("audiences") or [ISSUER])
        now = int(time.time())
        uid = account["metadata"]["uid"]
        claims = {
            "aud": audiences,
            "exp": now + seconds,
            "iat": now,
            "iss": ISSUER,
            "nbf": now,
            "sub": f"system:serviceaccount:{namespace}:{name}",
            "kubernetes.io": {"namespace": namespace, "serviceaccount": {"name": name, "uid": uid}},
        }
        spec.update(audiences=audiences, expirationSeconds=seconds)
        spec.setdefault("boundObjectRef", None)
        return {
            "kind": "TokenRequest",
            "apiVersion": "authentication.k8s.io/v1",
            "metadata": {"name": name, "namespace": namespace, "creationTimestamp": None},
            "spec": spec,
            "status": {
                "token": self._sign(claims),
                "expirationTimestamp": time.strftime(
                    "%Y-%m-%dT%H:%M:%SZ", time.gmtime(now + seconds)
                ),
            },
        }

    def verify(self, token: str) -> UserInfo | None:
        """The user ``token`` stands for, or None when it is not a valid, live token."""
        parts = token.split(".")
        if len(parts) != 3:
            return None
        signed = f"{parts[0]}.{parts[1]}".encode()
        expected = _b64(hmac.new(self._key, signed, hashlib.sha256).digest())
        if not hmac.compare_digest(expected, parts[2]):
            return None
        claims = json.loads(_unb64(parts[1]))
        if claims.get("exp", 0) <= time.time():
            return None
        ref = claims["kubernetes.io"]
        namespace, account = ref["namespace"], ref["serviceaccount"]
        stored = self.store.get("serviceaccounts", namespace, account["name"])
        if stored is None or stored["metadata"]["uid"] != account["uid"]:
            return None
        return service_account_user(namespace, account["name"], account["uid"])

    def _sign(self, claims: dict[str, Any]) -> str:
        header = _b64(json.dumps({"alg": "HS256", "kid": self._kid}).encode())
        payload = _b64(json.dumps(claims, separators=(",", ":")).encode())
        signature = hmac.new(self._key, f"{header}.{payload}".encode(), hashlib.sha256).digest()
        return f"{header}.{payload}.{_b64(signature)}"
