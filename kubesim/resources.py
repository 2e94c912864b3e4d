"""The resource types kubesim serves, with the facts discovery and routing need."""

from __future__ import annotations

from dataclasses import dataclass

STANDARD_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")
READ_VERBS = ("get", "list")
RBAC_GROUP = "rbac.authorization.k8s.io"


@dataclass(frozen=True)
class ResourceType:
    """One REST resource: where it lives, what it is called and which verbs it takes."""

    group: str
    version: str
    kind: str
    plural: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    verbs: tuple[str, ...] = STANDARD_VERBS
    subresources: tuple[str, ...] = ()
    name_rule: str = "subdomain"
    """``subdomain`` (RFC 1123), ``label`` (RFC 1123 label), ``label1035`` or ``path``."""
    stored: bool = True
    """False for virtual resources answered on the fly (reviews, metrics)."""
    return_deleted: bool = False
    """DELETE answers with the object rather than a Status when it goes at once."""
    has_status: bool = False
    """Writes to the main resource keep the stored status (status subresource semantics)."""

    @property
    def key(self) -> str:
        """``pods`` for the core group, ``networkpolicies.networking.k8s.io`` otherwise."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def singular(self) -> str:
        return self.kind.lower()

    @property
    def list_kind(self) -> str:
        return f"{self.kind}List"

    @property
    def group_version(self) -> tuple[str, str]:
        return self.group, self.version


def _core(kind: str, plural: str, namespaced: bool = True, **kw: object) -> ResourceType:
    return ResourceType("", "v1", kind, plural, namespaced, **kw)  # type: ignore[arg-type]


RESOURCES: tuple[ResourceType, ...] = (
    _core(
        "Namespace",
        "namespaces",
        False,
        short_names=("ns",),
        name_rule="label",
        subresources=("status", "finalize"),
        return_deleted=True,
        has_status=True,
        verbs=("create", "delete", "get", "list", "patch", "update", "watch"),
    ),
    _core(
        "Pod",
        "pods",
        short_names=("po",),
        subresources=("status", "log", "binding", "exec"),
        return_deleted=True,
        has_status=True,
    ),
    _core(
        "PersistentVolumeClaim",
        "persistentvolumeclaims",
        short_names=("pvc",),
        subresources=("status",),
        return_deleted=True,
        has_status=True,
    ),
    _core(
        "PersistentVolume",
        "persistentvolumes",
        False,
        short_names=("pv",),
        subresources=("status",),
        return_deleted=True,
        has_status=True,
    ),
    _core("Event", "events", short_names=("ev",)),
    _core(
        "Service",
        "services",
        short_names=("svc",),
        subresources=("status",),
        name_rule="label1035",
        return_deleted=True,
        has_status=True,
    ),
    _core("Secret", "secrets"),
    _core("ConfigMap", "configmaps", short_names=("cm",)),
    _core("ServiceAccount", "serviceaccounts", short_names=("sa",), subresources=("token",)),
    _core(
        "ResourceQuota",
        "resourcequotas",
        short_names=("quota",),
        subresources=("status",),
        has_status=True,
    ),
    _core(
        "Node",
        "nodes",
        False,
        short_names=("no",),
        subresources=("status",),
        return_deleted=True,
        has_status=True,
    ),
    ResourceType(
        "networking.k8s.io", "v1", "NetworkPolicy", "networkpolicies", True, short_names=("netpol",)
    ),
    ResourceType(
        "storage.k8s.io", "v1", "StorageClass", "storageclasses", False, short_names=("sc",)
    ),
    ResourceType(
        "apps",
        "v1",
        "Deployment",
        "deployments",
        True,
        short_names=("deploy",),
        subresources=("status",),
        has_status=True,
    ),
    *(
        ResourceType(
            "batch",
            "v1",
            kind,
            plural,
            True,
            short_names=short,
            subresources=("status",),
            has_status=True,
        )
        for kind, plural, short in (("Job", "jobs", ()), ("CronJob", "cronjobs", ("cj",)))
    ),
    ResourceType(
        "scheduling.k8s.io", "v1", "PriorityClass", "priorityclasses", False, short_names=("pc",)
    ),
    ResourceType("coordination.k8s.io", "v1", "Lease", "leases", True),
    ResourceType(
        "policy",
        "v1",
        "PodDisruptionBudget",
        "poddisruptionbudgets",
        True,
        short_names=("pdb",),
        subresources=("status",),
        has_status=True,
    ),
    *(
        ResourceType(RBAC_GROUP, "v1", kind, plural, namespaced, name_rule="path")
        for kind, plural, namespaced in (
            ("Role", "roles", True),
            ("RoleBinding", "rolebindings", True),
            ("ClusterRole", "clusterroles", False),
            ("ClusterRoleBinding", "clusterrolebindings", False),
        )
    ),
    ResourceType(
        "authorization.k8s.io",
        "v1",
        "SelfSubjectAccessReview",
        "selfsubjectaccessreviews",
        False,
        verbs=("create",),
        stored=False,
        name_rule="path",
    ),
    ResourceType(
        "metrics.k8s.io", "v1beta1", "PodMetrics", "pods", True, verbs=READ_VERBS, stored=False
    ),
    ResourceType(
        "metrics.k8s.io", "v1beta1", "NodeMetrics", "nodes", False, verbs=READ_VERBS, stored=False
    ),
)

GROUP_PREFERRED = {
    "": "v1",
    "networking.k8s.io": "v1",
    "storage.k8s.io": "v1",
    "apps": "v1",
    "batch": "v1",
    "scheduling.k8s.io": "v1",
    "coordination.k8s.io": "v1",
    "policy": "v1",
    RBAC_GROUP: "v1",
    "authorization.k8s.io": "v1",
    "metrics.k8s.io": "v1beta1",
}


class Catalog:
    """Look-ups over :data:`RESOURCES` by group/version/plural, key and kind."""

    def __init__(self, resources: tuple[ResourceType, ...] = RESOURCES) -> None:
        self.resources = resources
        self._by_path = {(r.group, r.version, r.plural): r for r in resources}
        self._by_key = {r.key: r for r in resources if r.stored}
        self._by_kind = {(r.api_version, r.kind): r for r in resources}

    def find(self, group: str, version: str, plural: str) -> ResourceType | None:
        return self._by_path.get((group, version, plural))

    def by_key(self, key: str) -> ResourceType:
        return self._by_key[key]

    def by_kind(self, api_version: str, kind: str) -> ResourceType | None:
        return self._by_kind.get((api_version, kind))

    def groups(self) -> list[str]:
        """Named API groups, in a stable order (the core group excluded)."""
        seen: list[str] = []
        for r in self.resources:
            if r.group and r.group not in seen:
                seen.append(r.group)
        return seen

    def in_group_version(self, group: str, version: str) -> list[ResourceType]:
        return [r for r in self.resources if r.group == group and r.version == version]


CATALOG = Catalog()
