"""The session manager's settings (``c.SessionManager.*``), apart from its code."""

from __future__ import annotations

from traitlets import Bool, Enum, Float, Int, Unicode
from traitlets.config import LoggingConfigurable


class ManagerSettings(LoggingConfigurable):
    """Settings of :class:`~raworc_spawner.sessions.manager.SessionManager`.

    Configured as ``c.SessionManager.<name>`` (traitlets reads a class's settings under the
    names of its bases too).
    """

    ready_timeout_seconds = Float(
        300.0,
        help="""Seconds a session may take from create (or resume) to ready before it is moved
        to error with reason ``Timeout``. Fatal conditions fail it sooner.""",
    ).tag(config=True)

    delete_timeout_seconds = Float(
        120.0,
        help="""Seconds to wait for a session's compute and workspace to be removed. If they are
        not gone by then the session is moved to error (reason ``DeleteTimeout``) and kept, so
        nothing leaks silently; deleting again retries.""",
    ).tag(config=True)

    default_waiting_timeout_seconds = Int(
        300,
        help="""Idle timeout (seconds without activity before a ready session is paused) for
        sessions created without their own ``waiting_timeout_seconds``. 0 means never.""",
    ).tag(config=True)

    max_events_per_session = Int(
        200,
        help="""Events kept per session; older ones are dropped.""",
    ).tag(config=True)

    max_sessions_per_user = Int(
        0,
        min=0,
        help="""Most sessions one non-admin user may have at once. 0 means no limit.""",
    ).tag(config=True)

    lost_compute_policy = Enum(
        ["idle", "restart"],
        default_value="idle",
        help="""What to do with a session whose compute vanished by itself (eviction, node loss,
        a pod deleted by hand, compute gone across a server restart): mark it ``idle`` (it
        wakes on the next resume, workspace intact) or ``restart`` its compute at once.""",
    ).tag(config=True)

    keep_failed_compute = Bool(
        False,
        help="""Keep the compute (pod or process) of a session that failed, for debugging. By
        default a session that goes to ``error`` (it could not start, timed out, or its server
        exited with a failure) has its compute removed at once, so nothing keeps backing off
        or running unseen; its workspace is always kept, and a resume creates new compute.""",
    ).tag(config=True)

    cache_sessions = Bool(
        True,
        help="""Keep every session this server reads or writes in memory, so that reads cost no
        database round trip. Correct when this server is the only writer of its store (the
        default set-up); turn it off when several processes change the same sessions (a hub
        and a raworc service sharing a store turn it off themselves).""",
    ).tag(config=True)

    handle_hub_sessions = Bool(
        True,
        help="""React to backend events (compute exited or lost) of sessions a JupyterHub
        spawner made (metadata key ``jupyterhub``). Off in a raworc server running as a hub
        service next to the hub, whose own manager looks after those sessions.""",
    ).tag(config=True)

    activity_flush_seconds = Float(
        5.0,
        min=0.01,
        help="""Seconds between batched writes of session activity (proxied requests,
        heartbeats, agent state changes, compute use). Activity is coalesced in memory in
        between.""",
    ).tag(config=True)

    default_namespace = Unicode(
        "default",
        help="""Logical namespace given to sessions created without one (not a Kubernetes
        namespace).""",
    ).tag(config=True)
