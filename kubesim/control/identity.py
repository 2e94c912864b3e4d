"""The user a container's process runs as: ``runAsUser``/``runAsGroup``, ``fsGroup``.

Honoured only when kubesim runs as root (it cannot change user otherwise): container values
win over the pod's; without ``runAsGroup`` the group is the user's from /etc/passwd, or 0 for a
numeric user that is not there (as container runtimes do); ``fsGroup`` and
``supplementalGroups`` become extra groups. ``runAsNonRoot`` refuses a process that would run
as uid 0.
"""

from __future__ import annotations

import os
import pwd
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .podenv import ContainerConfigError
from .volumes import Mount, VolumeDirs


@dataclass(frozen=True)
class Identity:
    """The user a container process runs as, and whether kubesim must switch to it."""

    uid: int
    gid: int
    groups: tuple[int, ...] = ()
    switch: bool = False


def resolve_identity(pod: Mapping[str, Any], container: Mapping[str, Any]) -> Identity:
    """The process's user; raises ContainerConfigError for ``runAsNonRoot`` with uid 0."""
    pod_sc = (pod.get("spec") or {}).get("securityContext") or {}
    sc = {**pod_sc, **(container.get("securityContext") or {})}
    root = os.geteuid() == 0
    wanted = sc.get("runAsUser")
    uid = int(wanted) if root and wanted is not None else os.geteuid()
    if sc.get("runAsNonRoot") and uid == 0:
        m = pod["metadata"]
        raise ContainerConfigError(
            "container has runAsNonRoot and image will run as root "
            f'(pod: "{m["name"]}_{m["namespace"]}({m["uid"]})", container: {container.get("name")})'
        )
    if not root:
        return Identity(os.geteuid(), os.getegid())
    group = sc.get("runAsGroup")
    gid = primary_group(uid) if group is None else int(group)
    extra = [pod_sc.get("fsGroup"), *(pod_sc.get("supplementalGroups") or [])]
    groups = tuple(sorted({int(g) for g in extra if g is not None} - {gid}))
    return Identity(uid, gid, groups, switch=(uid, gid, groups) != (0, 0, ()))


def primary_group(uid: int) -> int:
    """The user's group from /etc/passwd; 0 for a numeric user the "image" does not know."""
    try:
        return pwd.getpwuid(uid).pw_gid
    except KeyError:
        return 0


def home_of(uid: int) -> str:
    """The user's home from /etc/passwd, ``/`` when unknown (as runtimes set ``HOME``)."""
    try:
        return pwd.getpwuid(uid).pw_dir
    except KeyError:
        return "/"


def give_volumes(pod: Mapping[str, Any], mounts: list[Mount], identity: Identity) -> None:
    """Make the claims writable by the pod's user, as ``fsGroup`` (or a fresh volume) would."""
    if not identity.switch:
        return
    fs_group = ((pod.get("spec") or {}).get("securityContext") or {}).get("fsGroup")
    group = identity.gid if fs_group is None else int(fs_group)
    for mount in mounts:
        if mount.read_only or not mount.host_path.is_dir():
            continue
        stat = mount.host_path.stat()
        owner = identity.uid if stat.st_uid == 0 else None  # a fresh volume: the user's own
        VolumeDirs.give_to(mount.host_path, owner, group)


def user_switch(setpriv: str | None, identity: Identity) -> list[str]:
    """The ``setpriv … --`` prefix that makes the command run as ``identity`` (or nothing)."""
    if not identity.switch:
        return []
    if setpriv is None:
        raise ContainerConfigError("cannot run as another user: setpriv is not installed")
    groups = ",".join(str(g) for g in identity.groups)
    return [
        setpriv,
        f"--reuid={identity.uid}",
        f"--regid={identity.gid}",
        f"--groups={groups}" if groups else "--clear-groups",
        "--",
    ]
