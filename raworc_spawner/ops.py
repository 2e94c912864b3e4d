"""Operator tools: ``doctor`` (is the cluster ready for us?), ``render`` and ``cleanup``.

``doctor`` automates the seed's troubleshooting section: each check prints what it found and,
when it fails, the command that fixes it.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import yaml
from sqlalchemy.engine import make_url

from raworc_spawner.app import RaworcApp
from raworc_spawner.backends.base import Backend, ForeignObject, SessionSpec
from raworc_spawner.backends.kubernetes.apierrors import APIError, APINotFound
from raworc_spawner.backends.kubernetes.backend import KubernetesBackend
from raworc_spawner.backends.kubernetes.client import KubeClient
from raworc_spawner.backends.kubernetes.naming import INSTANCE_LABEL, SESSION_SELECTOR
from raworc_spawner.errors import RaworcError
from raworc_spawner.sessions.model import (
    ACTIVE_STATES,
    EventKind,
    Session,
    SessionEvent,
    SessionState,
    utcnow,
)

if TYPE_CHECKING:
    from raworc_spawner.store import SessionStore

#: (verb, resource, API group) the backend uses, for the RBAC check.
REQUIRED_ACCESS: tuple[tuple[str, str, str], ...] = (
    *((verb, "pods", "") for verb in ("create", "get", "list", "watch", "delete", "patch")),
    ("get", "pods/log", ""),
    *(
        (verb, "persistentvolumeclaims", "")
        for verb in ("create", "get", "list", "watch", "delete", "patch")
    ),
    ("list", "events", ""),
    ("watch", "events", ""),
)
#: The leader election of replicas, needed on a PostgreSQL store only (docs/ha.md).
LEASE_ACCESS = tuple(
    (verb, "leases", "coordination.k8s.io") for verb in ("get", "create", "update")
)
NETWORK_POLICY_ACCESS = (
    ("create", "networkpolicies", "networking.k8s.io"),
    ("get", "networkpolicies", "networking.k8s.io"),
    ("update", "networkpolicies", "networking.k8s.io"),
)


@dataclass
class Check:
    """One doctor finding."""

    ok: bool | None
    what: str
    fix: str = ""

    def line(self) -> str:
        """The finding as printed: ✓ passed, ✗ failed (with the fix), - not checkable."""
        mark = {True: "✓", False: "✗", None: "-"}[self.ok]
        text = f"{mark} {self.what}"
        return f"{text}\n    fix: {self.fix}" if self.fix and self.ok is False else text


async def doctor(app: RaworcApp) -> list[Check]:
    """Run every check against the configured cluster."""
    from raworc_spawner.core import instance_name_of

    try:
        instance = instance_name_of(app.core_settings(), app.effective_db_url(), parent=app)
    except RaworcError as e:
        return [Check(False, f"configuration: {e}", "fix RaworcApp.instance_name")]
    backend = KubernetesBackend(parent=app, instance_name=instance)
    namespace = backend.namespace
    try:
        client = await backend.connect(attempts=2)
    except RaworcError as e:
        return [Check(False, f"configuration: {e}", "set KUBECONFIG or KubernetesBackend.api_url")]
    checks = [Check(True, f"configuration: {client.source}")]
    try:
        replicated = make_url(app.effective_db_url()).get_backend_name() == "postgresql"
        checks += await _cluster_checks(client, backend, namespace, replicated=replicated)
    finally:
        await client.close()
    return checks


async def _cluster_checks(
    client: KubeClient, backend: KubernetesBackend, namespace: str, *, replicated: bool
) -> list[Check]:
    try:
        version = await client.version()
    except RaworcError as e:
        return [Check(False, f"API server unreachable: {e}", "kubectl cluster-info")]
    checks = [Check(True, f"API server {version.get('gitVersion', '?')} reachable")]
    try:
        await client.get_namespace(namespace)
        checks.append(Check(True, f"namespace {namespace} exists"))
    except APINotFound:
        checks.append(
            Check(
                False, f"namespace {namespace} is missing", f"kubectl create namespace {namespace}"
            )
        )
    except APIError as e:
        checks.append(Check(None, f"namespace {namespace} not checkable: {e}"))
    checks += await _rbac_checks(client, backend, namespace, replicated=replicated)
    checks.append(await _owners_check(client, namespace, backend.instance_name))
    checks.append(await _storage_check(client, backend.settings.storage_class))
    checks.append(
        Check(
            None,
            f"image {backend.settings.image}: not checkable from here (the node's kubelet pulls "
            "it); a pull failure fails the first session with ErrImagePull and the reason",
        )
    )
    return checks


async def _rbac_checks(
    client: KubeClient, backend: KubernetesBackend, namespace: str, *, replicated: bool
) -> list[Check]:
    wanted = list(REQUIRED_ACCESS)
    if replicated:  # replicas elect a leader with a Lease; a lone SQLite server never does
        wanted += LEASE_ACCESS
    if backend.settings.create_network_policy:
        wanted += NETWORK_POLICY_ACCESS
    answers = await asyncio.gather(
        *(client.can_i(verb, res, namespace, group=group) for verb, res, group in wanted),
        return_exceptions=True,
    )
    denied = [f"{v} {r}" for (v, r, _), ok in zip(wanted, answers, strict=True) if ok is not True]
    if not denied:
        return [Check(True, f"RBAC: all {len(wanted)} permissions granted in {namespace}")]
    return [
        Check(
            False,
            f"RBAC: not allowed to {', '.join(denied)} in {namespace}",
            "kubectl apply -f deploy/rbac.yaml (or grant these verbs to the ServiceAccount)",
        )
    ]


async def _owners_check(client: KubeClient, namespace: str, instance: str) -> Check:
    """Whose session objects the namespace holds (this instance's, others', none's)."""
    counts: dict[str | None, int] = {}
    try:
        for resource in ("pods", "persistentvolumeclaims"):
            items, _ = await client.list_all(resource, namespace, label_selector=SESSION_SELECTOR)
            for obj in items:
                owner = (obj["metadata"].get("labels") or {}).get(INSTANCE_LABEL)
                counts[owner] = counts.get(owner, 0) + 1
    except APIError as e:
        return Check(None, f"session objects not checkable: {e}")
    mine = counts.pop(instance, 0)
    unowned = counts.pop(None, 0)
    parts = [f"{mine} of this instance ({instance})"]
    parts += [f"{n} of instance {name}" for name, n in sorted(counts.items(), key=str)]
    if unowned:
        parts.append(
            f"{unowned} naming no instance (claimed by the server whose store records them, "
            "at its next start)"
        )
    others = " (other instances' objects are never touched)" if counts or unowned else ""
    return Check(None, f"session pods and claims in {namespace}: {', '.join(parts)}{others}")


async def _storage_check(client: KubeClient, storage_class: str) -> Check:
    try:
        classes = await client.list_storage_classes()
    except APIError as e:
        return Check(None, f"storage classes not checkable: {e}")
    names = {sc["metadata"]["name"] for sc in classes}
    if storage_class:
        if storage_class in names:
            return Check(True, f"storage class {storage_class} exists")
        return Check(
            False,
            f"storage class {storage_class} does not exist (have: {', '.join(sorted(names))})",
            "kubectl get storageclass; set KUBERNETES_STORAGE_CLASS to one of them",
        )
    defaults = [
        sc["metadata"]["name"]
        for sc in classes
        if (sc["metadata"].get("annotations") or {}).get(
            "storageclass.kubernetes.io/is-default-class"
        )
        == "true"
    ]
    if defaults:
        return Check(True, f"default storage class {defaults[0]} will provision workspaces")
    return Check(
        False,
        "no default storage class: workspace PVCs would stay Pending",
        "set KUBERNETES_STORAGE_CLASS, or mark a class as the default",
    )


def render(app: RaworcApp, *, name: str, profile: str | None, session_id: str | None) -> str:
    """The YAML documents a session called ``name`` would get."""
    backend = KubernetesBackend(parent=app)
    spec = SessionSpec(
        session_id=session_id or str(uuid.uuid4()), name=name, owner="admin", profile=profile
    )
    backend.validate(spec)
    docs = [backend.renderer.render_pvc(spec), backend.renderer.render_pod(spec)]
    if backend.settings.create_network_policy:
        docs.append(backend.renderer.render_network_policy())
    return yaml.safe_dump_all(docs, sort_keys=False)


@dataclass(frozen=True, slots=True)
class Finding:
    """One line of ``cleanup``: what (a session id or ``kind/name``) and what was found or done."""

    subject: str
    verdict: str

    def line(self) -> str:
        """As printed: the subject, two spaces, the verdict."""
        return f"{self.subject}  {self.verdict}"


#: How long ``cleanup`` tries to reach the backend a store's other sessions were recorded on.
OTHER_BACKEND_TIMEOUT_SECONDS = 20.0


async def cleanup(app: RaworcApp, *, delete: bool) -> list[Finding]:
    """What no session record accounts for, and what ``delete`` removed.

    - this instance's objects of unknown sessions that cannot be re-adopted: orphaned
      (``delete`` removes them, workspace included: an operator's explicit word);
    - ones that can be re-adopted (their objects say whose they are): left for the server;
    - objects of other instances, or naming none: listed, never touched;
    - compute of sessions recorded on the other backend (left running by a switch of
      ``KUBERNETES_ENABLED``): ``delete`` stops it (workspace kept) and marks them idle.
    """
    from raworc_spawner.core import instance_name_of, make_backend
    from raworc_spawner.store import SessionStore

    settings = app.core_settings()
    store = SessionStore(app.effective_db_url())
    await store.open()
    try:
        instance = instance_name_of(settings, store.url, parent=app)
        backend = make_backend(settings, instance_name=instance, parent=app)
        await backend.start(lambda event: None)
        try:
            records = await _all_records(store)
            findings = await _unrecorded(backend, records, delete=delete)
            findings += [_foreign_finding(o, backend) for o in await backend.foreign()]
        finally:
            await backend.close()
        elsewhere = [s for s in records.values() if s.backend not in (None, backend.name)]
        if elsewhere:
            findings += await _left_elsewhere(app, store, elsewhere, delete=delete)
        return findings
    finally:
        await store.close()


async def _all_records(store: SessionStore) -> dict[str, Session]:
    records: dict[str, Session] = {}
    cursor: str | None = None
    while True:
        page, cursor = await store.list(limit=1000, cursor=cursor)
        records.update((s.id, s) for s in page)
        if cursor is None:
            return records


async def _unrecorded(
    backend: Backend, records: dict[str, Session], *, delete: bool
) -> list[Finding]:
    inventory = await backend.inventory()
    unknown = sorted((inventory.compute | inventory.workspaces) - records.keys())
    adoptable = {found.session_id for found in await backend.describe(unknown)}
    findings: list[Finding] = []
    for sid in unknown:
        if sid in adoptable:
            findings.append(Finding(sid, "no record: the server re-adopts it (never deleted)"))
        elif delete:
            await backend.delete(sid)
            findings.append(Finding(sid, "deleted"))
        else:
            findings.append(Finding(sid, "orphaned (run with --delete to remove)"))
    return findings


def _foreign_finding(obj: ForeignObject, backend: Backend) -> Finding:
    subject = f"{obj.kind}/{obj.name}"
    if obj.instance is None:
        return Finding(
            subject,
            "names no owner instance: never touched (a server whose store has its session "
            "claims it; otherwise remove it yourself)",
        )
    return Finding(
        subject,
        f"belongs to instance {obj.instance} (this is {backend.instance_name}): never touched",
    )


async def _left_elsewhere(
    app: RaworcApp, store: SessionStore, sessions: list[Session], *, delete: bool
) -> list[Finding]:
    """Compute of sessions recorded on the other backend; stopped (and idle) with ``delete``."""
    from raworc_spawner.core import instance_name_of, make_backend

    settings = replace(app.core_settings(), kubernetes_enabled=not app.kubernetes_enabled)
    name = "kubernetes" if settings.kubernetes_enabled else "local"
    try:
        async with asyncio.timeout(OTHER_BACKEND_TIMEOUT_SECONDS):
            instance = instance_name_of(settings, store.url, parent=app)
            other = make_backend(settings, instance_name=instance, parent=app)
            await other.start(lambda event: None)
    except (RaworcError, TimeoutError) as e:
        why = str(e) or f"no answer within {OTHER_BACKEND_TIMEOUT_SECONDS:g} s"
        return [
            Finding(
                s.id,
                f"recorded on the {name} backend ({s.state}), which cannot be reached from "
                f"here ({why}): its compute may still run there",
            )
            for s in sessions
        ]
    try:
        running = (await other.inventory()).compute
        findings: list[Finding] = []
        for session in sorted(sessions, key=lambda s: s.id):
            findings += await _settle_elsewhere(other, store, session, running, delete=delete)
        return findings
    finally:
        await other.close()


async def _settle_elsewhere(
    other: Backend,
    store: SessionStore,
    session: Session,
    running: frozenset[str],
    *,
    delete: bool,
) -> list[Finding]:
    has_compute = session.id in running
    active = session.state in ACTIVE_STATES
    if not has_compute and not active:
        return []
    where = f"on the {other.name} backend (session {session.name!r}, {session.state})"
    if not delete:
        what = "compute still running" if has_compute else "recorded as running"
        return [Finding(session.id, f"{what} {where} (run with --delete to stop it)")]
    if has_compute:
        await other.pause(session.id)
    if active:
        event = SessionEvent(
            session.id,
            0,
            EventKind.PAUSED,
            f"compute on the {other.name} backend stopped by cleanup after a backend switch",
            state=SessionState.IDLE,
            reason="BackendSwitched",
        )
        stopped = session.evolve(
            state=SessionState.IDLE, terminated_at=utcnow(), termination_reason="BackendSwitched"
        )
        await store.update_and_record(stopped, event)
    return [Finding(session.id, f"compute stopped {where}; the session is idle, workspace kept")]
