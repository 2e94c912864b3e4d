"""Bearer-token authentication and a rule-based authorizer shared with SelfSubjectAccessReview."""

from __future__ import annotations

from dataclasses import dataclass

from .config import Rule, TokenPolicy
from .errors import ApiError, forbidden, unauthorized

ADMIN_USER = "kubesim-admin"


@dataclass(frozen=True)
class Attributes:
    """What a request wants to do, in authorization terms."""

    verb: str
    group: str
    resource: str
    subresource: str = ""
    namespace: str = ""
    name: str = ""


def _allows(rule: Rule, attrs: Attributes) -> bool:
    wanted = f"{attrs.resource}/{attrs.subresource}" if attrs.subresource else attrs.resource
    if not ("*" in rule.verbs or attrs.verb in rule.verbs):
        return False
    if not ("*" in rule.groups or attrs.group in rule.groups):
        return False
    if not ("*" in rule.resources or wanted in rule.resources):
        return False
    return not rule.namespaces or "*" in rule.namespaces or attrs.namespace in rule.namespaces


class Policy:
    """Maps tokens to users and rules; the admin token may do anything."""

    def __init__(self, admin_token: str, tokens: dict[str, TokenPolicy] | None = None) -> None:
        self.admin_token = admin_token
        self.tokens = dict(tokens or {})

    def add_token(self, token: str, user: str, rules: list[Rule]) -> None:
        self.tokens[token] = TokenPolicy(user, rules)

    def authenticate(self, header: str | None) -> str:
        """Return the token from an ``Authorization: Bearer`` header, or raise 401."""
        if not header or not header.startswith("Bearer "):
            raise unauthorized()
        token = header[len("Bearer ") :].strip()
        if token != self.admin_token and token not in self.tokens:
            raise unauthorized()
        return token

    def user(self, token: str) -> str:
        return ADMIN_USER if token == self.admin_token else self.tokens[token].user

    def allows(self, token: str, attrs: Attributes) -> bool:
        if token == self.admin_token:
            return True
        policy = self.tokens.get(token)
        return policy is not None and any(_allows(rule, attrs) for rule in policy.rules)

    def authorize(self, token: str, attrs: Attributes) -> None:
        """Raise 403 Forbidden, worded as the API server words it, unless allowed."""
        if self.allows(token, attrs):
            return
        raise self.forbidden(token, attrs)

    def forbidden(self, token: str, attrs: Attributes) -> ApiError:
        what = f"{attrs.resource}/{attrs.subresource}" if attrs.subresource else attrs.resource
        subject = f'{what} "{attrs.name}"' if attrs.name else what
        scope = (
            f'in the namespace "{attrs.namespace}"' if attrs.namespace else "at the cluster scope"
        )
        message = (
            f'{subject} is forbidden: User "{self.user(token)}" cannot {attrs.verb} '
            f'resource "{what}" in API group "{attrs.group}" {scope}'
        )
        return forbidden(message)

    def reason(self, token: str, attrs: Attributes) -> str:
        if token == self.admin_token:
            return "kubesim admin token"
        return "allowed by kubesim policy" if self.allows(token, attrs) else ""
