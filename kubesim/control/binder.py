"""The PV binder: provisions a ``pvc-<uid>`` volume for each claim and binds the two.

It plays two components, with their events: the persistentvolume-controller
(``WaitForFirstConsumer`` while a delayed claim has no node, ``ExternalProvisioning`` when it
hands the claim to the provisioner, ``ProvisioningFailed`` for an unknown class) and the
external provisioner, whose events come from ``<provisioner>_<host>_<uuid>`` as a CSI
provisioner's do (``Provisioning``, ``ProvisioningSucceeded``, failures of clones). Messages are
those of ``pkg/controller/volume/persistentvolume`` and ``sig-storage-lib-external-provisioner``.
"""

from __future__ import annotations

import uuid

from ..objects import Obj
from ..store import Change
from .base import Context
from .scheduler import SELECTED_NODE

COMPONENT = "persistentvolume-controller"
PROVISIONER_HOST = "kubesim-provisioner"
DEFAULT_CLASS_ANNOTATION = "storageclass.kubernetes.io/is-default-class"


def storage_class_object(
    name: str,
    *,
    provisioner: str,
    binding_mode: str,
    reclaim_policy: str,
    default: bool,
    allow_expansion: bool,
) -> Obj:
    annotations = {DEFAULT_CLASS_ANNOTATION: "true"} if default else {}
    return {
        "kind": "StorageClass",
        "apiVersion": "storage.k8s.io/v1",
        "metadata": {"name": name, "annotations": annotations},
        "provisioner": provisioner,
        "reclaimPolicy": reclaim_policy,
        "volumeBindingMode": binding_mode,
        "allowVolumeExpansion": allow_expansion,
    }


