"""RBAC authorization evaluated from the stored Roles, ClusterRoles and their bindings.

It follows the API server's RBAC authorizer: ClusterRoleBindings grant their ClusterRole
everywhere; RoleBindings grant a Role, or a ClusterRole, in their own namespace only. A rule
matches on verbs, API groups, resources (``pods/log`` for a subresource, ``*/log`` and ``*``
too) and resource names; non-resource URLs only through ClusterRoleBindings. ClusterRoles with
an ``aggregationRule`` take the rules of the ClusterRoles their label selectors pick.

The bootstrap policy a cluster starts with is created too: ``cluster-admin`` for the group
``system:masters``, and ``system:basic-user`` for every authenticated user (self access and
self rules reviews).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from .objects import Obj
from .registry import Registry
from .store import Store
from .tokens import UserInfo

GROUP = "rbac.authorization.k8s.io"
ROLES = f"roles.{GROUP}"
CLUSTER_ROLES = f"clusterroles.{GROUP}"
ROLE_BINDINGS = f"rolebindings.{GROUP}"
CLUSTER_ROLE_BINDINGS = f"clusterrolebindings.{GROUP}"


@dataclass(frozen=True)
class Attributes:
    """What a request wants to do, in authorization terms (``path`` for non-resource URLs)."""

    verb: str
    group: str
    resource: str
    subresource: str = ""
    namespace: str = ""
    name: str = ""
    path: str = ""


def rule_allows(rule: Obj, attrs: Attributes) -> bool:
    """Whether one PolicyRule covers the request."""
    verbs = rule.get("verbs") or []
    if "*" not in verbs and attrs.verb not in verbs:
        return False
    if attrs.path:
        return any(_url_matches(url, attrs.path) for url in rule.get("nonResourceURLs") or [])
    groups = rule.get("apiGroups") or []
    if "*" not in groups and attrs.group not in groups:
        return False
    if not _resource_matches(rule.get("resources") or [], attrs):
        return False
    names = rule.get("resourceNames") or []
    return not names or attrs.name in names


def _resource_matches(resources: list[str], attrs: Attributes) -> bool:
    combined = f"{attrs.resource}/{attrs.subresource}" if attrs.subresource else attrs.resource
    for resource in resources:
        if resource in ("*", combined):
            return True
        if attrs.subresource and resource == f"*/{attrs.subresource}":
            return True
    return False


def _url_matches(rule_url: str, path: str) -> bool:
    if rule_url == "*" or rule_url == path:
        return True
    return rule_url.endswith("*") and path.startswith(rule_url[:-1])


def subject_matches(subject: Obj, user: UserInfo, binding_namespace: str) -> bool:
    """Whether a binding's subject is this user (directly, by group or as a ServiceAccount)."""
    kind, name = subject.get("kind"), subject.get("name")
    if kind == "User":
        return name == user.name
    if kind == "Group":
        return name in user.groups
    if kind == "ServiceAccount":
        namespace = subject.get("namespace") or binding_namespace
        return user.name == f"system:serviceaccount:{namespace}:{name}"
    return False


def _describe_subject(subject: Obj, binding_namespace: str) -> str:
    if subject.get("kind") == "ServiceAccount":
        namespace = subject.get("namespace") or binding_namespace
        return f'ServiceAccount "{subject.get("name")}/{namespace}"'
    return f'{subject.get("kind")} "{subject.get("name")}"'


