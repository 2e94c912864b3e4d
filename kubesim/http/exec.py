"""``pods/{name}/exec``: run a command in a pod's container and stream it over a WebSocket.

The request is checked as the API server (``streamLocation`` in ``pkg/registry/core/pod``) and
then the kubelet check it, in their order:

1. the pod exists (404 ``pods "x" not found``);
2. the container: named and valid (400 ``container c is not valid for pod x``), or the only one
   (400 ``a container name must be specified for pod x, choose one of: [a b]``);
3. the pod has a node (400 ``pod x does not have a host assigned``);
4. at least one of stdin, stdout and stderr is asked for (the kubelet's 400, plain text);
5. the container is running (the kubelet's 500 ``container not found ("c")``, plain text, which
   kubectl prints as ``unable to upgrade connection: container not found ("c")``).

Then, unlike a cluster, kubesim needs process mode (``--run-processes``) to have something to
run the command next to: without it the answer is a 400 saying so. The command runs in the
container's environment (its variables, mounts, user and working directory, as
:func:`kubesim.control.sandbox.plan_process` plans it), with its own process group that is
killed when the client goes away, and when the container stops (its pod deleted, its process
ended), as runc kills every process of a container: the client then sees exit code 137.

The stream follows :mod:`.channels`: an empty message on the first output channel once the
connection is up, output as it comes, then the Status on the error channel and a normal close.
kubectl falls back to SPDY (a POST) when the WebSocket upgrade is refused; kubesim answers that
POST with the same errors, and with a 400 when everything else is fine (no SPDY here).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from aiohttp import WSMsgType, web

from ..control.podenv import ContainerConfigError
from ..control.sandbox import plan_process
from ..errors import ApiError, bad_request
from ..objects import Obj
from ..store import Change, Store
from . import channels
from .channels import Channel, Protocol
from .exec_process import ExecProcess, LaunchPlan, Reader, Streams, start
from .routing import Route

if TYPE_CHECKING:
    from ..server import KubeSim

log = logging.getLogger("kubesim")
SESSIONS: web.AppKey[set[ExecSession]] = web.AppKey("kubesim.exec_sessions")
RUN_PROCESSES_FLAG = "--run-processes"
# strconv.ParseBool, which decodes the query into PodExecOptions.
_TRUE = {"1", "t", "T", "TRUE", "true", "True"}
_FALSE = {"0", "f", "F", "FALSE", "false", "False"}


@dataclass(frozen=True)
class ExecOptions:
    """``PodExecOptions`` from the query: ``command`` (repeated), ``container`` and streams."""

    command: list[str]
    container: str
    streams: Streams

    @classmethod
    def from_query(cls, query: Mapping[str, str]) -> ExecOptions:
        """Parse the query; 400 for a flag that is not a boolean."""
        getall = getattr(query, "getall", None)
        command = list(getall("command", [])) if getall else [query.get("command", "")]
        streams = Streams(
            stdin=_flag(query, "stdin"),
            stdout=_flag(query, "stdout"),
            stderr=_flag(query, "stderr"),
            tty=_flag(query, "tty"),
        )
        if streams.tty and streams.stderr:
            # The kubelet drops stderr with a terminal: both go to the one terminal.
            streams = Streams(streams.stdin, streams.stdout, False, True)
        return cls([c for c in command if c != ""], query.get("container", ""), streams)


def _flag(query: Mapping[str, str], name: str) -> bool:
    value = query.get(name)
    if value is None or value in _FALSE:
        return False
    if value in _TRUE:
        return True
    raise bad_request(f'strconv.ParseBool: parsing "{value}": invalid syntax')


def container_for(pod: Obj, pod_name: str, wanted: str) -> str:
    """The container to exec in: ``wanted`` if the pod has it, else the only one; 400 if not."""
    spec = pod.get("spec") or {}
    names = [c["name"] for c in spec.get("containers") or []]
    if not wanted:
        if len(names) == 1:
            return str(names[0])
        if not names:
            raise bad_request(f"a container name must be specified for pod {pod_name}")
        message = f"a container name must be specified for pod {pod_name}, choose one of: "
        message += f"[{' '.join(names)}]"
        init = [c["name"] for c in spec.get("initContainers") or []]
        if init:
            message += f" or one of the init containers: [{' '.join(init)}]"
        raise bad_request(message)
    every = names + [
        c["name"] for key in ("initContainers", "ephemeralContainers") for c in spec.get(key) or []
    ]
    if wanted not in every:
        raise bad_request(f"container {wanted} is not valid for pod {pod_name}")
    return wanted


def is_running(pod: Obj, container: str) -> bool:
    """Whether the container's status says it runs now."""
    status = pod.get("status") or {}
    for key in ("containerStatuses", "initContainerStatuses", "ephemeralContainerStatuses"):
        for entry in status.get(key) or []:
            if entry.get("name") == container and "running" in (entry.get("state") or {}):
                return True
    return False