class Binder:
    """Turns Pending claims into Bound ones, honouring ``WaitForFirstConsumer``."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self._reported: set[tuple[str, str]] = set()
        self._pending: set[str] = set()
        self._no_cloning = {sc.name for sc in ctx.config.storage_classes if not sc.supports_cloning}
        self._identity = str(uuid.uuid4())

    def start(self) -> None:
        for spec in self.ctx.config.storage_classes:
            if self.ctx.store.get("storageclasses.storage.k8s.io", "", spec.name) is None:
                self.ctx.registry.create_internal(
                    "storageclasses.storage.k8s.io",
                    storage_class_object(
                        spec.name,
                        provisioner=spec.provisioner,
                        binding_mode=spec.binding_mode,
                        reclaim_policy=spec.reclaim_policy,
                        default=spec.default,
                        allow_expansion=spec.allow_expansion,
                    ),
                )
        self.ctx.registry.default_storage_class = self.default_class
        self.ctx.store.subscribe(self.on_change)
        for pvc in self.ctx.store.list("persistentvolumeclaims"):
            self._consider(pvc)

    def default_class(self) -> str | None:
        for sc in self.ctx.store.list("storageclasses.storage.k8s.io"):
            if (sc["metadata"].get("annotations") or {}).get(DEFAULT_CLASS_ANNOTATION) == "true":
                return str(sc["metadata"]["name"])
        return None

    def on_change(self, change: Change) -> None:
        if change.resource == "persistentvolumeclaims":
            if change.type == "DELETED":
                self._release(change.obj)
            else:
                self._consider(change.obj)
        elif change.resource == "storageclasses.storage.k8s.io" and change.type != "DELETED":
            for pvc in self.ctx.store.list("persistentvolumeclaims"):
                self._consider(pvc)

    def provisioner_component(self, provisioner: str) -> str:
        """The event source of the external provisioner: ``<name>_<host>_<identity uuid>``."""
        return f"{provisioner}_{PROVISIONER_HOST}_{self._identity}"

    def _report_once(
        self, pvc: Obj, event_type: str, reason: str, message: str, component: str = COMPONENT
    ) -> None:
        key = (pvc["metadata"]["uid"], reason)
        if key not in self._reported:
            self._reported.add(key)
            self.ctx.recorder.record(pvc, event_type, reason, message, component=component)

    def _consider(self, pvc: Obj) -> None:
        m, spec = pvc["metadata"], pvc.get("spec") or {}
        if spec.get("volumeName") or m.get("deletionTimestamp") or m["uid"] in self._pending:
            return
        class_name = spec.get("storageClassName")
        if not class_name:
            self._report_once(
                pvc,
                "Normal",
                "FailedBinding",
                "no persistent volumes available for this claim and no storage class is set",
            )
            return
        sc = self.ctx.store.get("storageclasses.storage.k8s.io", "", class_name)
        if sc is None:
            self._report_once(
                pvc,
                "Warning",
                "ProvisioningFailed",
                f'storageclass.storage.k8s.io "{class_name}" not found',
            )
            return
        provisioner = str(sc.get("provisioner", ""))
        problem = self._clone_problem(pvc, class_name)
        if problem is not None:
            message = f'failed to provision volume with StorageClass "{class_name}": {problem}'
            component = self.provisioner_component(provisioner)
            self._report_once(pvc, "Warning", "ProvisioningFailed", message, component)
            return
        waits = sc.get("volumeBindingMode") == "WaitForFirstConsumer"
        if waits and not (m.get("annotations") or {}).get(SELECTED_NODE):
            self._report_once(
                pvc,
                "Normal",
                "WaitForFirstConsumer",
                "waiting for first consumer to be created before binding",
            )
            return
        self._pending.add(m["uid"])
        self._report_once(
            pvc,
            "Normal",
            "ExternalProvisioning",
            f"Waiting for a volume to be created either by the external provisioner "
            f"'{provisioner}' or manually by the system administrator. If volume creation is "
            "delayed, please verify that the provisioner is running and correctly registered.",
        )
        self._report_once(
            pvc,
            "Normal",
            "Provisioning",
            f'External provisioner is provisioning volume for claim "{m["namespace"]}/{m["name"]}"',
            self.provisioner_component(provisioner),
        )
        self.ctx.timers.later(
            self.ctx.config.timings.pv_bind_delay,
            self._provision,
            m["namespace"],
            m["name"],
            m["uid"],
        )

    def _clone_problem(self, pvc: Obj, class_name: str) -> str | None:
        """Why a claim's ``dataSource`` clone cannot be provisioned, or None (also no clone)."""
        source = (pvc.get("spec") or {}).get("dataSource") or {}
        if not source:
            return None
        if source.get("kind") != "PersistentVolumeClaim":
            return f"data source kind {source.get('kind')!r} is not supported"
        if class_name in self._no_cloning:
            return "rpc error: code = InvalidArgument desc = volume cloning is not supported"
        namespace = pvc["metadata"]["namespace"]
        parent = self.ctx.store.get("persistentvolumeclaims", namespace, source.get("name", ""))
        if parent is None or (parent.get("status") or {}).get("phase") != "Bound":
            return (
                "error getting handle for DataSource Type PersistentVolumeClaim by Name "
                f"{source.get('name')}: claim not found or not bound"
            )
        if (parent.get("spec") or {}).get("storageClassName") != class_name:
            return "the source claim must have the same storage class as the clone"
        return None

    def _provision(self, namespace: str, name: str, uid: str) -> None:
        self._pending.discard(uid)
        pvc = self.ctx.store.get("persistentvolumeclaims", namespace, name)
        if pvc is None or pvc["metadata"]["uid"] != uid or pvc["metadata"].get("deletionTimestamp"):
            return
        sc = (
            self.ctx.store.get("storageclasses.storage.k8s.io", "", pvc["spec"]["storageClassName"])
            or {}
        )
        volume = f"pvc-{uid}"
        storage = pvc["spec"]["resources"]["requests"]["storage"]
        modes = pvc["spec"].get("accessModes") or ["ReadWriteOnce"]
        if self.ctx.store.get("persistentvolumes", "", volume) is None:
            self.ctx.registry.create_internal(
                "persistentvolumes", self._volume(pvc, volume, sc, storage, modes)
            )
        self.ctx.registry.mutate(
            "persistentvolumeclaims",
            namespace,
            name,
            lambda obj: self._bind_claim(obj, volume, storage, modes, sc),
        )
        self.ctx.recorder.record(
            pvc,
            "Normal",
            "ProvisioningSucceeded",
            f"Successfully provisioned volume {volume}",
            component=self.provisioner_component(str(sc.get("provisioner", ""))),
        )

    def _volume(self, pvc: Obj, volume: str, sc: Obj, storage: str, modes: list[str]) -> Obj:
        m = pvc["metadata"]
        return {
            "kind": "PersistentVolume",
            "apiVersion": "v1",
            "metadata": {
                "name": volume,
                "annotations": {
                    "pv.kubernetes.io/provisioned-by": sc.get("provisioner", ""),
                    **self._clone_annotation(pvc),
                },
            },
            "spec": {
                "capacity": {"storage": storage},
                "accessModes": modes,
                "persistentVolumeReclaimPolicy": sc.get("reclaimPolicy", "Delete"),
                "storageClassName": sc.get("metadata", {}).get("name", ""),
                "volumeMode": pvc["spec"].get("volumeMode", "Filesystem"),
                "hostPath": {
                    "path": f"/var/lib/kubesim/volumes/{volume}",
                    "type": "DirectoryOrCreate",
                },
                "claimRef": {
                    "kind": "PersistentVolumeClaim",
                    "apiVersion": "v1",
                    "namespace": m["namespace"],
                    "name": m["name"],
                    "uid": m["uid"],
                    "resourceVersion": m["resourceVersion"],
                },
            },
            "status": {"phase": "Bound"},
        }

    def _clone_annotation(self, pvc: Obj) -> dict[str, str]:
        """``kubesim.io/cloned-from: <source volume>`` on a volume provisioned as a clone."""
        source = (pvc.get("spec") or {}).get("dataSource") or {}
        if not source:
            return {}
        parent = self.ctx.store.get(
            "persistentvolumeclaims", pvc["metadata"]["namespace"], source.get("name", "")
        )
        volume = ((parent or {}).get("spec") or {}).get("volumeName", "")
        return {"kubesim.io/cloned-from": volume}

    @staticmethod
    def _bind_claim(pvc: Obj, volume: str, storage: str, modes: list[str], sc: Obj) -> None:
        pvc["spec"]["volumeName"] = volume
        annotations = pvc["metadata"].setdefault("annotations", {})
        annotations["pv.kubernetes.io/bind-completed"] = "yes"
        annotations["pv.kubernetes.io/bound-by-controller"] = "yes"
        annotations["volume.kubernetes.io/storage-provisioner"] = sc.get("provisioner", "")
        annotations["volume.beta.kubernetes.io/storage-provisioner"] = sc.get("provisioner", "")
        pvc["status"] = {"phase": "Bound", "accessModes": modes, "capacity": {"storage": storage}}

    def _release(self, pvc: Obj) -> None:
        """After a claim is gone its volume is deleted (policy Delete) or Released (Retain)."""
        volume = (pvc.get("spec") or {}).get("volumeName")
        pv = self.ctx.store.get("persistentvolumes", "", volume) if volume else None
        if pv is None:
            return
        if pv["spec"].get("persistentVolumeReclaimPolicy") == "Delete":
            self.ctx.store.remove("persistentvolumes", "", volume or "")
        else:
            self.ctx.registry.mutate(
                "persistentvolumes",
                "",
                volume or "",
                lambda obj: obj.__setitem__("status", {"phase": "Released"}),
            )
