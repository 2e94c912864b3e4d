"""The Kubernetes backend's settings: the seed's ``KUBERNETES_*`` variables, validated eagerly.

Besides the seed's variables this holds everything a session's pod and PVC are rendered from:
security defaults, the advanced cases (GPU, sidecars, placement…), profiles and the optional
NetworkPolicy. Each value is checked when it is set; :meth:`KubernetesSettings.check` adds the
checks that span several settings.
"""

from __future__ import annotations

import os
import re
from typing import Any, NoReturn

from traitlets import Bool, Dict, Enum, HasTraits, Int, List, TraitType, Unicode, validate
from traitlets.config import LoggingConfigurable

from raworc_spawner.backends.base import SessionSpec
from raworc_spawner.backends.kubernetes import profiles as pc
from raworc_spawner.backends.kubernetes.naming import (
    ANNOTATION_PREFIX,
    CONTRACT_LABELS,
)
from raworc_spawner.errors import InvalidConfig, ValidationError

_DNS1123_LABEL_RE = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
_DNS1123_LABEL = "1 to 63 lowercase letters, digits or '-', starting and ending alphanumeric"

KEEP_ALIVE_COMMAND = ["sh", "-c", "trap 'exit 0' TERM; while :; do sleep 3600 & wait $!; done"]
MAIN_CONTAINER = "session"
WORKSPACE_VOLUME = "workspace"
TMP_VOLUME = "tmp"
WORKSPACE_PATH = "/workspace"
TMP_PATH = "/tmp"

_S = "KubernetesSettings."


class _NamedErrors(TraitType[Any, Any]):
    """A trait whose type errors are InvalidConfig naming the setting, like the value checks."""

    def error(
        self,
        obj: HasTraits | None,
        value: Any,
        error: Exception | None = None,
        info: str | None = None,
    ) -> NoReturn:
        owner = type(obj).__name__ if obj is not None else "KubernetesSettings"
        allowed = info or self.info()
        item_info = error.args[1] if error is not None and len(error.args) > 1 else None
        if isinstance(item_info, str):  # an element of a list was refused
            allowed = f"{allowed} whose items are {item_info}"
        raise InvalidConfig(f"{owner}.{self.name}", value, allowed)


class _Int(_NamedErrors, Int):
    pass


class _Bool(_NamedErrors, Bool):
    pass


class _Unicode(_NamedErrors, Unicode):
    pass


class _List(_NamedErrors, List):
    pass


class _Dict(_NamedErrors, Dict):
    pass


class _Enum(_NamedErrors, Enum):
    """An Enum that also refuses unknown values when parsed from text (env, command line)."""

    def from_string(self, s: str) -> Any:
        if s not in (self.values or ()):
            raise ValueError(f"{s!r} is not one of " + ", ".join(map(str, self.values or ())))
        return super().from_string(s)


