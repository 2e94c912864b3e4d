"""How a container's process is launched in process mode: argv, environment, directory, user.

:func:`plan_process` is the one place that decides it, for the kubelet and for ``kubectl exec``::

    plan = plan_process(pod, "session", ["sh", "-c", "ls"], host=sim.kubelet.host)
    proc = await asyncio.create_subprocess_exec(
        *plan.argv, env=dict(plan.env), cwd=plan.cwd, start_new_session=True
    )

With bubblewrap (``bwrap``) the process gets its own mount, PID, IPC and UTS namespaces: a root
built from read-only binds of the host's system directories (``/usr``, ``/etc``, ``/opt`` …), of
the Python installation kubesim runs from, and of files the command names; every volume mount
bound at its ``mountPath``; ``/proc``, ``/dev`` and a writable root layer with ``/tmp`` (read-only
with ``readOnlyRootFilesystem``). The network is the host's: a process binds its pod IP.

Without bubblewrap the process runs on the host: mount paths in the environment, command, args
and ``workingDir`` are rewritten to the volumes' directories, and the working directory is the
(rewritten) ``workingDir``, else the first volume's directory, else a per-pod scratch directory.

When kubesim runs as root the process runs as the pod's ``runAsUser``/``runAsGroup`` (container
values win over the pod's), with ``fsGroup`` and ``supplementalGroups`` as extra groups, through
``setpriv`` in ``argv``; otherwise as kubesim's own user.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from ..store import Store
from .bwrap import SYSTEM_PATHS, bwrap_args, bwrap_problem, under
from .expansion import expand
from .identity import Identity, give_volumes, home_of, resolve_identity, user_switch
from .podenv import ContainerConfigError, EnvBuilder
from .volumes import Mount, VolumeDirs, VolumeError

log = logging.getLogger(__name__)

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class SandboxMode(StrEnum):
    """How process mode isolates processes (``KubeSimConfig.sandbox``)."""

    AUTO = "auto"
    """bubblewrap when it is installed and works, the host otherwise."""
    BWRAP = "bwrap"
    """bubblewrap, or refuse to start."""
    NONE = "none"
    """The host, with mount paths rewritten to the volumes' directories."""


@dataclass(frozen=True)
class ProcessPlan:
    """Everything needed to start one process of a container "in the pod".

    Start ``argv`` with exactly ``env`` in ``cwd`` (a host directory), in a new session. ``uid``,
    ``gid`` and ``groups`` are the identity the process will have: when it differs from
    kubesim's, ``argv`` switches to it itself (``setpriv``), so the caller does nothing more.
    """

    argv: tuple[str, ...]
    env: Mapping[str, str]
    cwd: str
    uid: int
    gid: int
    groups: tuple[int, ...] = ()
    sandboxed: bool = False
    """True when ``argv`` runs the command under bubblewrap."""
    mounts: tuple[Mount, ...] = ()
    command: tuple[str, ...] = ()
    """The command as the container sees it (``argv`` without the wrapping); empty: none."""
    workdir: str = "/"
    """The working directory as the container sees it."""


@dataclass(frozen=True)
class SandboxHost:
    """What the node offers pod processes: volume directories, API objects, bubblewrap."""

    store: Store
    volumes: VolumeDirs
    bwrap: str | None = None
    """bubblewrap's path; None runs processes on the host."""
    read_only_paths: tuple[str, ...] = ()
    """Host paths bound read-only into every sandbox besides :data:`SYSTEM_PATHS`."""
    setpriv: str | None = field(default_factory=lambda: shutil.which("setpriv"))

    @classmethod
    def detect(
        cls,
        store: Store,
        volumes: VolumeDirs,
        *,
        mode: SandboxMode = SandboxMode.AUTO,
        extra_paths: Sequence[str] = (),
    ) -> SandboxHost:
        """Find a working bubblewrap (per ``mode``); raises RuntimeError for ``bwrap`` without."""
        bwrap = None if mode is SandboxMode.NONE else shutil.which("bwrap")
        problem = "bwrap is not installed" if bwrap is None else bwrap_problem(bwrap)
        if problem is not None and mode is SandboxMode.BWRAP:
            raise RuntimeError(f"KubeSimConfig.sandbox is 'bwrap' but {problem}")
        if problem is not None and mode is SandboxMode.AUTO:
            log.warning("kubesim: %s; pod processes run on the host", problem)
        paths = (*python_paths(), *extra_paths)
        return cls(store, volumes, bwrap if problem is None else None, paths)


