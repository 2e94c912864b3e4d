"""The Kubernetes backend's settings: the seed's ``KUBERNETES_*`` variables, validated eagerly.

Besides the seed's variables this holds everything a session's pod and PVC are rendered from:
security defaults, the advanced cases (GPU, sidecars, placement…), profiles and the optional
NetworkPolicy. Each value is checked when it is set and the checks that span several settings
run when the settings are constructed; the checks themselves are in
:mod:`~raworc_spawner.backends.kubernetes.checks`.
"""

from __future__ import annotations

from typing import Any

from traitlets import Bool, Dict, Enum, Int, List, Unicode, validate
from traitlets.config import LoggingConfigurable

from raworc_spawner.backends.base import Profile, SessionSpec
from raworc_spawner.backends.kubernetes import checks, effective
from raworc_spawner.backends.kubernetes.checks import NamedErrors

KEEP_ALIVE_COMMAND = ["sh", "-c", "trap 'exit 0' TERM; while :; do sleep 3600 & wait $!; done"]

# The trait types; the configuration reference (docs/configuration.md) shows their names.


class _Int(NamedErrors, Int):
    """An Int trait whose type errors name the setting."""


class _Bool(NamedErrors, Bool):
    """A Bool trait whose type errors name the setting."""


class _Unicode(NamedErrors, Unicode):
    """A Unicode trait whose type errors name the setting."""


class _List(NamedErrors, List):
    """A List trait whose type errors name the setting."""


class _Dict(NamedErrors, Dict):
    """A Dict trait whose type errors name the setting."""


class _Enum(NamedErrors, Enum):
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
        default_value="Never",
        help="""restartPolicy of session pods. Default Never: when the session's server exits
        the pod ends (Succeeded on exit 0, Failed otherwise) and the session leaves ready at
        once: idle on exit 0, error with the exit code and reason otherwise. With OnFailure or
        Always the session leaves ready all the same (any exit of its container is seen), but
        the kubelet restarts the container while its pod is being removed.""",
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
        session-id, session-name) and the owner label raworc.dev/instance cannot be
        overridden. Empty: none.""",
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

    @validate(*checks.TRAIT_CHECKS)
    def _check_trait(self, proposal: dict[str, Any]) -> Any:
        return checks.check_trait(proposal["trait"].name, proposal["value"])

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.check()

    def check(self) -> None:
        """Run the checks that span settings (construction already did; again after changes).

        Raises :class:`~raworc_spawner.errors.InvalidConfig` naming the setting.
        """
        checks.check_settings(self)

    # -- per-session values ------------------------------------------------------------------------

    def profile_name(self, spec: SessionSpec) -> str | None:
        """The profile a session runs with: its own choice, else default_profile, else None."""
        return spec.profile or self.default_profile or None

    def effective(self, spec: SessionSpec) -> dict[str, Any]:
        """Every per-session value after profile and request overrides (validates ``spec``).

        Keys: image, image_pull_policy, the four resource keys, gpu_limit, storage_size,
        storage_class, node_selector, tolerations, affinity, priority_class_name, env,
        extra_pod_config, extra_container_config. Raises ValidationError for a bad spec.
        """
        self.validate_spec(spec)
        return self.merged_values(spec)

    def merged_values(self, spec: SessionSpec) -> dict[str, Any]:
        """Like :meth:`effective`, without validating ``spec`` first."""
        name = self.profile_name(spec)
        return effective.merged(self, self.profiles.get(name, {}) if name else {}, spec.resources)

    def resources(self, spec: SessionSpec | None = None) -> dict[str, dict[str, str]]:
        """The container ``resources`` block (requests and limits that are set, GPUs in limits)."""
        values = self.effective(spec) if spec is not None else effective.merged(self, {}, {})
        return effective.resources_block(values, gpu_resource_name=self.gpu_resource_name)

    def profile_catalog(self) -> dict[str, Profile]:
        """Profile name → description and effective image/resources/storage, sorted by name."""
        return effective.catalog(self)

    def validate_spec(self, spec: SessionSpec) -> None:
        """Raise :class:`ValidationError` naming the field if ``spec`` cannot be rendered."""
        checks.check_spec(self, spec)