def _no_processes(pod_name: str) -> ApiError:
    return bad_request(
        f"pod {pod_name} has no processes to exec into: kubesim runs container commands only "
        f"in process mode (start it with `python -m kubesim {RUN_PROCESSES_FLAG}`, or set "
        "KubeSimConfig.run_processes)"
    )


class KubeletRefusal(Exception):
    """A refusal from the kubelet: plain text, passed through by the API server as is."""

    def __init__(self, code: int, text: str) -> None:
        super().__init__(text)
        self.code = code
        self.text = text

    def response(self) -> web.Response:
        return web.Response(status=self.code, text=self.text, content_type="text/plain")


async def pod_exec(sim: KubeSim, request: web.Request, route: Route) -> web.StreamResponse:
    """Check the request, upgrade to a WebSocket and run the command until it exits."""
    options = ExecOptions.from_query(request.query)
    pod = sim.registry.get(route.rt, route.ns, route.name)
    try:
        container = _check(sim, pod, route.name, options)
    except KubeletRefusal as refusal:
        return refusal.response()
    if request.headers.get("Upgrade", "").lower() != "websocket":
        raise bad_request(
            "Upgrade request required: kubesim serves exec over WebSocket only "
            f"({', '.join(channels.PROTOCOLS)}), not SPDY"
        )
    protocol = _negotiate(request.headers.get("Sec-WebSocket-Protocol", ""))
    plan = plan_for(sim, pod, container, _argv(options))
    watch = ContainerWatch(sim.store, str(pod["metadata"]["uid"]), container)
    return await _serve(request, protocol, options, plan, watch)


def _check(sim: KubeSim, pod: Obj, name: str, options: ExecOptions) -> str:
    """The container to run in, after the API server's and the kubelet's checks (in order)."""
    container = container_for(pod, name, options.container)
    if not (pod.get("spec") or {}).get("nodeName"):
        raise bad_request(f"pod {name} does not have a host assigned")
    streams = options.streams
    if not (streams.stdin or streams.stdout or streams.stderr):
        raise KubeletRefusal(400, "you must specify at least 1 of stdin, stdout, stderr")
    if not is_running(pod, container):
        raise KubeletRefusal(500, f'container not found ("{container}")')
    if not sim.config.run_processes or sim.kubelet.host is None:
        raise _no_processes(name)
    if not options.command:
        raise bad_request("you must specify at least one command for the container")
    return container


def _negotiate(header: str) -> Protocol:
    """The subprotocol to speak; 403 when none offered is known (as wsstream's handshake)."""
    protocol = channels.negotiate(channels.offered_protocols(header))
    if protocol is None:
        raise ApiError(
            403,
            "Forbidden",
            f"requested protocol(s) are not supported: {header}; supports "
            f"[{' '.join(channels.PROTOCOLS)}]",
        )
    return protocol


def _argv(options: ExecOptions) -> list[str]:
    """The command; with a terminal, run so that the terminal is its controlling one.

    The terminal must control a session inside the sandbox's PID namespace (shells set its
    foreground process group there): ``setsid --ctty`` makes one, as runc does for ``-t``.
    """
    setsid = shutil.which("setsid") if options.streams.tty else None
    return [setsid, "--wait", "--ctty", *options.command] if setsid else options.command


def plan_for(sim: KubeSim, pod: Obj, container: str, argv: list[str]) -> LaunchPlan:
    """How to run ``argv`` as the container's own process runs: same environment, mounts, user
    and sandbox (:func:`kubesim.control.sandbox.plan_process`, with the kubelet's host)."""
    host = sim.kubelet.host
    if host is None:
        raise _no_processes(str(pod["metadata"]["name"]))
    try:
        return plan_process(pod, container, argv, host=host)
    except ContainerConfigError as e:
        raise ApiError(500, "InternalError", f"Internal error occurred: {e}") from e


@dataclass(frozen=True)
class ContainerWatch:
    """The container an exec runs next to: when it stops, its exec'd processes die too."""

    store: Store
    pod_uid: str
    container: str

    def stopped(self, change: Change) -> bool:
        """Whether ``change`` ends the container (its pod deleted, or it is no longer running)."""
        if change.resource != "pods" or change.obj["metadata"].get("uid") != self.pod_uid:
            return False
        return change.type == "DELETED" or not is_running(change.obj, self.container)


