"""Where pods' volumes live on this machine: a directory per bound PV and per pod emptyDir.

Layout under the state directory::

    volumes/<pv name>/                  a PersistentVolume's data (``pvc-<claim uid>``)
    pods/<pod uid>/volumes/<volume>/    a pod's emptyDir volumes

A volume's directory outlives every pod that mounts it; it is removed only when its
PersistentVolume object is deleted (the claim's reclaim policy ``Delete``, or by hand). A pod's
emptyDir directories are removed with the pod, as the kubelet removes them.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from ..objects import Obj
from ..store import Store

CLONED_FROM = "kubesim.io/cloned-from"
EMPTY_DIR_MODE = 0o777  # the kubelet creates emptyDir volumes world-writable
PASSAGE_MODE = 0o711
"""Directories above volumes: a pod's user (runAsUser, without bubblewrap) must get through
them to its volume, without listing other pods' volumes."""


class VolumeError(Exception):
    """A volume a container mounts cannot be set up (its claim is missing or unbound)."""


@dataclass(frozen=True)
class Mount:
    """One volume mount of a container: the host directory and where the process sees it."""

    volume: str
    host_path: Path
    mount_path: str
    read_only: bool = False
    scratch: bool = False
    """An emptyDir: it starts empty, so nothing in it can be the user's data."""


class VolumeDirs:
    """Creates, finds and removes the host directories behind pod volumes."""

    def __init__(self, root: Path, store: Store) -> None:
        self.root = root
        self.store = store

    def _passage(self, *parts: str) -> Path:
        """``root/parts…``, each level created traversable by every user."""
        path = self.root
        for part in parts:
            path = path / part
            if not path.is_dir():
                path.mkdir(parents=True, exist_ok=True)
                path.chmod(PASSAGE_MODE)
        return path

    def volume_dir(self, pv_name: str) -> Path:
        """The directory of one PersistentVolume (not created)."""
        return self.root / "volumes" / pv_name

    def pod_dir(self, pod_uid: str) -> Path:
        return self.root / "pods" / pod_uid

    def mounts(self, pod: Obj, container: Obj) -> list[Mount]:
        """The container's mounts, their directories created; raises VolumeError."""
        volumes = {v["name"]: v for v in (pod.get("spec") or {}).get("volumes") or []}
        mounts: list[Mount] = []
        for item in container.get("volumeMounts") or []:
            volume = volumes.get(item.get("name", ""))
            if volume is None:
                raise VolumeError(f'volume "{item.get("name")}" is not defined in the pod')
            host = self._host_dir(pod, volume)
            if host is None:
                continue  # a volume type kubesim does not back with a directory
            sub = str(item.get("subPath") or "")
            if sub:
                host = _inside(host, sub)
                host.mkdir(parents=True, exist_ok=True)
            mounts.append(
                Mount(
                    volume=volume["name"],
                    host_path=host,
                    mount_path=str(item["mountPath"]),
                    read_only=bool(item.get("readOnly")),
                    scratch="emptyDir" in volume,
                )
            )
        return mounts

    def _host_dir(self, pod: Obj, volume: Obj) -> Path | None:
        if "persistentVolumeClaim" in volume:
            claim = str(volume["persistentVolumeClaim"].get("claimName", ""))
            return self.claim_dir(pod["metadata"]["namespace"], claim)
        if "emptyDir" in volume:
            return self.empty_dir(pod["metadata"]["uid"], volume["name"])
        return None

    def claim_dir(self, namespace: str, claim: str) -> Path:
        """The directory of a bound claim's volume, created (a clone copies its source)."""
        pvc = self.store.get("persistentvolumeclaims", namespace, claim)
        if pvc is None:
            raise VolumeError(f'persistentvolumeclaim "{claim}" not found')
        pv_name = (pvc.get("spec") or {}).get("volumeName")
        if not pv_name or (pvc.get("status") or {}).get("phase") != "Bound":
            raise VolumeError(f'persistentvolumeclaim "{claim}" is not bound')
        path = self.volume_dir(str(pv_name))
        if not path.exists():
            self._provision(path, str(pv_name))
        return path

    def _provision(self, path: Path, pv_name: str) -> None:
        pv = self.store.get("persistentvolumes", "", pv_name) or {}
        source = ((pv.get("metadata") or {}).get("annotations") or {}).get(CLONED_FROM, "")
        source_dir = self.volume_dir(source) if source else None
        if source_dir is not None and source_dir.is_dir():
            self._passage("volumes")
            shutil.copytree(source_dir, path, symlinks=True)
        else:
            self._passage("volumes")
            path.mkdir(exist_ok=True)

    def empty_dir(self, pod_uid: str, volume: str) -> Path:
        path = self.pod_dir(pod_uid) / "volumes" / volume
        if not path.exists():
            self._passage("pods", pod_uid, "volumes")
            path.mkdir()
            path.chmod(EMPTY_DIR_MODE)
        return path

    def remove_volume(self, pv_name: str) -> None:
        """Delete a PersistentVolume's data (its PV object is gone)."""
        if pv_name and "/" not in pv_name:
            shutil.rmtree(self.volume_dir(pv_name), ignore_errors=True)

    def remove_pod(self, pod_uid: str) -> None:
        """Delete a pod's emptyDir volumes (never its claims' data)."""
        if pod_uid and "/" not in pod_uid:
            shutil.rmtree(self.pod_dir(pod_uid), ignore_errors=True)

    @staticmethod
    def give_to(path: Path, uid: int | None, gid: int | None) -> None:
        """Let ``uid``/``gid`` write ``path`` as fsGroup would: group-owned, group-writable, setgid.

        Only the directory itself changes (like ``fsGroupChangePolicy: OnRootMismatch`` when the
        root already matches); does nothing unless running as root.
        """
        if os.geteuid() != 0 or (uid is None and gid is None):
            return
        stat = path.stat()
        want_uid = stat.st_uid if uid is None else uid
        want_gid = stat.st_gid if gid is None else gid
        if (stat.st_uid, stat.st_gid) != (want_uid, want_gid):
            os.chown(path, want_uid, want_gid)
        if gid is not None:
            path.chmod(stat.st_mode & 0o7777 | 0o2070)


def _inside(volume: Path, sub_path: str) -> Path:
    """``volume/sub_path`` if it stays inside the volume once symlinks are resolved.

    As the kubelet refuses a subPath that leaves its volume (a symlink planted in the volume
    pointing elsewhere): the API server already rejects absolute and ``..`` subPaths.
    """
    target = (volume / sub_path).resolve()
    if not target.is_relative_to(volume.resolve()):
        raise VolumeError(f"subPath {sub_path!r} leaves the volume; refusing to mount it")
    return target