class KubernetesSettings(LoggingConfigurable):
    """Where and how session pods and PVCs are created (``KUBERNETES_*`` in the environment)."""

    # -- the seed's settings ---------------------------------------------------------------------

    namespace = _Unicode(
        "raworc-sessions",
        help="""Kubernetes namespace for session pods and PVCs (KUBERNETES_NAMESPACE).""",
    ).tag(config=True)

    image = _Unicode(
        "python:3.11-slim",
        help="""Container image of session pods (KUBERNETES_IMAGE).""",
    ).tag(config=True)

    image_pull_policy = _Enum(
        ["Always", "IfNotPresent", "Never"],
        default_value="IfNotPresent",
        help="""Image pull policy of session containers (KUBERNETES_IMAGE_PULL_POLICY): Always,
        IfNotPresent or Never.""",
    ).tag(config=True)

    cpu_request = _Unicode(
        "100m",
        help="""CPU guaranteed to each session, a Kubernetes quantity in cores (``100m`` = 0.1
        core) (KUBERNETES_CPU_REQUEST). Empty means no request.""",
    ).tag(config=True)

    memory_request = _Unicode(
        "128Mi",
        help="""Memory guaranteed to each session, a quantity in bytes (``128Mi``)
        (KUBERNETES_MEMORY_REQUEST). Empty means no request.""",
    ).tag(config=True)

    cpu_limit = _Unicode(
        "1000m",
        help="""Most CPU a session may use, a quantity in cores (KUBERNETES_CPU_LIMIT). Empty
        means no limit.""",
    ).tag(config=True)

    memory_limit = _Unicode(
        "1Gi",
        help="""Most memory a session may use, a quantity in bytes; above it the container is
        OOM-killed (KUBERNETES_MEMORY_LIMIT). Empty means no limit.""",
    ).tag(config=True)

    storage_size = _Unicode(
        "1Gi",
        help="""Size requested for each session's workspace PVC (KUBERNETES_STORAGE_SIZE).""",
    ).tag(config=True)

    storage_class = _Unicode(
        "",
        help="""StorageClass of workspace PVCs (KUBERNETES_STORAGE_CLASS). Empty means the
        cluster's default class.""",
    ).tag(config=True)

    # -- the pod -----------------------------------------------------------------------------------

    command = _List(
        Unicode(),
        default_value=KEEP_ALIVE_COMMAND,
        help="""Command of the session container when the session does not bring its own (a
        hub-launched session passes its server command). Default: a shell that sleeps until
        SIGTERM and then exits at once, so pods stop without waiting for the grace period.
        Empty means the image's own entrypoint.""",
    ).tag(config=True)

    restart_policy = _Enum(
        ["Always", "OnFailure", "Never"],
        default_value="OnFailure",
        help="""restartPolicy of session pods. Default OnFailure: a crashing session is restarted
        by the kubelet, while one that exits cleanly (a user stopping their server) stays
        stopped, and the session becomes idle with its workspace kept.""",
    ).tag(config=True)

    termination_grace_period_seconds = _Int(
        30,
        help="""Seconds a session pod gets between SIGTERM and SIGKILL when it is stopped
        (terminationGracePeriodSeconds). 0 kills at once.""",
    ).tag(config=True)

    service_account_name = _Unicode(
        "",
        help="""ServiceAccount session pods run as. Empty means the namespace's ``default``
        account. Its token is mounted only if automount_service_account_token is true.""",
    ).tag(config=True)

    image_pull_secrets = _List(
        Unicode(),
        help="""Names of Secrets (type kubernetes.io/dockerconfigjson, in the sessions'
        namespace) used to pull the image. Empty list: none.""",
    ).tag(config=True)

    node_selector = _Dict(
        help="""Node labels a session pod must be scheduled on, e.g. ``{"pool": "sessions"}``.
        Empty: any node.""",
    ).tag(config=True)

    tolerations: List[Any] = _List(
        help="""Tolerations of session pods, as Kubernetes toleration dicts (``key``,
        ``operator``, ``value``, ``effect``, ``tolerationSeconds``). Empty: none.""",
    ).tag(config=True)

    affinity = _Dict(
        help="""The pod's ``affinity`` (nodeAffinity, podAffinity, podAntiAffinity) as a
        Kubernetes dict. Empty: no affinity rules.""",
    ).tag(config=True)

    priority_class_name = _Unicode(
        "",
        help="""PriorityClass of session pods (priorityClassName). Empty: the cluster's default
        priority.""",
    ).tag(config=True)

    gpu_limit = _Int(
        0,
        help="""GPUs each session gets (a limit on gpu_resource_name). 0 means no GPU.""",
    ).tag(config=True)

    gpu_resource_name = _Unicode(
        "nvidia.com/gpu",
        help="""Extended resource name the GPU count is requested under (``nvidia.com/gpu``,
        ``amd.com/gpu``…).""",
    ).tag(config=True)

    home_dir = _Unicode(
        "/workspace",
        help="""HOME of the session container. Default /workspace: with a read-only root
        filesystem and a UID the image may not know, the workspace is the one writable place
        that also persists (shell history, pip --user, caches). extra_env, a profile's env or
        the session's own env may set HOME instead. Empty: the image's HOME.""",
    ).tag(config=True)

    extra_env = _Dict(
        help="""Environment variables added to every session container, name → value. A value
        may also be a valueFrom dict, e.g. ``{"secretKeyRef": {"name": "s", "key": "k"}}``.
        The session's own variables (SESSION_ID, SESSION_NAME, STARTING_PROMPT and those of the
        request) win over these. Empty: none.""",
    ).tag(config=True)

    extra_labels = _Dict(
        help="""Labels added to session pods and PVCs. The contract labels (app, component,
        session-id, session-name) cannot be overridden. Empty: none.""",
    ).tag(config=True)

    extra_annotations = _Dict(
        help="""Annotations added to session pods and PVCs. Keys under ``raworc.dev/`` are
        reserved. Empty: none.""",
    ).tag(config=True)

    init_containers: List[Any] = _List(
        help="""Init containers run before the session container, as Kubernetes container
        dicts with at least ``name`` and ``image``. They get the container security defaults
        unless they set those keys themselves. Empty: none.""",
    ).tag(config=True)

    sidecar_containers: List[Any] = _List(
        help="""Extra containers beside the session container (a database, a proxy…), as
        Kubernetes container dicts with at least ``name`` and ``image``. They get the container
        security defaults unless they set those keys themselves. Empty: none.""",
    ).tag(config=True)

    extra_volumes: List[Any] = _List(
        help="""Volumes added to session pods, as Kubernetes volume dicts (``name`` plus a
        source). The names ``workspace`` and ``tmp`` are taken. Empty: none.""",
    ).tag(config=True)

    extra_volume_mounts: List[Any] = _List(
        help="""volumeMounts added to the session container (``name``, ``mountPath``…). Paths
        /workspace and /tmp are taken. Empty: none.""",
    ).tag(config=True)

    extra_pod_config = _Dict(
        help="""Deep-merged into the rendered pod ``spec`` last: dicts merge key by key, lists
        and other values replace. For fields no setting covers. Empty: nothing.""",
    ).tag(config=True)

    extra_container_config = _Dict(
        help="""Deep-merged into the session container last (same rules as
        extra_pod_config). Empty: nothing.""",
    ).tag(config=True)

    template_dir = _Unicode(
        "",
        help="""Directory of custom manifest templates. A file there (``pod.yaml.j2``,
        ``pvc.yaml.j2``, ``networkpolicy.yaml.j2``) replaces the packaged template of that name.
        Empty: the packaged templates.""",
    ).tag(config=True)

    # -- security ----------------------------------------------------------------------------------

    run_as_user = _Int(
        1000,
        allow_none=True,
        help="""UID session containers run as (pod runAsUser). None: the image's user, which
        must then be a numeric non-root USER since run_as_non_root is enforced.""",
    ).tag(config=True)

    run_as_group = _Int(
        1000,
        allow_none=True,
        help="""Primary GID of session containers (pod runAsGroup). None: the image's.""",
    ).tag(config=True)

    fs_group = _Int(
        1000,
        allow_none=True,
        help="""GID that owns the workspace volume (pod fsGroup), so the session user can write
        to /workspace. None: no fsGroup.""",
    ).tag(config=True)

    run_as_non_root = _Bool(
        True,
        help="""Refuse to start containers whose user is root (runAsNonRoot).""",
    ).tag(config=True)

    allow_privilege_escalation = _Bool(
        False,
        help="""Let processes gain more privileges than their parent (setuid binaries, sudo).
        Must stay false for the restricted Pod Security Standard.""",
    ).tag(config=True)

    read_only_root_filesystem = _Bool(
        True,
        help="""Mount the container's root filesystem read-only; /workspace and /tmp stay
        writable. Set false for images that write elsewhere (e.g. pip install --user).""",
    ).tag(config=True)

    tmp_size_limit = _Unicode(
        "",
        help="""Size limit of the writable /tmp emptyDir, a quantity in bytes (``512Mi``).
        Empty: no limit other than the node's.""",
    ).tag(config=True)

    automount_service_account_token = _Bool(
        False,
        help="""Mount the pod's ServiceAccount token in the container. Off: sessions get no
        credentials for the Kubernetes API.""",
    ).tag(config=True)

    pod_security_context = _Dict(
        help="""When not empty, the whole pod ``securityContext``, replacing the one built from
        run_as_user, run_as_group, fs_group, run_as_non_root and seccomp RuntimeDefault.""",
    ).tag(config=True)

    container_security_context = _Dict(
        help="""When not empty, the whole container ``securityContext`` of every container,
        replacing the one built from allow_privilege_escalation, read_only_root_filesystem
        and capabilities drop ALL.""",
    ).tag(config=True)

    # -- network policy ----------------------------------------------------------------------------

    create_network_policy = _Bool(
        False,
        help="""Create and keep the NetworkPolicy ``session-pods-isolation`` in the namespace:
        ingress only from the raworc server pods, egress only to DNS, the namespace and
        network_policy_egress_cidrs. Needs a CNI that enforces NetworkPolicies.""",
    ).tag(config=True)

    network_policy_egress_cidrs = _List(
        Unicode(),
        help="""Networks session pods may connect to, in CIDR notation (``0.0.0.0/0`` for the
        internet, ``10.20.0.0/16``…). Empty: no egress besides DNS and the namespace.""",
    ).tag(config=True)

    network_policy_allow_same_namespace = _Bool(
        True,
        help="""Allow egress to every pod in the sessions' namespace (the seed's policy).
        Sessions still cannot reach each other: their ingress admits only the server.""",
    ).tag(config=True)

    server_pod_labels = _Dict(
        default_value={"app": "raworc", "component": "server"},
        help="""Labels of the raworc server pods, the only pods allowed to connect to session
        pods. Must not be empty (empty would admit every pod).""",
    ).tag(config=True)

    server_namespace = _Unicode(
        "",
        help="""Namespace the raworc server pods run in. Empty: the sessions' namespace.""",
    ).tag(config=True)

    # -- profiles ----------------------------------------------------------------------------------

    profiles = _Dict(
        help="""Named presets a session may choose at create time (``"profile": "gpu-small"``),
        name → dict with any of: description, image, image_pull_policy, cpu_request,
        cpu_limit, memory_request, memory_limit, storage_size, storage_class, gpu_limit,
        node_selector, tolerations, affinity, priority_class_name, env, extra_pod_config,
        extra_container_config. A key replaces the setting of the same name; env and the
        extra_*_config dicts merge on top. Names are DNS-1123 labels. Empty: no profiles.""",
    ).tag(config=True)

    default_profile = _Unicode(
        "",
        help="""Profile used when a session names none. Empty: the settings above as they
        are.""",
    ).tag(config=True)

    # -- validation --------------------------------------------------------------------------------

    @validate("cpu_request", "memory_request", "cpu_limit", "memory_limit", "tmp_size_limit")
    def _check_resource(self, proposal: dict[str, Any]) -> str:
        return pc.check_quantity(_name(proposal), proposal["value"])

    @validate("gpu_limit", "termination_grace_period_seconds")
    def _check_count(self, proposal: dict[str, Any]) -> int:
        return pc.check_count(_name(proposal), proposal["value"])

    @validate("storage_size")
    def _check_storage(self, proposal: dict[str, Any]) -> str:
        return pc.check_quantity(_name(proposal), proposal["value"], allow_empty=False)

    @validate("namespace")
    def _check_namespace(self, proposal: dict[str, Any]) -> str:
        value = str(proposal["value"])
        if not is_dns1123_label(value):
            raise InvalidConfig(_name(proposal), value, _DNS1123_LABEL)
        return value

    @validate("server_namespace")
    def _check_server_namespace(self, proposal: dict[str, Any]) -> str:
        value = str(proposal["value"])
        if value and not is_dns1123_label(value):
            raise InvalidConfig(_name(proposal), value, _DNS1123_LABEL)
        return value

    @validate("image")
    def _check_image(self, proposal: dict[str, Any]) -> str:
        return pc.check_image(_name(proposal), proposal["value"])

    @validate("service_account_name", "priority_class_name")
    def _check_object_name(self, proposal: dict[str, Any]) -> str:
        return pc.check_object_name(_name(proposal), proposal["value"])

    @validate("gpu_resource_name")
    def _check_gpu_resource(self, proposal: dict[str, Any]) -> str:
        value = proposal["value"]
        if not pc.is_qualified_name(value) or "/" not in value:
            raise InvalidConfig(_name(proposal), value, "an extended resource like nvidia.com/gpu")
        return str(value)

    @validate("image_pull_secrets")
    def _check_pull_secrets(self, proposal: dict[str, Any]) -> list[str]:
        return pc.check_name_list(_name(proposal), proposal["value"])

    @validate("node_selector", "server_pod_labels")
    def _check_labels(self, proposal: dict[str, Any]) -> dict[str, str]:
        value = pc.check_labels(_name(proposal), proposal["value"])
        if proposal["trait"].name == "server_pod_labels" and not value:
            raise InvalidConfig(_name(proposal), value, "at least one label")
        return value

    @validate("extra_labels")
    def _check_extra_labels(self, proposal: dict[str, Any]) -> dict[str, str]:
        value = pc.check_labels(_name(proposal), proposal["value"])
        for key in value:
            if key in CONTRACT_LABELS:
                raise InvalidConfig(f"{_name(proposal)}[{key!r}]", key, "not a contract label")
        return value

    @validate("extra_annotations")
    def _check_extra_annotations(self, proposal: dict[str, Any]) -> dict[str, str]:
        value = pc.check_annotations(_name(proposal), proposal["value"])
        for key in value:
            if key.startswith(ANNOTATION_PREFIX):
                raise InvalidConfig(
                    f"{_name(proposal)}[{key!r}]", key, "a key not under raworc.dev/"
                )
        return value

    @validate("tolerations")
    def _check_tolerations(self, proposal: dict[str, Any]) -> list[dict[str, Any]]:
        return pc.check_tolerations(_name(proposal), proposal["value"])

    @validate("affinity")
    def _check_affinity(self, proposal: dict[str, Any]) -> dict[str, Any]:
        return pc.check_affinity(_name(proposal), proposal["value"])

    @validate("extra_env")
    def _check_env(self, proposal: dict[str, Any]) -> dict[str, Any]:
        return pc.check_env(_name(proposal), proposal["value"])

    @validate(
        "extra_pod_config",
        "extra_container_config",
        "pod_security_context",
        "container_security_context",
    )
    def _check_config_dict(self, proposal: dict[str, Any]) -> dict[str, Any]:
        return pc.check_config_dict(_name(proposal), proposal["value"])

    @validate("init_containers", "sidecar_containers")
    def _check_containers(self, proposal: dict[str, Any]) -> list[dict[str, Any]]:
        return pc.check_containers(_name(proposal), proposal["value"], reserved=(MAIN_CONTAINER,))

    @validate("extra_volumes")
    def _check_volumes(self, proposal: dict[str, Any]) -> list[dict[str, Any]]:
        reserved = (WORKSPACE_VOLUME, TMP_VOLUME)
        return pc.check_volumes(_name(proposal), proposal["value"], reserved=reserved)

    @validate("extra_volume_mounts")
    def _check_mounts(self, proposal: dict[str, Any]) -> list[dict[str, Any]]:
        reserved = (WORKSPACE_PATH, TMP_PATH)
        return pc.check_volume_mounts(_name(proposal), proposal["value"], reserved_paths=reserved)

    @validate("network_policy_egress_cidrs")
    def _check_cidrs(self, proposal: dict[str, Any]) -> list[str]:
        return pc.check_cidrs(_name(proposal), proposal["value"])

    @validate("template_dir")
    def _check_template_dir(self, proposal: dict[str, Any]) -> str:
        value = str(proposal["value"])
        if value and not os.path.isdir(value):
            raise InvalidConfig(_name(proposal), value, "an existing directory, or empty")
        return value

    @validate("profiles")
    def _check_profiles(self, proposal: dict[str, Any]) -> dict[str, dict[str, Any]]:
        return pc.check_profiles(_name(proposal), proposal["value"])

    @validate("default_profile")
    def _check_default_profile(self, proposal: dict[str, Any]) -> str:
        value = str(proposal["value"])
        return pc.check_profile_name(_name(proposal), value) if value else value

    def check(self) -> None:
        """Checks that span settings: requests within limits, names that refer to each other."""
        _check_within_limit(_S, self._base_resources())
        for name, profile in self.profiles.items():
            prefix = f"{_S}profiles[{name!r}]."
            merged = {**self._base_resources(), **profile}
            _check_within_limit(prefix, merged, own=profile)
        if self.default_profile and self.default_profile not in self.profiles:
            available = ", ".join(sorted(self.profiles)) or "no profiles are configured"
            raise InvalidConfig(
                _S + "default_profile", self.default_profile, f"one of: {available}"
            )
        self._check_container_names()
        self._check_mount_names()

    def _check_container_names(self) -> None:
        names = [c["name"] for c in [*self.init_containers, *self.sidecar_containers]]
        for name in names:
            if names.count(name) > 1:
                raise InvalidConfig(
                    _S + "sidecar_containers", name, "names distinct from init_containers"
                )

    def _check_mount_names(self) -> None:
        volumes = {WORKSPACE_VOLUME, TMP_VOLUME} | {v["name"] for v in self.extra_volumes}
        for i, mount in enumerate(self.extra_volume_mounts):
            if mount["name"] not in volumes:
                raise InvalidConfig(
                    f"{_S}extra_volume_mounts[{i}].name",
                    mount["name"],
                    "the name of a volume: " + ", ".join(sorted(volumes)),
                )

    # -- per-session values ------------------------------------------------------------------------

    def _base_resources(self) -> dict[str, str]:
        return {key: getattr(self, key) for key in pc.RESOURCE_KEYS}

    def profile_name(self, spec: SessionSpec) -> str | None:
        """The profile a session runs with: its own choice, else default_profile, else None."""
        return spec.profile or self.default_profile or None

    def effective(self, spec: SessionSpec) -> dict[str, Any]:
        """Every per-session value after profile and request overrides (validates ``spec``).

        Keys: image, image_pull_policy, the four resource keys, gpu_limit, storage_size,
        storage_class, node_selector, tolerations, affinity, priority_class_name, env,
        extra_pod_config, extra_container_config.
        """
        self.validate_spec(spec)
        name = self.profile_name(spec)
        return self._merged(self.profiles.get(name, {}) if name else {}, spec.resources)

    def _merged(self, profile: dict[str, Any], requested: Any) -> dict[str, Any]:
        values: dict[str, Any] = {key: getattr(self, key) for key in _PROFILE_OVERRIDABLE}
        values["env"] = {"HOME": self.home_dir} if self.home_dir else {}
        values["env"].update(self.extra_env)
        values["extra_pod_config"] = self.extra_pod_config
        values["extra_container_config"] = self.extra_container_config
        for key, value in profile.items():
            if key == "env":
                values["env"].update(value)
            elif key in ("extra_pod_config", "extra_container_config"):
                values[key] = pc.deep_merge(values[key], value)
            elif key != "description":
                values[key] = value
        values.update({k: v for k, v in dict(requested).items() if k in pc.RESOURCE_KEYS})
        return values

    def resources(self, spec: SessionSpec | None = None) -> dict[str, dict[str, str]]:
        """The container ``resources`` block (requests and limits that are set, GPUs in limits)."""
        values = self.effective(spec) if spec is not None else self._merged({}, {})
        return pc.resources_block(values, gpu_resource_name=self.gpu_resource_name)

    def profile_catalog(self) -> dict[str, dict[str, Any]]:
        """Profile name → description and effective image/resources/storage, JSON-ready."""
        return {name: self._catalog_entry(name) for name in sorted(self.profiles)}

    def _catalog_entry(self, name: str) -> dict[str, Any]:
        values = self._merged(self.profiles[name], {})
        return {
            "name": name,
            "description": self.profiles[name].get("description", ""),
            "default": name == self.default_profile,
            "image": values["image"],
            "image_pull_policy": values["image_pull_policy"],
            "resources": {key: values[key] for key in (*pc.RESOURCE_KEYS, "gpu_limit")},
            "storage_size": values["storage_size"],
            "storage_class": values["storage_class"],
        }

    def validate_spec(self, spec: SessionSpec) -> None:
        """Raise :class:`ValidationError` naming the field if ``spec`` cannot be rendered."""
        if spec.profile and spec.profile not in self.profiles:
            available = ", ".join(sorted(self.profiles)) or "none are configured"
            raise ValidationError(
                "profile", f"unknown profile {spec.profile!r}; available: {available}"
            )
        pc.validate_requested_resources(spec.resources)
        name = self.profile_name(spec)
        merged = self._merged(self.profiles.get(name, {}) if name else {}, spec.resources)
        over = pc.request_over_limit(merged)
        if over:
            kind, request, limit = over
            raise ValidationError(
                "resources", f"{kind}_request {request} exceeds {kind}_limit {limit}"
            )
        pc.validate_spec_fields(spec)


_PROFILE_OVERRIDABLE = (
    "image",
    "image_pull_policy",
    *pc.RESOURCE_KEYS,
    "gpu_limit",
    "storage_size",
    "storage_class",
    "node_selector",
    "tolerations",
    "affinity",
    "priority_class_name",
)


def is_dns1123_label(value: str) -> bool:
    """Whether ``value`` is a DNS-1123 label (a Kubernetes namespace or object name part)."""
    return _DNS1123_LABEL_RE.fullmatch(value) is not None


def _name(proposal: dict[str, Any]) -> str:
    return _S + proposal["trait"].name


def _check_within_limit(prefix: str, resources: dict[str, Any], own: Any = None) -> None:
    """Raise if a request exceeds its limit; ``own`` holds the keys set under ``prefix``."""
    over = pc.request_over_limit(resources)
    if over:
        kind, request, limit = over
        limit_key = f"{kind}_limit"
        limit_name = f"{prefix if own is None or limit_key in own else _S}{limit_key}"
        raise InvalidConfig(
            f"{prefix}{kind}_request", request, f"must not exceed {limit_name} ({limit})"
        )
