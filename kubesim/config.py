"""Settings for a simulated cluster: nodes, storage classes, timings, tokens and limits."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field


@dataclass
class Timings:
    """Delays (seconds) the simulated control plane waits before each step.

    Zero means "at the next turn of the event loop". Tests use the fast defaults; demos and
    benchmarks can slow the cluster down to look like a real one.
    """

    schedule_delay: float = 0.0
    """From an unscheduled pod (or a change that may let it fit) to the scheduling decision."""
    scheduler_retry: float = 0.5
    """How often unschedulable pods are retried even when nothing visible changed."""
    pv_bind_delay: float = 0.05
    """From a Pending claim with a usable storage class to ``Bound``."""
    kubelet_start_delay: float = 0.02
    """From binding to the kubelet noticing the pod (sandbox, pod IP, ``Pulling``)."""
    image_pull_delay: float = 0.05
    """Time an image pull takes (``Pulling`` → ``Pulled``)."""
    container_start_delay: float = 0.02
    """From ``Pulled`` to the container running (``Created``, ``Started``)."""
    image_pull_backoff: float = 0.2
    """From ``ErrImagePull`` to ``ImagePullBackOff``."""
    crash_backoff: float = 0.2
    """First restart back-off of a container that keeps exiting (the kubelet's 10 s): the
    first restart is immediate, the next waits this long in ``CrashLoopBackOff``, and each
    further one twice as long as the last, up to ``crash_backoff_max``."""
    crash_backoff_max: float = 3.2
    """Cap of the restart back-off (the kubelet's 5 min). A container that ran for twice the
    cap without exiting restarts at once again."""
    termination_delay: float = 0.05
    """Time a container takes to exit after SIGTERM, capped by the pod's grace period."""
    log_interval: float = 0.0
    """Interval between simulated log lines of a running container; 0 disables them."""


@dataclass
class NodeSpec:
    """One simulated node and what it can hold."""

    name: str
    cpu: str = "8"
    memory: str = "32Gi"
    pods: int = 110
    ephemeral_storage: str = "100Gi"
    labels: dict[str, str] = field(default_factory=dict)


@dataclass
class StorageClassSpec:
    """A storage class the PV binder provisions volumes for."""

    name: str
    binding_mode: str = "Immediate"
    reclaim_policy: str = "Delete"
    provisioner: str = "kubesim.io/hostpath"
    default: bool = False
    allow_expansion: bool = True
    supports_cloning: bool = True
    """Whether the simulated CSI driver can clone a claim (a PVC ``dataSource``)."""


@dataclass
class Rule:
    """A permission: verbs on resources (plural names, ``*`` for all) in namespaces.

    ``namespaces`` empty or ``["*"]`` means every namespace and cluster-scoped resources.
    Resources may name a subresource (``pods/log``); ``pods`` alone does not grant it.
    """

    verbs: list[str]
    resources: list[str]
    namespaces: list[str] = field(default_factory=lambda: ["*"])
    groups: list[str] = field(default_factory=lambda: ["*"])


@dataclass
class TokenPolicy:
    """What one bearer token may do, and the user name it authenticates as."""

    user: str
    rules: list[Rule]


def _default_nodes() -> list[NodeSpec]:
    return [NodeSpec(name="kubesim-node-1")]


def _default_storage_classes() -> list[StorageClassSpec]:
    return [
        # The default binds like kind's and most CSI classes: when a pod first uses the claim.
        StorageClassSpec(name="standard", default=True, binding_mode="WaitForFirstConsumer"),
        StorageClassSpec(name="immediate"),
        StorageClassSpec(name="wait-for-consumer", binding_mode="WaitForFirstConsumer"),
        StorageClassSpec(name="no-cloning", supports_cloning=False),
    ]


@dataclass
class KubeSimConfig:
    """Everything a :class:`~kubesim.KubeSim` is built from."""

    host: str = "127.0.0.1"
    port: int = 0
    """TCP port; 0 picks a free ephemeral port."""
    tls: bool = False
    """Serve HTTPS with a self-signed certificate. kubectl needs it: client-go sends bearer
    tokens only over TLS. kubernetes_asyncio and KubeSpawner work either way."""
    admin_token: str = field(default_factory=lambda: secrets.token_hex(24))
    """Token allowed everything, including the ``/_kubesim`` control endpoints."""
    tokens: dict[str, TokenPolicy] = field(default_factory=dict)
    """Further tokens and their policies (the admin token needs no entry)."""
    namespaces: list[str] = field(default_factory=lambda: ["default", "kube-system"])
    """Namespaces that exist at start (each with a ``default`` service account)."""
    nodes: list[NodeSpec] = field(default_factory=_default_nodes)
    storage_classes: list[StorageClassSpec] = field(default_factory=_default_storage_classes)
    timings: Timings = field(default_factory=Timings)
    failing_image_pattern: str = r"(^|/)(does-not-exist|invalid-image)[^/]*$"
    """Regular expression; images matching it fail to pull (``ErrImagePull``)."""
    history_size: int = 20000
    """Watch events kept for resuming; older resourceVersions get ``410 Gone``."""
    event_limit: int = 5000
    """Most core/v1 Events kept; the oldest are deleted beyond it."""
    bookmark_interval: float = 1.0
    """Seconds between BOOKMARK events on watches that asked for them."""
    default_watch_timeout: float = 1800.0
    """Seconds a watch without ``timeoutSeconds`` stays open."""
    kubernetes_version: str = "v1.32.0"
    run_processes: bool = False
    """Run each container's command as a local process bound to the pod IP (opt-in)."""
    sandbox: str = "auto"
    """Process mode's isolation: ``auto`` (bubblewrap when installed and working, else the
    host), ``bwrap`` (bubblewrap or refuse to start) or ``none`` (the host; mount paths in env,
    command, args and workingDir are rewritten to the volumes' directories)."""
    sandbox_paths: list[str] = field(default_factory=list)
    """Host paths bound read-only into every sandbox, besides the system directories and the
    Python installation kubesim runs from."""
    state_dir: str | None = None
    """Directory for volume data in process mode (``volumes/<pv>``, ``pods/<uid>``); None: a
    temporary directory removed when kubesim stops."""
    seed: int | None = None
    """Seed for the random choices of fault injection; None for unpredictable."""

    def validate(self) -> None:
        """Raise ValueError naming the first invalid setting."""
        if not self.nodes:
            raise ValueError("KubeSimConfig.nodes: at least one node is needed")
        try:
            re.compile(self.failing_image_pattern)
        except re.error as e:
            raise ValueError(f"KubeSimConfig.failing_image_pattern: {e}") from e
        if self.history_size < 1 or self.event_limit < 1:
            raise ValueError("KubeSimConfig.history_size and event_limit must be positive")
        if self.sandbox not in ("auto", "bwrap", "none"):
            raise ValueError(
                f"KubeSimConfig.sandbox: {self.sandbox!r} is not one of auto, bwrap, none"
            )
        defaults = [sc.name for sc in self.storage_classes if sc.default]
        if len(defaults) > 1:
            raise ValueError(f"KubeSimConfig.storage_classes: several defaults {defaults}")