class RBACAuthorizer:
    """Decides requests from the RBAC objects in the store, as the API server's authorizer."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def decide(self, user: UserInfo, attrs: Attributes) -> str | None:
        """The reason the request is allowed (``RBAC: allowed by …``), or None if denied."""
        for binding in self._bindings(attrs):
            namespace = binding["metadata"].get("namespace", "")
            subject = next(
                (s for s in binding.get("subjects") or [] if subject_matches(s, user, namespace)),
                None,
            )
            if subject is None:
                continue
            if any(rule_allows(rule, attrs) for rule in self._rules(binding)):
                return self._reason(binding, subject)
        return None

    def _bindings(self, attrs: Attributes) -> Iterator[Obj]:
        yield from self.store.list(CLUSTER_ROLE_BINDINGS)
        if attrs.namespace and not attrs.path:
            yield from self.store.list(ROLE_BINDINGS, attrs.namespace)

    def _rules(self, binding: Obj) -> list[Obj]:
        ref = binding.get("roleRef") or {}
        if ref.get("kind") == "Role":
            role = self.store.get(ROLES, binding["metadata"].get("namespace", ""), ref["name"])
            return list((role or {}).get("rules") or [])
        return self.cluster_role_rules(ref.get("name", ""))

    def cluster_role_rules(self, name: str) -> list[Obj]:
        """A ClusterRole's rules, with those of the roles it aggregates."""
        role = self.store.get(CLUSTER_ROLES, "", name)
        if role is None:
            return []
        rules = list(role.get("rules") or [])
        selectors = (role.get("aggregationRule") or {}).get("clusterRoleSelectors") or []
        for other in self.store.list(CLUSTER_ROLES):
            labels = other["metadata"].get("labels") or {}
            if other is not role and any(_labels_match(s, labels) for s in selectors):
                rules += other.get("rules") or []
        return rules

    @staticmethod
    def _reason(binding: Obj, subject: Obj) -> str:
        ref = binding["roleRef"]
        m = binding["metadata"]
        namespace = m.get("namespace", "")
        where = f"{m['name']}/{namespace}" if namespace else m["name"]
        return (
            f'RBAC: allowed by {binding["kind"]} "{where}" of {ref["kind"]} "{ref["name"]}" '
            f"to {_describe_subject(subject, namespace)}"
        )


def _labels_match(selector: Obj, labels: dict[str, str]) -> bool:
    wanted = selector.get("matchLabels") or {}
    return bool(wanted) and all(labels.get(k) == v for k, v in wanted.items())


BOOTSTRAP_ROLES: list[Obj] = [
    {
        "metadata": {"name": "cluster-admin"},
        "rules": [
            {"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]},
            {"nonResourceURLs": ["*"], "verbs": ["*"]},
        ],
    },
    {
        "metadata": {"name": "system:basic-user"},
        "rules": [
            {
                "apiGroups": ["authorization.k8s.io"],
                "resources": ["selfsubjectaccessreviews", "selfsubjectrulesreviews"],
                "verbs": ["create"],
            },
            {
                "apiGroups": ["authentication.k8s.io"],
                "resources": ["selfsubjectreviews"],
                "verbs": ["create"],
            },
        ],
    },
]
BOOTSTRAP_BINDINGS = {
    "cluster-admin": "system:masters",
    "system:basic-user": "system:authenticated",
}


def bootstrap(registry: Registry) -> None:
    """Create the default ClusterRoles and ClusterRoleBindings unless they exist."""
    bootstrap_label = {"kubernetes.io/bootstrapping": "rbac-defaults"}
    for role in BOOTSTRAP_ROLES:
        name = role["metadata"]["name"]
        if registry.store.get(CLUSTER_ROLES, "", name) is None:
            body = {**role, "metadata": {"name": name, "labels": dict(bootstrap_label)}}
            registry.create_internal(CLUSTER_ROLES, body)
    for name, group in BOOTSTRAP_BINDINGS.items():
        if registry.store.get(CLUSTER_ROLE_BINDINGS, "", name) is None:
            binding = {
                "metadata": {"name": name, "labels": dict(bootstrap_label)},
                "roleRef": {"apiGroup": GROUP, "kind": "ClusterRole", "name": name},
                "subjects": [{"apiGroup": GROUP, "kind": "Group", "name": group}],
            }
            registry.create_internal(CLUSTER_ROLE_BINDINGS, binding)