async def _serve(
    request: web.Request,
    protocol: Protocol,
    options: ExecOptions,
    plan: LaunchPlan,
    watch: ContainerWatch,
) -> web.WebSocketResponse:
    ws = web.WebSocketResponse(protocols=(protocol.name,) if protocol.name else ())
    await ws.prepare(request)
    session = ExecSession(ws, protocol, options)
    sessions = request.app[SESSIONS]
    sessions.add(session)
    # As runc kills every process of a container whose main process ends, exec'd ones included.
    unsubscribe = watch.store.subscribe(lambda c: session.abort() if watch.stopped(c) else None)
    try:
        await session.run(plan)
    finally:
        unsubscribe()
        sessions.discard(session)
        session.abort()
    return ws


def _start_failure(command: str, why: str) -> Obj:
    """The Status of a command the runtime could not start (runc's words, via containerd)."""
    return channels.internal_error_status(
        "failed to exec in container: OCI runtime exec failed: exec failed: unable to start "
        f'container process: exec: "{command}": {why}: unknown'
    )


class ExecSession:
    """One exec connection: the command's streams multiplexed on the WebSocket's channels."""

    def __init__(self, ws: web.WebSocketResponse, protocol: Protocol, options: ExecOptions):
        self.ws = ws
        self.protocol = protocol
        self.options = options
        self.process: ExecProcess | None = None

    async def run(self, plan: LaunchPlan) -> None:
        """Announce, start, stream until the command exits, then send its Status and close."""
        await self._announce()
        command = self.options.command[0]
        if "/" not in command and shutil.which(command, path=plan.env.get("PATH")) is None:
            await self._finish(_start_failure(command, "executable file not found in $PATH"))
            return
        try:
            self.process = await start(plan, self.options.streams)
        except OSError as e:
            await self._finish(_start_failure(command, e.strerror or str(e)))
            return
        reader = asyncio.create_task(self._read_client(self.process))
        try:
            await asyncio.gather(*(self._pump(ch, read) for ch, read in self.process.outputs))
            code = await self.process.proc.wait()
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
            self.process.close()
        await self._finish(self._status(code))

    def _status(self, code: int) -> Obj:
        if code < 0:
            code = 128 - code  # killed by a signal: 128 + its number, as a shell reports it
        if code == 0:
            return channels.success_status()
        return channels.exit_code_status(self.options.command, code)

    async def _announce(self) -> None:
        """The empty message on the first output channel that tells the client it is connected."""
        streams = self.options.streams
        channel = Channel.ERROR
        if streams.stdout or streams.stderr:
            channel = Channel.STDOUT if streams.stdout else Channel.STDERR
        await self._send(channel, b"")

    async def _pump(self, channel: Channel, read: Reader) -> None:
        while chunk := await read():
            await self._send(channel, chunk)

    async def _send(self, channel: Channel, data: bytes) -> None:
        message = channels.encode(self.protocol, channel, data)
        with contextlib.suppress(ConnectionError, RuntimeError):
            if isinstance(message, str):
                await self.ws.send_str(message)
            else:
                await self.ws.send_bytes(message)

    async def _finish(self, status: Obj) -> None:
        payload = channels.status_payload(self.protocol, status)
        if payload is not None:
            await self._send(Channel.ERROR, payload)
        with contextlib.suppress(ConnectionError, RuntimeError):
            await self.ws.close()

    async def _read_client(self, process: ExecProcess) -> None:
        """Stdin, stdin's close signal and resizes from the client; its leaving kills the
        command."""
        async for message in self.ws:
            if message.type not in (WSMsgType.BINARY, WSMsgType.TEXT):
                break
            try:
                frame = channels.decode(self.protocol, message.data)
            except ValueError as e:
                log.warning("exec: closing a connection after a protocol error: %s", e)
                break
            if frame is not None:
                await self._deliver(process, frame)
        if process.proc.returncode is None:
            process.kill()

    async def _deliver(self, process: ExecProcess, frame: channels.Frame) -> None:
        if frame.channel == Channel.STDIN and self.options.streams.stdin:
            if frame.closed:
                process.close_stdin()
            else:
                await process.write_stdin(frame.data)
        elif frame.channel == Channel.RESIZE and not frame.closed:
            size = channels.resize(frame.data)
            if size is not None:
                process.resize(*size)

    def abort(self) -> None:
        """Kill the command (the server is stopping, or the handler was cancelled)."""
        if self.process is not None and self.process.proc.returncode is None:
            self.process.kill()


async def close_sessions(app: web.Application) -> None:
    """``on_shutdown``: end every exec (the command is killed, the client sees the close)."""
    sessions: set[ExecSession] = app[SESSIONS]
    for session in list(sessions):
        session.abort()
        with contextlib.suppress(ConnectionError, RuntimeError):
            await session.ws.close(code=1001, message=b"server shutting down")
