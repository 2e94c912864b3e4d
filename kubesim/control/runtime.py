"""Process mode: run a container's ``command`` and ``args`` as a local process.

The process gets the container's ``env`` (literal values and the pod fieldRefs ``status.podIP``,
``metadata.name``, ``metadata.namespace``), runs in ``workingDir`` when that directory exists
(a temporary directory otherwise), and its output becomes the container log. It is expected to
bind to its pod IP (127.10.x.y), which ``KUBESIM_POD_IP`` also carries.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import tempfile
from collections.abc import Callable

from ..objects import Obj
from .logs import LogBook

PodKey = tuple[str, str]
ExitCallback = Callable[[PodKey, str, int], None]
FIELD_REFS = {"status.podIP": "ip", "metadata.name": "name", "metadata.namespace": "namespace"}


def container_env(pod: Obj, container: Obj, ip: str) -> dict[str, str]:
    """The environment a container process sees."""
    values = {"ip": ip, "name": pod["metadata"]["name"], "namespace": pod["metadata"]["namespace"]}
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/tmp"),
        "HOSTNAME": values["name"],
        "KUBESIM_POD_IP": ip,
    }
    for item in container.get("env") or []:
        if "value" in item:
            env[item["name"]] = str(item["value"])
        ref = ((item.get("valueFrom") or {}).get("fieldRef") or {}).get("fieldPath")
        if ref in FIELD_REFS:
            env[item["name"]] = values[FIELD_REFS[ref]]
    return env


_REF = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)")


def expand(text: str, env: dict[str, str]) -> str:
    """Expand ``$(VAR)`` from the container environment; ``$$`` is a literal ``$``.

    Unknown references stay as written, as the kubelet leaves them.
    """

    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        return env.get(match.group(1), match.group(0))

    return _REF.sub(replace, text)


class ProcessRuntime:
    """Starts and stops one local process per container."""

    def __init__(self, logs: LogBook) -> None:
        self.logs = logs
        self._procs: dict[tuple[str, str, str], asyncio.subprocess.Process] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def start(
        self, key: PodKey, pod: Obj, container: Obj, ip: str, *, on_exit: ExitCallback
    ) -> None:
        env = container_env(pod, container, ip)
        argv = [
            expand(a, env)
            for a in [*(container.get("command") or []), *(container.get("args") or [])]
        ]
        if not argv:
            return  # no command: nothing to run, the container just "runs"
        task = asyncio.get_running_loop().create_task(self._run(key, container, env, argv, on_exit))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(
        self,
        key: PodKey,
        container: Obj,
        env: dict[str, str],
        argv: list[str],
        on_exit: ExitCallback,
    ) -> None:
        workdir = container.get("workingDir")
        if workdir and os.path.isdir(workdir):
            await self._exec(key, container["name"], argv, env, workdir, on_exit)
            return
        with tempfile.TemporaryDirectory(prefix="kubesim-") as scratch:
            await self._exec(key, container["name"], argv, env, scratch, on_exit)

    async def _exec(
        self,
        key: PodKey,
        name: str,
        argv: list[str],
        env: dict[str, str],
        cwd: str,
        on_exit: ExitCallback,
    ) -> None:
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                cwd=cwd,
                env=env,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                start_new_session=True,
            )
        except OSError as e:
            self.logs.append((*key, name), f"kubesim: cannot start {argv[0]}: {e}")
            on_exit(key, name, 128)
            return
        self._procs[(*key, name)] = proc
        assert proc.stdout is not None
        async for raw in proc.stdout:
            self.logs.append((*key, name), raw.decode(errors="replace").rstrip("\n"))
        code = await proc.wait()
        # A pod recreated under the same name may already have a new process here.
        if self._procs.get((*key, name)) is proc:
            del self._procs[(*key, name)]
        on_exit(key, name, code)

    def stop_pod(self, key: PodKey, grace: float) -> None:
        """SIGTERM every process of the pod, SIGKILL after ``grace`` seconds."""
        for (ns, pod, _), proc in list(self._procs.items()):
            if (ns, pod) == key:
                task = asyncio.get_running_loop().create_task(self._stop(proc, grace))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

    async def _stop(self, proc: asyncio.subprocess.Process, grace: float) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), timeout=max(grace, 0.1))
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            await proc.wait()

    async def stop_all(self) -> None:
        for proc in list(self._procs.values()):
            await self._stop(proc, 1.0)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
