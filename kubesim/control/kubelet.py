"""The kubelet: runs bound pods through image pulls to Running, and kills them gracefully.

Faults can be injected per container (``inject(ns, pod, "OOMKilled")``) or declared on the pod
with the annotation ``kubesim.io/inject: OOMKilled`` (or ``CrashLoopBackOff``). Images matching
``KubeSimConfig.failing_image_pattern`` fail to pull.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field

from ..deletion import DeleteOptions
from ..objects import Obj, timestamp
from ..resources import CATALOG
from ..store import Change
from . import containers as cs
from .base import Context
from .logs import LogBook
from .nodes import NodeInventory
from .runtime import ProcessRuntime
from .scheduler import set_condition

INJECT_ANNOTATION = "kubesim.io/inject"
FAULTS = ("OOMKilled", "CrashLoopBackOff")
PodKey = tuple[str, str]


@dataclass
class PodRun:
    """What the kubelet remembers about one pod it runs."""

    uid: str
    node: str
    ip: str = ""
    terminating: bool = False
    faults: dict[str, str] = field(default_factory=dict)
    timers: list[asyncio.TimerHandle] = field(default_factory=list)


class IpPool:
    """Pod IPs from 127.10.0.0/16, so a process can bind to one on the loopback device."""

    def __init__(self) -> None:
        self._next = 0
        self._free: list[int] = []

    def take(self) -> str:
        n = self._free.pop() if self._free else self._next
        if n == self._next:
            self._next += 1
        return f"127.10.{n // 250}.{n % 250 + 1}"

    def give(self, ip: str) -> None:
        third, fourth = (int(p) for p in ip.split(".")[2:])
        self._free.append(third * 250 + fourth - 1)


class Kubelet:
    """One kubelet for every simulated node."""

    def __init__(self, ctx: Context, nodes: NodeInventory, logs: LogBook) -> None:
        self.ctx = ctx
        self.nodes = nodes
        self.logs = logs
        self.runs: dict[PodKey, PodRun] = {}
        self.ips = IpPool()
        self.node_images: dict[str, set[str]] = {}
        self._failing = re.compile(ctx.config.failing_image_pattern)
        self.runtime = ProcessRuntime(logs) if ctx.config.run_processes else None

    def start(self) -> None:
        self.ctx.store.subscribe(self.on_change)
        for pod in self.ctx.store.list("pods"):
            self._observe(pod)

    async def stop(self) -> None:
        if self.runtime is not None:
            await self.runtime.stop_all()

    # -- reacting to the API ---------------------------------------------------------------
    def on_change(self, change: Change) -> None:
        if change.resource != "pods":
            return
        key = (change.obj["metadata"]["namespace"], change.obj["metadata"]["name"])
        if change.type == "DELETED":
            self._forget(key, change.obj["metadata"].get("uid", ""))
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
            run = PodRun(uid=m["uid"], node=node, faults=self._declared_faults(pod))
            self.runs[key] = run
            self._later(run, self.ctx.config.timings.kubelet_start_delay, self._sandbox, key)
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

    def _forget(self, key: PodKey, uid: str) -> None:
        run = self.runs.get(key)
        if run is None or run.uid != uid:
            return
        del self.runs[key]
        for handle in run.timers:
            self.ctx.timers.cancel(handle)
        if run.ip:
            self.ips.give(run.ip)
        self.logs.forget_pod(*key)

    def _current(self, key: PodKey, run: PodRun) -> Obj | None:
        pod = self.ctx.store.get("pods", *key)
        if pod is None or pod["metadata"]["uid"] != run.uid or self.runs.get(key) is not run:
            return None
        return pod

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
        run = self.runs.get(key)
        pod = self._current(key, run) if run else None
        if run is None or pod is None or run.terminating:
            return
        run.ip = self.ips.take()
        host_ip = self.nodes.ip(run.node)
        names = [c["name"] for c in pod["spec"]["containers"]]

        def sandbox(p: Obj) -> None:
            status = p.setdefault("status", {})
            status.update(
                hostIP=host_ip,
                hostIPs=[{"ip": host_ip}],
                podIP=run.ip,
                podIPs=[{"ip": run.ip}],
                startTime=timestamp(),
            )
            for ctype in ("PodReadyToStartContainers", "Initialized"):
                set_condition(p, ctype, "True")
            unready = f"containers with unready status: [{' '.join(names)}]"
            set_condition(p, "ContainersReady", "False", "ContainersNotReady", unready)
            set_condition(p, "Ready", "False", "ContainersNotReady", unready)
            status["containerStatuses"] = [
                cs.waiting(c, "ContainerCreating") for c in p["spec"]["containers"]
            ]

        self._update(key, sandbox)
        for container in pod["spec"]["containers"]:
            self._pull(key, container["name"], 0)

    def _container(self, pod: Obj, name: str) -> Obj:
        return next(c for c in pod["spec"]["containers"] if c["name"] == name)

    def _pull(self, key: PodKey, name: str, attempt: int) -> None:
        run = self.runs.get(key)
        pod = self._current(key, run) if run else None
        if run is None or pod is None or run.terminating:
            return
        container = self._container(pod, name)
        image = str(container.get("image", ""))
        cached = image in self.node_images.get(run.node, set())
        if (
            cached
            and container.get("imagePullPolicy") != "Always"
            and not self._failing.search(image)
        ):
            self._event(
                pod,
                run,
                "Normal",
                "Pulled",
                f'Container image "{image}" already present on machine',
                name,
            )
            self._later(run, self.ctx.config.timings.container_start_delay, self._create, key, name)
            return
        self._event(pod, run, "Normal", "Pulling", f'Pulling image "{image}"', name)
        self._later(run, self.ctx.config.timings.image_pull_delay, self._pulled, key, name, attempt)

    def _pulled(self, key: PodKey, name: str, attempt: int) -> None:
        run = self.runs.get(key)
        pod = self._current(key, run) if run else None
        if run is None or pod is None or run.terminating:
            return
        image = str(self._container(pod, name).get("image", ""))
        if self._failing.search(image):
            self._pull_failed(key, run, pod, name, attempt)
            return
        self.node_images.setdefault(run.node, set()).add(image)
        took = int(self.ctx.config.timings.image_pull_delay * 1000)
        self._event(
            pod,
            run,
            "Normal",
            "Pulled",
            f'Successfully pulled image "{image}" in {took}ms '
            f"({took}ms including waiting). Image size: 52428800 bytes.",
            name,
        )
        self._later(run, self.ctx.config.timings.container_start_delay, self._create, key, name)

    def _pull_failed(self, key: PodKey, run: PodRun, pod: Obj, name: str, attempt: int) -> None:
        image = str(self._container(pod, name).get("image", ""))
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
        self._set_status(
            key,
            name,
            lambda c, prev: cs.waiting(
                c, "ErrImagePull", f"rpc error: code = NotFound desc = {why}", previous=prev
            ),
        )
        backoff = self.ctx.config.timings.image_pull_backoff
        self._later(run, backoff, self._image_backoff, key, name, attempt)

    def _image_backoff(self, key: PodKey, name: str, attempt: int) -> None:
        run = self.runs.get(key)
        pod = self._current(key, run) if run else None
        if run is None or pod is None or run.terminating:
            return
        image = str(self._container(pod, name).get("image", ""))
        self._event(pod, run, "Normal", "BackOff", f'Back-off pulling image "{image}"', name)
        self._event(pod, run, "Warning", "Failed", "Error: ImagePullBackOff", name)
        self._set_status(
            key,
            name,
            lambda c, prev: cs.waiting(
                c,
                "ImagePullBackOff",
                f'Back-off pulling image "{image}": ErrImagePull',
                previous=prev,
            ),
        )
        delay = self.ctx.config.timings.image_pull_backoff * min(2 ** (attempt + 1), 64)
        self._later(run, delay, self._pull, key, name, attempt + 1)

    def _create(self, key: PodKey, name: str) -> None:
        run = self.runs.get(key)
        pod = self._current(key, run) if run else None
        if run is None or pod is None or run.terminating:
            return
        container = self._container(pod, name)
        self._event(pod, run, "Normal", "Created", f"Created container: {name}", name)
        self._event(pod, run, "Normal", "Started", f"Started container {name}", name)
        self._set_status(key, name, lambda c, prev: cs.running(c, previous=prev))
        self.logs.append(
            (*key, name), f"kubesim: container {name} started (image {container.get('image')})"
        )
        if self.runtime is not None:
            self.runtime.start(key, pod, container, run.ip, on_exit=self.container_exited)
        if name in run.faults:
            self._later(run, self.ctx.config.timings.crash_backoff / 2, self._crash, key, name)

    # -- status bookkeeping ----------------------------------------------------------------
    def _set_status(self, key: PodKey, name: str, make: object) -> Obj | None:
        """Replace one container's status and recompute phase and Ready conditions."""

        def change(p: Obj) -> None:
            statuses = p.setdefault("status", {}).setdefault("containerStatuses", [])
            container = self._container(p, name)
            index = next((i for i, s in enumerate(statuses) if s["name"] == name), None)
            previous = statuses[index] if index is not None else {}
            new = make(container, previous)  # type: ignore[operator]
            if index is None:
                statuses.append(new)
            else:
                statuses[index] = new
            self._recompute(p)

        return self._update(key, change)

    @staticmethod
    def _recompute(pod: Obj) -> None:
        status = pod["status"]
        statuses = status.get("containerStatuses") or []
        states = [cs.state_of(s) for s in statuses]
        unready = [s["name"] for s in statuses if not s.get("ready")]
        if unready:
            why = f"containers with unready status: [{' '.join(unready)}]"
            set_condition(pod, "ContainersReady", "False", "ContainersNotReady", why)
            set_condition(pod, "Ready", "False", "ContainersNotReady", why)
        else:
            set_condition(pod, "ContainersReady", "True")
            set_condition(pod, "Ready", "True")
        never = pod["spec"].get("restartPolicy") == "Never"
        if states and all(s == "terminated" for s in states) and never:
            codes = [s["state"]["terminated"]["exitCode"] for s in statuses]
            status["phase"] = "Succeeded" if all(c == 0 for c in codes) else "Failed"
        elif any(s != "waiting" for s in states) and status.get("phase") == "Pending":
            status["phase"] = "Running" if "running" in states or not never else status["phase"]

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
        run = self.runs.get(key)
        pod = self._current(key, run) if run else None
        if run is None or pod is None or run.terminating or name not in run.faults:
            return
        fault = run.faults[name]
        if fault == "OOMKilled":
            run.faults.pop(name)
            self._set_status(
                key, name, lambda c, prev: cs.terminated(c, prev, exit_code=137, reason="OOMKilled")
            )
        else:
            self._set_status(
                key, name, lambda c, prev: cs.terminated(c, prev, exit_code=1, reason="Error")
            )
        self.logs.end((*key, name))
        if pod["spec"].get("restartPolicy") == "Never":
            return
        if fault == "CrashLoopBackOff":
            self._back_off(key, run, name)
        else:
            self._later(run, self.ctx.config.timings.crash_backoff, self._restart, key, name)

    def _back_off(self, key: PodKey, run: PodRun, name: str) -> None:
        pod = self._current(key, run)
        if pod is None:
            return
        uid, m = run.uid, pod["metadata"]
        pod_ref = f"{m['name']}_{m['namespace']}({uid})"
        message = f"back-off 10s restarting failed container={name} pod={pod_ref}"
        self._set_status(
            key,
            name,
            lambda c, prev: cs.waiting(
                c, "CrashLoopBackOff", message, previous=cs.restarted_from(c, prev)
            ),
        )
        self._event(
            pod,
            run,
            "Warning",
            "BackOff",
            f"Back-off restarting failed container {name} in pod {pod_ref}",
            name,
        )
        self._later(run, self.ctx.config.timings.crash_backoff, self._restart, key, name)

    def _restart(self, key: PodKey, name: str) -> None:
        run = self.runs.get(key)
        pod = self._current(key, run) if run else None
        if run is None or pod is None or run.terminating:
            return

        def again(c: Obj, prev: Obj) -> Obj:
            if cs.state_of(prev) == "terminated":
                prev = cs.restarted_from(c, prev)
            return cs.running(c, previous=prev)

        self._event(pod, run, "Normal", "Started", f"Started container {name}", name)
        self._set_status(key, name, again)
        if name in run.faults:
            self._later(run, self.ctx.config.timings.crash_backoff / 2, self._crash, key, name)

    def container_exited(self, key: PodKey, name: str, exit_code: int) -> None:
        """A real process ended (process mode): record it and restart per the policy."""
        run = self.runs.get(key)
        pod = self._current(key, run) if run else None
        if run is None or pod is None or run.terminating:
            return
        reason = "Completed" if exit_code == 0 else "Error"
        self._set_status(
            key, name, lambda c, prev: cs.terminated(c, prev, exit_code=exit_code, reason=reason)
        )
        policy = pod["spec"].get("restartPolicy", "Always")
        if policy == "Always" or (policy == "OnFailure" and exit_code != 0):
            self._back_off(key, run, name)

    # -- stopping ------------------------------------------------------------------------------
    def _terminate(self, key: PodKey, run: PodRun, pod: Obj) -> None:
        run.terminating = True
        for handle in run.timers:
            self.ctx.timers.cancel(handle)
        run.timers = []
        for status in (pod.get("status") or {}).get("containerStatuses") or []:
            if cs.state_of(status) == "running":
                self._event(
                    pod,
                    run,
                    "Normal",
                    "Killing",
                    f"Stopping container {status['name']}",
                    status["name"],
                )
        grace = float(pod["metadata"].get("deletionGracePeriodSeconds") or 0)
        delay = min(grace, self.ctx.config.timings.termination_delay)
        if self.runtime is not None:
            self.runtime.stop_pod(key, grace)
        self._later(run, delay, self._killed, key)

    def _killed(self, key: PodKey) -> None:
        run = self.runs.get(key)
        pod = self._current(key, run) if run else None
        if run is None or pod is None:
            return

        def stop(p: Obj) -> None:
            statuses = (p.get("status") or {}).get("containerStatuses") or []
            for i, status in enumerate(statuses):
                if cs.state_of(status) == "running":
                    statuses[i] = cs.terminated(
                        self._container(p, status["name"]), status, exit_code=0, reason="Completed"
                    )
            if statuses:
                self._recompute(p)

        self._update(key, stop)
        for container in pod["spec"]["containers"]:
            self.logs.end((*key, container["name"]))
        self.ctx.deleter.delete(
            CATALOG.by_key("pods"),
            key[0],
            key[1],
            DeleteOptions(grace_period_seconds=0, uid=run.uid),
        )