def python_paths() -> tuple[str, ...]:
    """The Python installation kubesim runs from (venv and base), for commands that use it."""
    found = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix}
    found.add(str(Path(sys.executable).resolve().parent.parent))
    return tuple(sorted(p for p in found if p and p != "/"))


# -- the plan ------------------------------------------------------------------------------------
def plan_process(
    pod: Mapping[str, Any],
    container_name: str,
    argv: Sequence[str] | None = None,
    *,
    host: SandboxHost,
) -> ProcessPlan:
    """How to run ``argv`` (None: the container's own command and args) in the pod's container.

    The environment is the container's (``envFrom``, ``env`` with ``$(VAR)`` expansion, the
    Downward API), plus ``PATH``, ``HOME``, ``HOSTNAME`` and ``KUBESIM_POD_IP``; the container's
    own command and args are expanded from it (an ``argv`` given is used as is, as ``exec``
    does). Volume directories are created. Raises ContainerConfigError when the container
    cannot be configured (a missing ConfigMap, Secret or claim; ``runAsNonRoot`` with root).
    """
    obj: dict[str, Any] = dict(pod)
    container = _find_container(obj, container_name)
    identity = resolve_identity(obj, container)
    env = container_env(obj, container, host.store, identity)
    if argv is None:
        written = [*(container.get("command") or []), *(container.get("args") or [])]
        command = [expand(str(a), env) for a in written]
    else:
        command = list(argv)
    try:
        mounts = host.volumes.mounts(obj, container)
    except (VolumeError, OSError) as e:
        raise ContainerConfigError(str(e)) from e
    give_volumes(obj, mounts, identity)
    workdir = str(container.get("workingDir") or "")
    if host.bwrap is not None:
        return _bwrap_plan(host, container, command, env, mounts, workdir or "/", identity)
    return _host_plan(host, obj, command, env, mounts, workdir, identity)


def _find_container(pod: dict[str, Any], name: str) -> dict[str, Any]:
    spec = pod.get("spec") or {}
    for container in [*(spec.get("containers") or []), *(spec.get("initContainers") or [])]:
        if container.get("name") == name:
            return dict(container)
    raise ContainerConfigError(f"container {name!r} is not in pod {pod['metadata']['name']}")


def container_env(
    pod: Mapping[str, Any], container: Mapping[str, Any], store: Store, identity: Identity
) -> dict[str, str]:
    """The environment of a container process: image defaults, then the container's own."""
    m, status = pod["metadata"], pod.get("status") or {}
    env = {
        "PATH": os.environ.get("PATH", DEFAULT_PATH),
        "HOSTNAME": _hostname(str(m["name"])),
        "HOME": home_of(identity.uid),
    }
    env.update(EnvBuilder(store, dict(pod)).build(dict(container)))
    env["KUBESIM_POD_IP"] = str(status.get("podIP") or "")
    return env


def _hostname(name: str) -> str:
    """The pod's hostname: its name cut to 63 characters, as the kubelet does."""
    return name[:63].rstrip("-.") or name[:63]


def start_problem(plan: ProcessPlan, host: SandboxHost) -> str | None:
    """Why the plan's command cannot be started, worded as containerd does, or None."""
    if not plan.command:
        return None
    command = plan.command[0]
    if "/" in command:
        target = _host_view(command, plan, host)
        if target is not None and os.path.isfile(target) and os.access(target, os.X_OK):
            return None
        why = f'exec: "{command}": stat {command}: no such file or directory'
    else:
        for entry in plan.env.get("PATH", DEFAULT_PATH).split(":"):
            target = _host_view(os.path.join(entry or ".", command), plan, host)
            if target is not None and os.path.isfile(target) and os.access(target, os.X_OK):
                return None
        why = f'exec: "{command}": executable file not found in $PATH'
    return (
        "failed to create containerd task: failed to create shim task: OCI runtime create "
        f"failed: runc create failed: unable to start container process: {why}: unknown"
    )


