"""The kubelet: runs bound pods through image pulls to Running, restarts and kills them.

Containers exit (a real process in process mode, an injected fault otherwise) and are restarted
per ``restartPolicy`` with the kubelet's back-off (:mod:`.backoff`); pods with nothing left to
restart end ``Succeeded`` or ``Failed`` (:mod:`.podstatus`).

Faults can be injected per container (``inject(ns, pod, "OOMKilled")``) or declared on the pod
with the annotation ``kubesim.io/inject: OOMKilled`` (or ``CrashLoopBackOff``). Images matching
``KubeSimConfig.failing_image_pattern`` fail to pull.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ..config import Timings
from ..deletion import DeleteOptions
from ..objects import Obj
from ..resources import CATALOG
from ..store import Change
from . import containers as cs
from .backoff import RestartBackoff, go_duration
from .base import Context
from .ipam import IpPool
from .logs import LogBook
from .nodes import NodeInventory
from .podenv import ContainerConfigError
from .podstatus import container_of, recompute, sandbox_ready, set_container_status
from .runtime import ProcessRuntime
from .sandbox import ProcessPlan, SandboxHost, SandboxMode, plan_process, start_problem
from .volumes import VolumeDirs

INJECT_ANNOTATION = "kubesim.io/inject"
FAULTS = ("OOMKilled", "CrashLoopBackOff")
PodKey = tuple[str, str]
StatusMaker = Callable[[Obj, Obj], Obj]

__all__ = ["FAULTS", "INJECT_ANNOTATION", "IpPool", "Kubelet", "PodRun"]


@dataclass
class PodRun:
    """What the kubelet remembers about one pod it runs."""

    uid: str
    node: str
    backoff: RestartBackoff
    ip: str = ""
    terminating: bool = False
    faults: dict[str, str] = field(default_factory=dict)
    expected_exits: dict[str, tuple[int, str]] = field(default_factory=dict)
    """Exit code and reason to report for a process kubesim kills to simulate a fault."""
    timers: list[asyncio.TimerHandle] = field(default_factory=list)


class Kubelet:
    """One kubelet for every simulated node.

    In process mode, ``host`` is what :func:`~kubesim.control.sandbox.plan_process` needs to
    run something "in a pod" (``kubectl exec`` uses it too) and ``runtime`` runs the processes.
    """

    def __init__(self, ctx: Context, nodes: NodeInventory, logs: LogBook) -> None:
        self.ctx = ctx
        self.nodes = nodes
        self.logs = logs
        self.runs: dict[PodKey, PodRun] = {}
        self.ips = IpPool()
        self.node_images: dict[str, set[str]] = {}
        self._failing = re.compile(ctx.config.failing_image_pattern)
        self._state: tempfile.TemporaryDirectory[str] | None = None
        self.host: SandboxHost | None = None
        self.runtime: ProcessRuntime | None = None
        self.closing = False
        if ctx.config.run_processes:
            self.host = SandboxHost.detect(
                ctx.store,
                VolumeDirs(self._state_root(), ctx.store),
                mode=SandboxMode(ctx.config.sandbox),
                extra_paths=ctx.config.sandbox_paths,
            )
            self.runtime = ProcessRuntime(logs)

    def _state_root(self) -> Path:
        if self.ctx.config.state_dir:
            return Path(self.ctx.config.state_dir)
        self._state = tempfile.TemporaryDirectory(prefix="kubesim-state-")
        Path(self._state.name).chmod(0o711)  # pods' users must reach their volumes below it
        return Path(self._state.name)

    def start(self) -> None:
        self.ctx.store.subscribe(self.on_change)
        for pod in self.ctx.store.list("pods"):
            self._observe(pod)

    async def stop(self) -> None:
        """Kill every process; remove the state directory when it is kubesim's own."""
        self.closing = True
        if self.runtime is not None:
            await self.runtime.stop_all()
        if self._state is not None:
            # Files a pod's user made may be read-only to us only without root; best effort.
            shutil.rmtree(self._state.name, ignore_errors=True)
            self._state = None

    @property
    def timings(self) -> Timings:
        return self.ctx.config.timings

    # -- reacting to the API ---------------------------------------------------------------
    def on_change(self, change: Change) -> None:
        if change.resource == "persistentvolumes" and change.type == "DELETED":
            if self.host is not None:
                self.host.volumes.remove_volume(change.obj["metadata"]["name"])
            return
        if change.resource != "pods":
            return
        key = (change.obj["metadata"]["namespace"], change.obj["metadata"]["name"])
        if change.type == "DELETED":
            self._forget(key, change.obj)
        else:
            self._observe(change.obj)

    def _observe(self, pod: Obj) -> None:
        m, node = pod["metadata"], (pod.get("spec") or {}).get("nodeName")
        key = (m["namespace"], m["name"])
        run = self.runs.get(key)
        if not node:
            return
        if run is None or run.uid != m["uid"]:
            if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed") and not m.get(
                "deletionTimestamp"
            ):
                return
            backoff = RestartBackoff(self.timings.crash_backoff, self.timings.crash_backoff_max)
            run = PodRun(uid=m["uid"], node=node, backoff=backoff)
            run.faults = self._declared_faults(pod)
            self.runs[key] = run
            self._later(run, self.timings.kubelet_start_delay, self._sandbox, key)
        if m.get("deletionTimestamp") and not run.terminating:
            self._terminate(key, run, pod)

    @staticmethod
    def _declared_faults(pod: Obj) -> dict[str, str]:
        fault = (pod["metadata"].get("annotations") or {}).get(INJECT_ANNOTATION)
        if fault not in FAULTS:
            return {}
        return {c["name"]: str(fault) for c in pod["spec"].get("containers") or []}

    def _later(self, run: PodRun, delay: float, fn: object, *args: object) -> None:
        handle = self.ctx.timers.later(delay, fn, *args)  # type: ignore[arg-type]
        if handle is not None:
            run.timers = [h for h in run.timers if not h.cancelled()] + [handle]

    def _forget(self, key: PodKey, pod: Obj) -> None:
        """The pod object is gone: kill what is left of it (at once), then free its IP."""
        run = self.runs.get(key)
        if run is None or run.uid != pod["metadata"].get("uid", ""):
            return
        del self.runs[key]
        for handle in run.timers:
            self.ctx.timers.cancel(handle)
        if not run.terminating:  # deleted without a grace period: the kubelet kills now
            self._killing_events(pod, run)
        self.logs.forget_pod(*key)

        def release() -> None:
            if run.ip:
                self.ips.give(run.ip)
            if self.host is not None:
                self.host.volumes.remove_pod(run.uid)

        if self.runtime is not None:
            self.runtime.stop_pod(run.uid, 0, on_stopped=release)
        else:
            release()

    def _current(self, key: PodKey, run: PodRun) -> Obj | None:
        pod = self.ctx.store.get("pods", *key)
        if pod is None or pod["metadata"]["uid"] != run.uid or self.runs.get(key) is not run:
            return None
        return pod

    def _active(self, key: PodKey) -> tuple[PodRun, Obj] | None:
        """The pod's run and object while the kubelet still starts things for it."""
        run = self.runs.get(key)
        pod = self._current(key, run) if run else None
        if run is None or pod is None or run.terminating or self.closing:
            return None
        return run, pod

    def _update(self, key: PodKey, change: object) -> Obj | None:
        return self.ctx.registry.mutate("pods", key[0], key[1], change)  # type: ignore[arg-type]

    def _event(
        self, pod: Obj, run: PodRun, kind: str, reason: str, message: str, container: str = ""
    ) -> None:
        path = f"spec.containers{{{container}}}" if container else ""
        self.ctx.recorder.record(
            pod, kind, reason, message, component="kubelet", host=run.node, field_path=path
        )

    # -- starting ----------------------------------------------------------------------------
    def _sandbox(self, key: PodKey) -> None:
        active = self._active(key)
        if active is None:
            return
        run, pod = active
        run.ip = self.ips.take()
        host_ip = self.nodes.ip(run.node)
        self._update(key, lambda p: sandbox_ready(p, pod_ip=run.ip, host_ip=host_ip))
        for container in pod["spec"]["containers"]:
            self._pull(key, container["name"], 0)

    def _pull(self, key: PodKey, name: str, attempt: int) -> None:
        active = self._active(key)
        if active is None:
            return
        run, pod = active
        container = container_of(pod, name)
        image = str(container.get("image", ""))
        cached = image in self.node_images.get(run.node, set())
        if (
            cached
            and container.get("imagePullPolicy") != "Always"
            and not self._failing.search(image)
        ):
            message = f'Container image "{image}" already present on machine'
            self._event(pod, run, "Normal", "Pulled", message, name)
            self._later(run, self.timings.container_start_delay, self._create, key, name)
            return
        self._event(pod, run, "Normal", "Pulling", f'Pulling image "{image}"', name)
        self._later(run, self.timings.image_pull_delay, self._pulled, key, name, attempt)

    def _pulled(self, key: PodKey, name: str, attempt: int) -> None:
        active = self._active(key)
        if active is None:
            return
        run, pod = active
        image = str(container_of(pod, name).get("image", ""))
        if self._failing.search(image):
            self._pull_failed(key, run, pod, name, attempt)
            return
        self.node_images.setdefault(run.node, set()).add(image)
        took = int(self.timings.image_pull_delay * 1000)
        self._event(
            pod,
            run,
            "Normal",
            "Pulled",
            f'Successfully pulled image "{image}" in {took}ms '
            f"({took}ms including waiting). Image size: 52428800 bytes.",
            name,
        )
        self._later(run, self.timings.container_start_delay, self._create, key, name)

    def _pull_failed(self, key: PodKey, run: PodRun, pod: Obj, name: str, attempt: int) -> None:
        image = str(container_of(pod, name).get("image", ""))
        why = (
            f'failed to pull and unpack image "{image}": failed to resolve reference "{image}": '
            f"{image}: not found"
        )
        self._event(
            pod,
            run,
            "Warning",
            "Failed",
            f'Failed to pull image "{image}": rpc error: code = NotFound desc = {why}',
            name,
        )
        self._event(pod, run, "Warning", "Failed", "Error: ErrImagePull", name)
        message = f"rpc error: code = NotFound desc = {why}"
        self._set_status(
            key, run, name, lambda c, prev: cs.waiting(c, "ErrImagePull", message, previous=prev)
        )
        self._later(run, self.timings.image_pull_backoff, self._image_backoff, key, name, attempt)

    def _image_backoff(self, key: PodKey, name: str, attempt: int) -> None:
        active = self._active(key)
        if active is None:
            return
        run, pod = active
        image = str(container_of(pod, name).get("image", ""))
        self._event(pod, run, "Normal", "BackOff", f'Back-off pulling image "{image}"', name)
        self._event(pod, run, "Warning", "Failed", "Error: ImagePullBackOff", name)
        message = f'Back-off pulling image "{image}": ErrImagePull'
        self._set_status(
            key,
            run,
            name,
            lambda c, prev: cs.waiting(c, "ImagePullBackOff", message, previous=prev),
        )
        delay = self.timings.image_pull_backoff * min(2 ** (attempt + 1), 64)
        self._later(run, delay, self._pull, key, name, attempt + 1)

    def _create(self, key: PodKey, name: str) -> None:
        """Create and start the container (its process in process mode)."""
        active = self._active(key)
        if active is None:
            return
        run, pod = active
        plan = None
        if self.host is not None:
            try:
                plan = plan_process(pod, name, host=self.host)
            except ContainerConfigError as e:
                self._config_error(key, run, pod, name, str(e))
                return
        self._event(pod, run, "Normal", "Created", f"Created container: {name}", name)
        problem = start_problem(plan, self.host) if plan is not None and self.host else None
        if problem is not None:
            self._event(pod, run, "Warning", "Failed", f"Error: {problem}", name)
            epoch = "1970-01-01T00:00:00Z"
            self._exited(key, run, name, 128, "StartError", problem, started_at=epoch)
            return
        self._event(pod, run, "Normal", "Started", f"Started container {name}", name)
        self._set_status(
            key,
            run,
            name,
            lambda c, prev: cs.running(c, previous=prev, restarted=cs.was_started(prev)),
        )
        self._run_container(key, run, pod, name, plan)

    def _run_container(
        self, key: PodKey, run: PodRun, pod: Obj, name: str, plan: ProcessPlan | None
    ) -> None:
        if plan is not None and plan.argv and self.runtime is not None:
            self.runtime.start(key, run.uid, name, plan, on_exit=self.container_exited)
        elif plan is None:
            image = container_of(pod, name).get("image")
            self.logs.append((*key, name), f"kubesim: container {name} started (image {image})")
        if name in run.faults:
            self._later(run, self.timings.crash_backoff / 2, self._crash, key, name)

    def _config_error(self, key: PodKey, run: PodRun, pod: Obj, name: str, message: str) -> None:
        """``CreateContainerConfigError``: wait, and try again after the base back-off."""
        self._event(pod, run, "Warning", "Failed", f"Error: {message}", name)
        self._set_status(
            key,
            run,
            name,
            lambda c, prev: cs.waiting(c, "CreateContainerConfigError", message, previous=prev),
        )
        self._later(run, self.timings.crash_backoff, self._create, key, name)

    # -- status bookkeeping ----------------------------------------------------------------
    def _set_status(self, key: PodKey, run: PodRun, name: str, make: StatusMaker) -> Obj | None:
        """Replace one container's status and recompute phase and conditions."""
        terminal = run.terminating
        return self._update(key, lambda p: set_container_status(p, name, make, terminal=terminal))

    # -- exits and restarts ----------------------------------------------------------------
    def container_exited(self, key: PodKey, uid: str, name: str, exit_code: int) -> None:
        """A container's process ended (process mode): record it, restart per the policy."""
        run = self.runs.get(key)
        if run is None or run.uid != uid or self.closing or self._current(key, run) is None:
            return
        code, reason = run.expected_exits.pop(name, (exit_code, ""))
        self._exited(key, run, name, code, reason or ("Completed" if code == 0 else "Error"))

    def _exited(
        self,
        key: PodKey,
        run: PodRun,
        name: str,
        code: int,
        reason: str,
        message: str = "",
        *,
        started_at: str | None = None,
    ) -> None:
        def record(c: Obj, prev: Obj) -> Obj:
            return cs.terminated(
                c, prev, exit_code=code, reason=reason, message=message, started_at=started_at
            )

        self._set_status(key, run, name, record)
        self.logs.end((*key, name))
        active = self._active(key)
        if active is None:
            return
        policy = active[1]["spec"].get("restartPolicy", "Always")
        if policy == "Never" or (policy == "OnFailure" and code == 0):
            return
        delay = run.backoff.delay_before_restart(name)
        if delay == 0:
            self._later(run, 0, self._pull, key, name, 0)
        else:
            self._back_off(key, run, active[1], name, delay)

    def _back_off(self, key: PodKey, run: PodRun, pod: Obj, name: str, delay: float) -> None:
        m = pod["metadata"]
        pod_ref = f"{m['name']}_{m['namespace']}({run.uid})"
        message = f"back-off {go_duration(delay)} restarting failed container={name} pod={pod_ref}"
        self._set_status(key, run, name, lambda c, prev: cs.crash_loop(c, prev, message))
        self._event(
            pod,
            run,
            "Warning",
            "BackOff",
            f"Back-off restarting failed container {name} in pod {pod_ref}",
            name,
        )
        self._later(run, delay, self._restart, key, name)

    def _restart(self, key: PodKey, name: str) -> None:
        run = self.runs.get(key)
        if run is not None:
            run.backoff.restarting(name)
            self._pull(key, name, 0)

    # -- faults --------------------------------------------------------------------------------
    def inject(self, namespace: str, pod: str, fault: str, container: str | None = None) -> None:
        """Make a container fail: ``OOMKilled`` once, or ``CrashLoopBackOff`` until cleared."""
        if fault not in FAULTS:
            raise ValueError(f"fault must be one of {FAULTS}, not {fault!r}")
        run = self.runs.get((namespace, pod))
        obj = self.ctx.store.get("pods", namespace, pod)
        if run is None or obj is None:
            raise LookupError(f"pod {namespace}/{pod} is not running on a kubelet")
        name = container or obj["spec"]["containers"][0]["name"]
        run.faults[name] = fault
        self._crash((namespace, pod), name)

    def clear_fault(self, namespace: str, pod: str, container: str | None = None) -> None:
        run = self.runs.get((namespace, pod))
        if run is not None:
            run.faults = (
                {} if container is None else {k: v for k, v in run.faults.items() if k != container}
            )

    def _crash(self, key: PodKey, name: str) -> None:
        active = self._active(key)
        if active is None or name not in active[0].faults:
            return
        run = active[0]
        fault = run.faults[name]
        if fault == "OOMKilled":
            run.faults.pop(name)
        code, reason = (137, "OOMKilled") if fault == "OOMKilled" else (1, "Error")
        if self.runtime is not None and name in self.runtime.pids(run.uid):
            run.expected_exits[name] = (code, reason)
            self.runtime.kill(run.uid, name)  # its exit is reported as the fault
            return
        self._exited(key, run, name, code, reason)

    # -- stopping ------------------------------------------------------------------------------
    def _killing_events(self, pod: Obj, run: PodRun) -> None:
        for status in (pod.get("status") or {}).get("containerStatuses") or []:
            if cs.state_of(status) == "running":
                message = f"Stopping container {status['name']}"
                self._event(pod, run, "Normal", "Killing", message, status["name"])

    def _terminate(self, key: PodKey, run: PodRun, pod: Obj) -> None:
        """Graceful deletion: stop the containers, then remove the pod object."""
        run.terminating = True
        for handle in run.timers:
            self.ctx.timers.cancel(handle)
        run.timers = []
        self._killing_events(pod, run)
        grace = float(pod["metadata"].get("deletionGracePeriodSeconds") or 0)
        if self.runtime is not None and self.runtime.has_processes(run.uid):
            self.runtime.stop_pod(run.uid, grace, on_stopped=lambda: self._killed(key))
            return
        self._later(run, min(grace, self.timings.termination_delay), self._killed, key)

    def _killed(self, key: PodKey) -> None:
        run = self.runs.get(key)
        pod = self._current(key, run) if run else None
        if run is None or pod is None or self.closing:
            return

        def stop(p: Obj) -> None:
            statuses = (p.get("status") or {}).get("containerStatuses") or []
            for i, status in enumerate(statuses):
                if cs.state_of(status) == "running":
                    statuses[i] = cs.terminated(
                        container_of(p, status["name"]), status, exit_code=0, reason="Completed"
                    )
            if statuses:
                recompute(p, terminal=True)

        self._update(key, stop)
        for container in pod["spec"]["containers"]:
            self.logs.end((*key, container["name"]))
        self.ctx.deleter.delete(
            CATALOG.by_key("pods"),
            key[0],
            key[1],
            DeleteOptions(grace_period_seconds=0, uid=run.uid),
        )
