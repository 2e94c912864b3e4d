"""The Kubernetes backend's own settings: how to reach the API server and how patient to be.

What a session's pod and PVC look like is :class:`~raworc_spawner.backends.kubernetes.settings.
KubernetesSettings`; these are configured as ``c.KubernetesBackend.<name>``.
"""

from __future__ import annotations

from traitlets import Bool, Float, Int, Unicode
from traitlets.config import LoggingConfigurable


class BackendOptions(LoggingConfigurable):
    """Settings of :class:`~raworc_spawner.backends.kubernetes.backend.KubernetesBackend`.

    Configured as ``c.KubernetesBackend.<name>`` (traitlets reads a class's settings under the
    names of its bases too).
    """

    api_url = Unicode(
        "",
        help="""URL of the Kubernetes API server. Empty: detect (in-cluster ServiceAccount,
        then KUBECONFIG / ~/.kube/config). When set it is used as is, with api_token.""",
    ).tag(config=True)
    api_token = Unicode("", help="""Bearer token for api_url.""").tag(config=True)
    api_token_file = Unicode("", help="""File holding the bearer token for api_url.""").tag(
        config=True
    )
    ca_file = Unicode("", help="""CA bundle for api_url's TLS certificate.""").tag(config=True)
    verify_tls = Bool(True, help="""Verify api_url's TLS certificate.""").tag(config=True)
    kubeconfig = Unicode(
        "", help="""Kubeconfig file. Empty: $KUBECONFIG, then ~/.kube/config."""
    ).tag(config=True)
    context = Unicode("", help="""Kubeconfig context. Empty: the current context.""").tag(
        config=True
    )
    api_retries = Int(
        5,
        help="""Attempts per API request when it fails with 429, 5xx or a connection error
        (1 = no retry). Waits grow exponentially with jitter; Retry-After is honoured.""",
    ).tag(config=True)
    api_backoff_seconds = Float(0.1, help="""First retry wait, in seconds.""").tag(config=True)
    api_backoff_max_seconds = Float(5.0, help="""Longest retry wait, in seconds.""").tag(
        config=True
    )
    delete_grace_seconds = Int(
        -1,
        help="""Grace period (seconds) given to a session pod when it is paused or deleted.
        -1 uses the pod's terminationGracePeriodSeconds; 0 kills at once.""",
    ).tag(config=True)
    unschedulable_grace_seconds = Float(
        30.0,
        help="""Seconds a pod may stay unschedulable (no node fits) before the session fails
        with reason Unschedulable and the scheduler's message. 0 fails at once.""",
    ).tag(config=True)
    provisioning_grace_seconds = Float(
        5.0,
        help="""Seconds a workspace claim may stay unbound after its provisioner reported
        ProvisioningFailed before the start fails with that reason and the provisioner's
        message. The failure is decided by the claim still being unbound, not by the event
        alone; an event about another claim (another uid) is ignored. 0 fails at once.""",
    ).tag(config=True)
    expected_warning_seconds = Float(
        60.0,
        help="""Seconds after a workspace claim is created during which FailedMount and
        FailedAttachVolume warnings about its pod are reported as progress rather than
        warnings (a fresh volume routinely needs a moment to attach). FailedScheduling while
        the claim is not yet bound is always progress. 0 reports them all as warnings.""",
    ).tag(config=True)
    events_per_session = Int(
        50,
        help="""Kubernetes events kept in memory per session (a ring). An event updated in
        place (its count) is one entry.""",
    ).tag(config=True)
    watch_timeout_seconds = Int(
        300,
        help="""Server-side timeout of each watch request; the watch then resumes from the
        last resourceVersion (no re-LIST).""",
    ).tag(config=True)
    gone_timeout_seconds = Float(
        120.0,
        help="""Seconds to wait for a deleted pod or PVC to disappear before giving up; the
        error then names the object, the finalizers holding it and when its deletion was
        requested.""",
    ).tag(config=True)