def _host_view(path: str, plan: ProcessPlan, host: SandboxHost) -> str | None:
    """Where a path the process names is on the host; None when the sandbox does not show it."""
    if not plan.sandboxed:
        return os.path.join(plan.cwd, path)
    path = os.path.normpath(os.path.join(plan.workdir, path))
    visible = [*SYSTEM_PATHS, *host.read_only_paths, *plan.command[1:]]
    for mount in sorted(plan.mounts, key=lambda m: -len(m.mount_path)):
        if under(path, [mount.mount_path]):
            if mount.scratch and under(path, visible):
                return path  # a host path bound over an emptyDir (see bwrap_args)
            return str(mount.host_path / os.path.relpath(path, mount.mount_path))
    return path if under(path, visible) else None


def _bwrap_plan(
    host: SandboxHost,
    container: dict[str, Any],
    command: list[str],
    env: dict[str, str],
    mounts: list[Mount],
    workdir: str,
    identity: Identity,
) -> ProcessPlan:
    assert host.bwrap is not None
    args = bwrap_args(
        host.bwrap,
        hostname=env["HOSTNAME"],
        read_only=[*SYSTEM_PATHS, *host.read_only_paths],
        mounts=mounts,
        command=command,
        workdir=workdir,
        read_only_root=bool((container.get("securityContext") or {}).get("readOnlyRootFilesystem")),
    )
    argv = [*args, "--", *user_switch(host.setpriv, identity), *command] if command else []
    return ProcessPlan(
        argv=tuple(argv),
        env=env,
        cwd="/",
        uid=identity.uid,
        gid=identity.gid,
        groups=identity.groups,
        sandboxed=True,
        mounts=tuple(mounts),
        command=tuple(command),
        workdir=workdir,
    )


# -- without bubblewrap ------------------------------------------------------------------------
def rewrite_paths(text: str, mounts: Sequence[Mount]) -> str:
    """``text`` with each mount path (as a whole path: ``/workspace``, ``/workspace/x``,
    ``A=/workspace``) replaced by its volume's host directory, in one pass."""
    targets = {
        m.mount_path.rstrip("/"): str(m.host_path) for m in mounts if m.mount_path.rstrip("/")
    }
    if not targets:
        return text
    alternatives = "|".join(re.escape(p) for p in sorted(targets, key=len, reverse=True))
    pattern = r"(?:^|(?<=[\s=:,;'\"]))(" + alternatives + r")(?=/|$|[\s:,;'\"])"
    return re.sub(pattern, lambda match: targets[match.group(1)], text)


def _host_workdir(host: SandboxHost, uid: str, workdir: str, mounts: list[Mount]) -> Path:
    """The host directory standing for ``workingDir`` (created as a runtime creates it).

    Under a mount: the volume's directory; an existing host directory: itself; otherwise a
    per-pod directory (the host's own tree is never written); no workingDir: the first
    volume's directory, else that per-pod directory.
    """
    scratch = host.volumes.empty_dir(uid, "kubesim-workdir")
    if not workdir:
        return mounts[0].host_path if mounts else scratch
    rewritten = Path(rewrite_paths(workdir, mounts))
    if rewritten == Path(workdir) and rewritten.is_dir():
        return rewritten
    if rewritten == Path(workdir):
        rewritten = scratch / workdir.lstrip("/")
    rewritten.mkdir(parents=True, exist_ok=True)
    return rewritten


def _host_plan(
    host: SandboxHost,
    pod: dict[str, Any],
    command: list[str],
    env: dict[str, str],
    mounts: list[Mount],
    workdir: str,
    identity: Identity,
) -> ProcessPlan:
    env = {k: rewrite_paths(v, mounts) for k, v in env.items()}
    command = [rewrite_paths(a, mounts) for a in command]
    cwd = _host_workdir(host, str(pod["metadata"]["uid"]), workdir, mounts)
    argv = [*user_switch(host.setpriv, identity), *command] if command else []
    return ProcessPlan(
        argv=tuple(argv),
        env=env,
        cwd=str(cwd),
        uid=identity.uid,
        gid=identity.gid,
        groups=identity.groups,
        mounts=tuple(mounts),
        command=tuple(command),
        workdir=workdir or str(cwd),
    )
