"""The bubblewrap (``bwrap``) command line that puts a container's process in its sandbox.

The root is bwrap's empty tmpfs with read-only binds of the host's system directories (the
"image"), of the Python installation kubesim runs from and of files the command names; every
volume is bound at its ``mountPath`` (which needs a mount point, hence no ``--ro-bind / /``);
``/proc``, ``/dev``, a read-only ``/sys`` and a ``/tmp`` in the writable root layer (read-only with
``readOnlyRootFilesystem``). New PID, IPC and UTS (hostname = pod name) namespaces; the network
is the host's, so the process binds its pod IP on the loopback device.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Sequence

from .volumes import Mount

SYSTEM_PATHS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc", "/opt")
"""Host directories every sandbox sees read-only: the "image" is this machine's system."""


def bwrap_args(
    bwrap: str,
    *,
    hostname: str,
    read_only: Sequence[str],
    mounts: Sequence[Mount],
    command: Sequence[str],
    workdir: str,
    read_only_root: bool,
) -> list[str]:
    """bwrap and its options, up to (not including) the ``--`` before the command."""
    mount_paths = [m.mount_path for m in mounts]
    scratch = [m.mount_path for m in mounts if m.scratch]
    ro_paths = [p for p in read_only if not under(p, mount_paths)]
    # Host paths under an emptyDir (a venv in /tmp, say) are bound over it after it is mounted,
    # as the files a command names are; under a claim, the claim's own files win.
    ro_in_scratch = [p for p in read_only if under(p, scratch) and os.path.exists(p)]
    # Files the command names inside an emptyDir (a script under /tmp) are bound over it; in
    # a claim, the claim's own files win.
    files = named_files(command, [*ro_paths, *(p for p in mount_paths if p not in scratch)])
    files_in_scratch = [f for f in files if under(f, scratch)]
    files = [f for f in files if f not in files_in_scratch]
    args = [bwrap, *namespace_args(hostname)]
    args += passages([*ro_paths, *mount_paths, *files, workdir], [*ro_paths, *mount_paths])
    args += [*read_only_args(ro_paths), "--ro-bind-try", "/sys", "/sys", *system_args()]
    if not under("/tmp", mount_paths):
        args += ["--perms", "1777", "--dir", "/tmp"]
    for mount in sorted(mounts, key=lambda m: m.mount_path.count("/")):
        make_nested_mount_point(mount, mounts)
        flag = "--ro-bind" if mount.read_only else "--bind"
        args += [flag, str(mount.host_path), mount.mount_path]
    args += passages([*files_in_scratch, *ro_in_scratch], ro_paths, inside=scratch)
    for path in [*files, *files_in_scratch, *ro_in_scratch]:
        args += ["--ro-bind", path, path]
    args += workdir_args(workdir, mounts, ro_paths)
    if read_only_root:
        args += ["--remount-ro", "/"]
    return args


def bwrap_problem(bwrap: str) -> str | None:
    """Why bubblewrap cannot run a sandbox here, or None when it can."""
    argv = [bwrap, *namespace_args("probe"), *read_only_args(SYSTEM_PATHS), *system_args()]
    try:
        done = subprocess.run(
            [*argv, "/usr/bin/true"], capture_output=True, timeout=10, check=False, text=True
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"bwrap does not run: {e}"
    return None if done.returncode == 0 else f"bwrap fails: {done.stderr.strip()}"


def namespace_args(hostname: str) -> list[str]:
    return [
        "--die-with-parent",
        "--unshare-pid",
        "--unshare-ipc",
        "--unshare-uts",
        "--hostname",
        hostname,
    ]


def system_args() -> list[str]:
    return ["--proc", "/proc", "--dev", "/dev"]


def read_only_args(paths: Sequence[str]) -> list[str]:
    """Binds (or symlinks, for merged-/usr links like /bin) of existing host paths."""
    args: list[str] = []
    for path in paths:
        if os.path.islink(path) and os.path.dirname(path) == "/":
            args += ["--symlink", os.readlink(path), path]
        elif os.path.exists(path):
            args += ["--ro-bind", path, path]
    return args


def under(path: str, parents: Sequence[str]) -> bool:
    """Whether ``path`` is one of ``parents`` or inside one."""
    return any(path == p or path.startswith(p.rstrip("/") + "/") for p in parents)


def named_files(command: Sequence[str], covered: Sequence[str]) -> list[str]:
    """Host files the command names by absolute path (a script, a config) not otherwise seen."""
    files: list[str] = []
    for arg in command:
        if arg.startswith("/") and not under(arg, covered) and os.path.isfile(arg):
            files.append(os.path.normpath(arg))
    return sorted(set(files))


def passages(
    targets: Sequence[str], bound: Sequence[str], *, inside: Sequence[str] = ()
) -> list[str]:
    """``--dir`` (mode 0755) for the directories leading to binds on the empty root (or, with
    ``inside``, only those within these mounted volumes).

    bubblewrap would make them itself but only root could pass (mode 0700), and a pod's user
    must reach ``/root/.pyenv/…`` or ``/work/…/.venv`` as it reaches ``/usr``.
    """
    parents: set[str] = set()
    for target in targets:
        parent = os.path.dirname(target.rstrip("/"))
        while parent not in ("", "/"):
            parents.add(parent)
            parent = os.path.dirname(parent)
    if inside:
        wanted = sorted(p for p in parents if under(p, inside) and p not in inside)
    else:
        wanted = sorted(p for p in parents if p not in targets and not under(p, bound))
    return [arg for p in wanted for arg in ("--perms", "0755", "--dir", p)]


def make_nested_mount_point(mount: Mount, mounts: Sequence[Mount]) -> None:
    """A mount inside another volume needs its mount point in that volume's directory."""
    for outer in mounts:
        if outer is not mount and under(mount.mount_path, [outer.mount_path]):
            relative = os.path.relpath(mount.mount_path, outer.mount_path)
            with contextlib.suppress(OSError):
                (outer.host_path / relative).mkdir(parents=True, exist_ok=True)


def workdir_args(workdir: str, mounts: Sequence[Mount], ro_paths: Sequence[str]) -> list[str]:
    """``--chdir``, creating the directory first as container runtimes do."""
    for mount in sorted(mounts, key=lambda m: -len(m.mount_path)):
        if under(workdir, [mount.mount_path]):
            relative = os.path.relpath(workdir, mount.mount_path)
            (mount.host_path / relative).mkdir(parents=True, exist_ok=True)
            return ["--chdir", workdir]
    if workdir != "/" and not under(workdir, ro_paths):
        return ["--perms", "0755", "--dir", workdir, "--chdir", workdir]
    return ["--chdir", workdir]
