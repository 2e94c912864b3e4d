"""Operator tools: ``doctor`` (is the cluster ready for us?), ``render`` and ``cleanup``.

``doctor`` automates the seed's troubleshooting section: each check prints what it found and,
when it fails, the command that fixes it.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass

import yaml

from raworc_spawner.app import RaworcApp
from raworc_spawner.backends.base import SessionSpec
from raworc_spawner.backends.kubernetes.apierrors import APIError, APINotFound
from raworc_spawner.backends.kubernetes.backend import KubernetesBackend
from raworc_spawner.backends.kubernetes.client import KubeClient
from raworc_spawner.errors import RaworcError

#: (verb, resource, API group) the backend uses, for the RBAC check.
REQUIRED_ACCESS: tuple[tuple[str, str, str], ...] = (
    *((verb, "pods", "") for verb in ("create", "get", "list", "watch", "delete")),
    ("get", "pods/log", ""),
    *(
        (verb, "persistentvolumeclaims", "")
        for verb in ("create", "get", "list", "watch", "delete")
    ),
    ("list", "events", ""),
    ("watch", "events", ""),
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
    backend = KubernetesBackend(parent=app)
    namespace = backend.namespace
    try:
        client = await backend.connect(attempts=2)
    except RaworcError as e:
        return [Check(False, f"configuration: {e}", "set KUBECONFIG or KubernetesBackend.api_url")]
    checks = [Check(True, f"configuration: {client.source}")]
    try:
        checks += await _cluster_checks(client, backend, namespace)
    finally:
        await client.close()
    return checks


async def _cluster_checks(
    client: KubeClient, backend: KubernetesBackend, namespace: str
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
    checks += await _rbac_checks(client, backend, namespace)
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
    client: KubeClient, backend: KubernetesBackend, namespace: str
) -> list[Check]:
    wanted = list(REQUIRED_ACCESS)
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


async def cleanup(app: RaworcApp, *, delete: bool) -> list[str]:
    """Orphans (resources without a session record); deleted when ``delete`` is true."""
    from raworc_spawner.store import SessionStore

    store = SessionStore(app.effective_db_url())
    await store.open()
    from raworc_spawner.core import make_backend

    backend = make_backend(app.core_settings(), parent=app)
    await backend.start(lambda event: None)
    try:
        inventory = await backend.inventory()
        known = await store.all_ids()
        orphans = sorted((inventory.compute | inventory.workspaces) - known)
        if delete:
            for orphan in orphans:
                await backend.delete(orphan)
        return orphans
    finally:
        await backend.close()
        await store.close()
