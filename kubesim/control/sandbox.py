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

import contextlib
import logging
import os
import pwd
import re
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from ..store import Store
from .expansion import expand
from .podenv import ContainerConfigError, EnvBuilder
from .volumes import Mount, VolumeDirs, VolumeError

log = logging.getLogger(__name__)

SYSTEM_PATHS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc", "/opt")
"""Host directories every sandbox sees read-only: the "image" is this machine's system."""
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
        problem = "bwrap is not installed" if bwrap is None else _bwrap_problem(bwrap)
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


def _bwrap_problem(bwrap: str) -> str | None:
    """Why bubblewrap cannot run a sandbox here, or None when it can."""
    argv = [bwrap, *_namespace_args("probe"), *_read_only_args(SYSTEM_PATHS), *_system_args()]
    try:
        done = subprocess.run(
            [*argv, "/usr/bin/true"], capture_output=True, timeout=10, check=False, text=True
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"bwrap does not run: {e}"
    return None if done.returncode == 0 else f"bwrap fails: {done.stderr.strip()}"


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
    _give_volumes(obj, mounts, identity)
    workdir = str(container.get("workingDir") or "")
    if host.bwrap is not None:
        return _bwrap_plan(host, obj, container, command, env, mounts, workdir or "/", identity)
    return _host_plan(host, obj, command, env, mounts, workdir, identity)


def _find_container(pod: dict[str, Any], name: str) -> dict[str, Any]:
    spec = pod.get("spec") or {}
    for container in [*(spec.get("containers") or []), *(spec.get("initContainers") or [])]:
        if container.get("name") == name:
            return dict(container)
    raise ContainerConfigError(f"container {name!r} is not in pod {pod['metadata']['name']}")


@dataclass(frozen=True)
class Identity:
    """The user a container process runs as, and whether kubesim must switch to it."""

    uid: int
    gid: int
    groups: tuple[int, ...] = ()
    switch: bool = False


def resolve_identity(pod: Mapping[str, Any], container: Mapping[str, Any]) -> Identity:
    """``runAsUser``/``runAsGroup`` (container over pod), honoured only when kubesim is root."""
    pod_sc = (pod.get("spec") or {}).get("securityContext") or {}
    sc = {**pod_sc, **(container.get("securityContext") or {})}
    root = os.geteuid() == 0
    wanted = sc.get("runAsUser")
    uid = int(wanted) if root and wanted is not None else os.geteuid()
    if sc.get("runAsNonRoot") and uid == 0:
        name = container.get("name")
        raise ContainerConfigError(
            f"container has runAsNonRoot and image will run as root (pod: "
            f'"{pod["metadata"]["name"]}_{pod["metadata"]["namespace"]}({pod["metadata"]["uid"]})"'
            f", container: {name})"
        )
    if not root:
        return Identity(os.geteuid(), os.getegid())
    group = sc.get("runAsGroup")
    gid = _primary_group(uid) if group is None else int(group)
    extra = [pod_sc.get("fsGroup"), *(pod_sc.get("supplementalGroups") or [])]
    groups = tuple(sorted({int(g) for g in extra if g is not None} - {gid}))
    switch = (uid, gid, groups) != (0, 0, ())
    return Identity(uid, gid, groups, switch)


def _primary_group(uid: int) -> int:
    """The user's group from /etc/passwd; 0 for a numeric user the "image" does not know."""
    try:
        return pwd.getpwuid(uid).pw_gid
    except KeyError:
        return 0


def _home_of(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_dir
    except KeyError:
        return "/"


def container_env(
    pod: Mapping[str, Any], container: Mapping[str, Any], store: Store, identity: Identity
) -> dict[str, str]:
    """The environment of a container process: image defaults, then the container's own."""
    m, status = pod["metadata"], pod.get("status") or {}
    env = {
        "PATH": os.environ.get("PATH", DEFAULT_PATH),
        "HOSTNAME": _hostname(str(m["name"])),
        "HOME": _home_of(identity.uid),
    }
    env.update(EnvBuilder(store, dict(pod)).build(dict(container)))
    env["KUBESIM_POD_IP"] = str(status.get("podIP") or "")
    return env


def _hostname(name: str) -> str:
    """The pod's hostname: its name cut to 63 characters, as the kubelet does."""
    return name[:63].rstrip("-.") or name[:63]


def _give_volumes(pod: Mapping[str, Any], mounts: list[Mount], identity: Identity) -> None:
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


def _user_switch(host: SandboxHost, identity: Identity) -> list[str]:
    if not identity.switch:
        return []
    if host.setpriv is None:
        raise ContainerConfigError("cannot run as another user: setpriv is not installed")
    groups = ",".join(str(g) for g in identity.groups)
    return [
        host.setpriv,
        f"--reuid={identity.uid}",
        f"--regid={identity.gid}",
        f"--groups={groups}" if groups else "--clear-groups",
        "--",
    ]


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
    for mount in sorted(plan.mounts, key=lambda m: -len(m.mount_path)):
        if _under(path, [mount.mount_path]):
            return str(mount.host_path / os.path.relpath(path, mount.mount_path))
    visible = [*SYSTEM_PATHS, *host.read_only_paths, *plan.command[1:]]
    return path if _under(path, visible) else None


# -- with bubblewrap -----------------------------------------------------------------------------
def _namespace_args(hostname: str) -> list[str]:
    return [
        "--die-with-parent",
        "--unshare-pid",
        "--unshare-ipc",
        "--unshare-uts",
        "--hostname",
        hostname,
    ]


def _system_args() -> list[str]:
    return ["--proc", "/proc", "--dev", "/dev"]


def _read_only_args(paths: Sequence[str]) -> list[str]:
    """Binds (or symlinks, for merged-/usr links like /bin) of existing host paths."""
    args: list[str] = []
    for path in paths:
        if os.path.islink(path) and os.path.dirname(path) == "/":
            args += ["--symlink", os.readlink(path), path]
        elif os.path.exists(path):
            args += ["--ro-bind", path, path]
    return args


def _under(path: str, parents: Sequence[str]) -> bool:
    return any(path == p or path.startswith(p.rstrip("/") + "/") for p in parents)


def _named_files(command: Sequence[str], covered: Sequence[str]) -> list[str]:
    """Host files the command names by absolute path (a script, a config) not otherwise seen."""
    files: list[str] = []
    for arg in command:
        if arg.startswith("/") and not _under(arg, covered) and os.path.isfile(arg):
            files.append(os.path.normpath(arg))
    return sorted(set(files))


def _bwrap_plan(
    host: SandboxHost,
    pod: dict[str, Any],
    container: dict[str, Any],
    command: list[str],
    env: dict[str, str],
    mounts: list[Mount],
    workdir: str,
    identity: Identity,
) -> ProcessPlan:
    assert host.bwrap is not None
    mount_paths = [m.mount_path for m in mounts]
    ro_paths = [p for p in (*SYSTEM_PATHS, *host.read_only_paths) if not _under(p, mount_paths)]
    sc = container.get("securityContext") or {}
    files = _named_files(command, [*ro_paths, *mount_paths])
    args = [host.bwrap, *_namespace_args(env["HOSTNAME"])]
    args += _passages([*ro_paths, *mount_paths, *files, workdir], [*ro_paths, *mount_paths])
    args += [*_read_only_args(ro_paths), "--ro-bind-try", "/sys", "/sys", *_system_args()]
    if not _under("/tmp", mount_paths):
        args += ["--perms", "1777", "--dir", "/tmp"]
    for mount in sorted(mounts, key=lambda m: m.mount_path.count("/")):
        _make_nested_mount_point(mount, mounts)
        flag = "--ro-bind" if mount.read_only else "--bind"
        args += [flag, str(mount.host_path), mount.mount_path]
    for path in files:
        args += ["--ro-bind", path, path]
    args += _workdir_args(workdir, mounts, ro_paths)
    if sc.get("readOnlyRootFilesystem"):
        args += ["--remount-ro", "/"]
    argv = [*args, "--", *_user_switch(host, identity), *command] if command else []
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


def _passages(targets: Sequence[str], bound: Sequence[str]) -> list[str]:
    """``--dir`` (mode 0755) for the directories leading to binds on the empty root.

    bubblewrap would make them itself but only root could pass (mode 0700), and a pod's user
    must reach ``/root/.pyenv/…`` or ``/work/…/.venv`` as it reaches ``/usr``.
    """
    parents: set[str] = set()
    for target in targets:
        parent = os.path.dirname(target.rstrip("/"))
        while parent not in ("", "/"):
            parents.add(parent)
            parent = os.path.dirname(parent)
    wanted = sorted(p for p in parents if p not in targets and not _under(p, bound))
    return [arg for p in wanted for arg in ("--perms", "0755", "--dir", p)]


def _make_nested_mount_point(mount: Mount, mounts: Sequence[Mount]) -> None:
    """A mount inside another volume needs its mount point in that volume's directory."""
    for outer in mounts:
        if outer is not mount and _under(mount.mount_path, [outer.mount_path]):
            relative = os.path.relpath(mount.mount_path, outer.mount_path)
            with contextlib.suppress(OSError):
                (outer.host_path / relative).mkdir(parents=True, exist_ok=True)


def _workdir_args(workdir: str, mounts: list[Mount], ro_paths: Sequence[str]) -> list[str]:
    """``--chdir``, creating the directory first as container runtimes do."""
    for mount in sorted(mounts, key=lambda m: -len(m.mount_path)):
        if _under(workdir, [mount.mount_path]):
            relative = os.path.relpath(workdir, mount.mount_path)
            (mount.host_path / relative).mkdir(parents=True, exist_ok=True)
            return ["--chdir", workdir]
    if workdir != "/" and not _under(workdir, ro_paths):
        return ["--perms", "0755", "--dir", workdir, "--chdir", workdir]
    return ["--chdir", workdir]


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
    argv = [*_user_switch(host, identity), *command] if command else []
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
