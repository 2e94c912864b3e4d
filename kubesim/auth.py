"""Authentication (bearer tokens) and authorization, shared by requests and access reviews.

Three kinds of token authenticate: the admin token (``kubesim-admin`` in ``system:masters``,
allowed everything), tokens registered with a :class:`~.config.TokenPolicy` (their own rules),
and ServiceAccount tokens from the TokenRequest API. Every authenticated user is also
authorized by RBAC, from the stored Roles, ClusterRoles and bindings: a request is allowed
when the token's policy rules or RBAC allow it, as a chain of authorizers does.
"""

from __future__ import annotations

from .config import Rule, TokenPolicy
from .errors import ApiError, forbidden, unauthorized
from .rbac import Attributes, RBACAuthorizer
from .tokens import ServiceAccountTokens, UserInfo

__all__ = ["ADMIN_USER", "Attributes", "Policy"]

ADMIN_USER = "kubesim-admin"
AUTHENTICATED = "system:authenticated"


def _allows(rule: Rule, attrs: Attributes) -> bool:
    wanted = f"{attrs.resource}/{attrs.subresource}" if attrs.subresource else attrs.resource
    if not ("*" in rule.verbs or attrs.verb in rule.verbs):
        return False
    if attrs.path:
        return False
    if not ("*" in rule.groups or attrs.group in rule.groups):
        return False
    if not ("*" in rule.resources or wanted in rule.resources):
        return False
    return not rule.namespaces or "*" in rule.namespaces or attrs.namespace in rule.namespaces


class Policy:
    """Maps tokens to users and decides what they may do; the admin token may do anything."""

    def __init__(
        self,
        admin_token: str,
        tokens: dict[str, TokenPolicy] | None = None,
        *,
        rbac: RBACAuthorizer | None = None,
        service_accounts: ServiceAccountTokens | None = None,
    ) -> None:
        self.admin_token = admin_token
        self.tokens = dict(tokens or {})
        self.rbac = rbac
        self.service_accounts = service_accounts

    def add_token(self, token: str, user: str, rules: list[Rule]) -> None:
        self.tokens[token] = TokenPolicy(user, rules)

    def authenticate(self, header: str | None) -> str:
        """Return the token from an ``Authorization: Bearer`` header, or raise 401."""
        if not header or not header.startswith("Bearer "):
            raise unauthorized()
        token = header[len("Bearer ") :].strip()
        if self.identity(token) is None:
            raise unauthorized()
        return token

    def identity(self, token: str) -> UserInfo | None:
        """The user a token authenticates as; None for an unknown or expired token."""
        if token == self.admin_token:
            return UserInfo(ADMIN_USER, ("system:masters", AUTHENTICATED))
        if token in self.tokens:
            return UserInfo(self.tokens[token].user, (AUTHENTICATED,))
        if self.service_accounts is not None:
            return self.service_accounts.verify(token)
        return None

    def user(self, token: str) -> str:
        who = self.identity(token)
        return who.name if who else "system:anonymous"

    def allows(self, token: str, attrs: Attributes) -> bool:
        return bool(self.reason(token, attrs))

    def reason(self, token: str, attrs: Attributes) -> str:
        """Why the request is allowed, as an access review reports it; "" when it is denied."""
        if token == self.admin_token:
            return "kubesim admin token"
        policy = self.tokens.get(token)
        if policy is not None and any(_allows(rule, attrs) for rule in policy.rules):
            return "allowed by kubesim policy"
        who = self.identity(token)
        if who is None or self.rbac is None:
            return ""
        return self.rbac.decide(who, attrs) or ""

    def authorize(self, token: str, attrs: Attributes) -> None:
        """Raise 403 Forbidden, worded as the API server words it, unless allowed."""
        if self.allows(token, attrs):
            return
        raise self.forbidden(token, attrs)

    def forbidden(self, token: str, attrs: Attributes) -> ApiError:
        # As the API server words it (apiserver endpoints/handlers/responsewriters): the group-
        # qualified resource and name, then the resource with its subresource in the reason.
        what = f"{attrs.resource}/{attrs.subresource}" if attrs.subresource else attrs.resource
        qualified = f"{attrs.resource}.{attrs.group}" if attrs.group else attrs.resource
        subject = f'{qualified} "{attrs.name}"' if attrs.name else qualified
        scope = (
            f'in the namespace "{attrs.namespace}"' if attrs.namespace else "at the cluster scope"
        )
        message = (
            f'{subject} is forbidden: User "{self.user(token)}" cannot {attrs.verb} '
            f'resource "{what}" in API group "{attrs.group}" {scope}'
        )
        return forbidden(message)
