"""``pods/exec`` over WebSocket: the real kubectl, kubernetes_asyncio's ``stream``, raw frames.

kubectl runs against a standalone kubesim in process mode; the protocol-level tests run an
in-process kubesim and speak the channel protocol themselves, frame by frame.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import shutil
import subprocess
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp
import pytest
import pytest_asyncio
from kubernetes_asyncio.client import ApiClient, CoreV1Api, RbacAuthorizationV1Api
from kubernetes_asyncio.stream import WsApiClient

from kubesim import KubeSim, KubeSimConfig, KubeSimProcess

from .conftest import NS, pod_manifest, running_pod

KUBECTL = shutil.which("kubectl") or "/usr/bin/kubectl"
Kubectl = Callable[..., subprocess.CompletedProcess[str]]
SUCCESS = b'{"metadata":{},"status":"Success"}'
NO_SPDY = (
    "Upgrade request required: kubesim serves exec over WebSocket only (v5.channel.k8s.io, "
    "v4.channel.k8s.io, v4.base64.channel.k8s.io, channel.k8s.io, base64.channel.k8s.io), "
    "not SPDY"
)

SESSION = """
apiVersion: v1
kind: Pod
metadata:
  name: {name}
  namespace: raworc-sessions
  annotations: {{kubectl.kubernetes.io/default-container: session}}
spec:
  securityContext: {{runAsUser: 1000, runAsGroup: 1000, fsGroup: 1000}}
  containers:
  - name: session
    image: python:3.11-slim
    command: ["sleep", "infinity"]
    workingDir: /workspace
    env: [{{name: SESSION_ID, value: "{name}"}}, {{name: GREETING, value: "hello $(SESSION_ID)"}}]
    volumeMounts: [{{name: workspace, mountPath: /workspace}}]
  - name: sidecar
    image: python:3.11-slim
    command: ["sleep", "infinity"]
    env: [{{name: ROLE, value: sidecar}}]
  volumes:
  - name: workspace
    persistentVolumeClaim: {{claimName: ws-{name}}}
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {{name: ws-{name}, namespace: raworc-sessions}}
spec:
  accessModes: [ReadWriteOnce]
  resources: {{requests: {{storage: 1Gi}}}}
"""


# -- kubectl ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def cluster() -> Iterator[KubeSimProcess]:
    if not os.access(KUBECTL, os.X_OK):
        pytest.skip(f"kubectl not found at {KUBECTL}")
    with KubeSimProcess(tls=True, args=["--namespace", NS, "--run-processes"]) as sim:
        yield sim


@pytest.fixture(scope="module")
def kubectl_env(
    cluster: KubeSimProcess, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, str]:
    home = tmp_path_factory.mktemp("home")
    path = os.environ.get("PATH", "/usr/bin")
    return {"PATH": path, "HOME": str(home), "KUBECONFIG": cluster.kubeconfig}


@pytest.fixture(scope="module")
def kubectl(kubectl_env: dict[str, str]) -> Kubectl:
    env = kubectl_env

    def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [KUBECTL, *args], input=stdin, capture_output=True, text=True, env=env, timeout=60
        )

    return run


@pytest.fixture(scope="module")
def session(kubectl: Kubectl) -> str:
    """A running two-container pod with a claim at /workspace, made once for the module."""
    done = kubectl("apply", "-f", "-", stdin=SESSION.format(name="s1"))
    assert done.returncode == 0, done.stderr
    ready = kubectl("wait", "--for=condition=Ready", "pod/s1", "-n", NS, "--timeout=30s")
    assert ready.returncode == 0, ready.stderr
    return "s1"


def test_exec_prints_the_commands_output_and_exits_zero(kubectl: Kubectl, session: str) -> None:
    done = kubectl("exec", session, "-n", NS, "--", "sh", "-c", "echo out; echo err >&2")
    assert (done.returncode, done.stdout, done.stderr) == (0, "out\n", "err\n")


def test_the_commands_exit_code_becomes_kubectls(kubectl: Kubectl, session: str) -> None:
    done = kubectl("exec", session, "-n", NS, "--", "sh", "-c", "echo bye; exit 3")
    assert (done.returncode, done.stdout) == (3, "bye\n")
    assert done.stderr == "command terminated with exit code 3\n"


def test_piped_stdin_reaches_the_command_and_its_end_ends_it(
    kubectl: Kubectl, session: str
) -> None:
    done = kubectl("exec", "-i", session, "-n", NS, "--", "cat", stdin="line one\nline two\n")
    assert (done.returncode, done.stdout) == (0, "line one\nline two\n")
    counted = kubectl("exec", "-i", session, "-n", NS, "--", "wc", "-l", stdin="a\nb\nc\n")
    assert counted.stdout.strip() == "3"


def test_the_command_runs_as_the_containers_process_user_environment_directory_and_volume(
    kubectl: Kubectl, session: str
) -> None:
    script = "echo $GREETING; id -u; pwd; echo kept > note; ls /workspace"
    done = kubectl("exec", session, "-n", NS, "--", "sh", "-c", script)
    assert (done.returncode, done.stdout) == (0, "hello s1\n1000\n/workspace\nnote\n")
    again = kubectl("exec", session, "-n", NS, "--", "cat", "/workspace/note")
    assert again.stdout == "kept\n"


def test_kubectl_cp_copies_a_file_in_and_out_through_exec(
    kubectl: Kubectl, session: str, tmp_path: Path
) -> None:
    """``kubectl cp`` runs ``tar`` through exec: binary stdin with its end, binary stdout."""
    source = tmp_path / "blob"
    source.write_bytes(os.urandom(300_000))
    into = kubectl("cp", str(source), f"{NS}/{session}:/workspace/blob", "-c", "session")
    assert into.returncode == 0, into.stderr
    back = tmp_path / "back"
    out = kubectl("cp", f"{NS}/{session}:/workspace/blob", str(back), "-c", "session")
    assert out.returncode == 0, out.stderr
    assert back.read_bytes() == source.read_bytes()


def test_dash_c_picks_the_container_and_without_it_kubectl_takes_the_default_one(
    kubectl: Kubectl, session: str
) -> None:
    sidecar = kubectl("exec", session, "-c", "sidecar", "-n", NS, "--", "sh", "-c", "echo $ROLE")
    assert (sidecar.returncode, sidecar.stdout, sidecar.stderr) == (0, "sidecar\n", "")
    first = kubectl("exec", session, "-n", NS, "--", "sh", "-c", "echo ${ROLE:-none}")
    assert (first.returncode, first.stdout, first.stderr) == (0, "none\n", "")


def test_exec_with_a_terminal_runs_an_interactive_shell(
    kubectl_env: dict[str, str], session: str
) -> None:
    """``kubectl exec -it`` needs a terminal of its own: ``script`` gives it one (40x120)."""
    script = shutil.which("script")
    if script is None:
        pytest.skip("script (util-linux) is not installed")
    command = f"stty rows 40 cols 120; {KUBECTL} exec -it {session} -n {NS} -- sh"
    typed = "stty size; tty -s && echo on-a-tty; exit 5\n"
    done = subprocess.run(
        [script, "-qec", command, "/dev/null"],
        input=typed,
        capture_output=True,
        text=True,
        env=kubectl_env,
        timeout=60,
    )
    assert done.returncode == 5, done.stdout
    assert "40 120\non-a-tty\n" in done.stdout  # text mode turns the terminal's \r\n into \n
    assert done.stdout.endswith("command terminated with exit code 5\n")


UNRUNNABLE = """
apiVersion: v1
kind: Pod
metadata: {name: big, namespace: raworc-sessions}
spec:
  containers:
  - {name: big, image: python:3.11-slim, command: [sleep, infinity],
     resources: {requests: {cpu: "64"}}}
---
apiVersion: v1
kind: Pod
metadata: {name: broken, namespace: raworc-sessions}
spec:
  containers:
  - {name: broken, image: "does-not-exist:1", command: [sleep, infinity]}
"""


def test_exec_errors_read_as_they_do_on_a_cluster(kubectl: Kubectl, session: str) -> None:
    assert kubectl("apply", "-f", "-", stdin=UNRUNNABLE).returncode == 0
    time.sleep(0.5)  # both are tried by the scheduler and the kubelet in well under that
    expected = {
        ("nope",): 'Error from server (NotFound): pods "nope" not found\n',
        (session, "-c", "nosuch"): (
            f"Error from server (BadRequest): container nosuch is not valid for pod {session}\n"
        ),
        ("big",): "Error from server (BadRequest): pod big does not have a host assigned\n",
        ("broken",): 'error: unable to upgrade connection: container not found ("broken")\n',
    }
    for args, stderr in expected.items():
        done = kubectl("exec", *args, "-n", NS, "--", "true")
        assert (done.returncode, done.stderr) == (1, stderr), args


def test_a_missing_executable_is_an_error_from_the_runtime(kubectl: Kubectl, session: str) -> None:
    done = kubectl("exec", session, "-n", NS, "--", "no-such-command")
    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr == (
        "error: Internal error occurred: error executing command in container: failed to exec "
        "in container: OCI runtime exec failed: exec failed: unable to start container process: "
        'exec: "no-such-command": executable file not found in $PATH: unknown\n'
    )


# -- the protocol, in process --------------------------------------------------------------------
@pytest.fixture
def kubesim_config() -> KubeSimConfig:
    return KubeSimConfig(namespaces=["default", NS], run_processes=True, seed=7)


@pytest_asyncio.fixture
async def pod(core: Any) -> str:
    manifest = pod_manifest("p")
    manifest["spec"]["containers"][0]["env"] = [{"name": "FOO", "value": "bar"}]
    await core.create_namespaced_pod(NS, manifest)
    await running_pod(core, "p")
    return "p"


@pytest_asyncio.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def exec_url(sim: KubeSim, pod: str, command: list[str], **flags: bool) -> str:
    query = [("command", c) for c in command]
    query += [(k, "true") for k, on in {"stdout": True, "stderr": True, **flags}.items() if on]
    return f"{sim.url}/api/v1/namespaces/{NS}/pods/{pod}/exec?{urlencode(query)}"


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@dataclass
class Transcript:
    """Every message of one exec, and its outputs per channel."""

    messages: list[bytes | str] = field(default_factory=list)
    close_code: int | None = None

    def channel(self, number: int) -> bytes:
        return b"".join(m[1:] for m in self.messages if isinstance(m, bytes) and m[0] == number)


async def read_all(ws: aiohttp.ClientWebSocketResponse) -> Transcript:
    transcript = Transcript()
    async for message in ws:
        transcript.messages.append(message.data)
    transcript.close_code = ws.close_code
    return transcript


async def run_exec(
    sim: KubeSim,
    http: aiohttp.ClientSession,
    command: list[str],
    *,
    protocol: str = "v5.channel.k8s.io",
    send: list[bytes | str] | None = None,
    **flags: bool,
) -> Transcript:
    url = exec_url(sim, "p", command, **flags)
    async with http.ws_connect(url, protocols=(protocol,), headers=auth(sim.token)) as ws:
        assert ws.protocol == protocol
        for message in send or []:
            if isinstance(message, str):
                await ws.send_str(message)
            else:
                await ws.send_bytes(message)
        return await asyncio.wait_for(read_all(ws), 10)


@pytest.mark.asyncio
async def test_an_exec_opens_with_an_empty_stdout_message_and_closes_after_its_status(
    sim: KubeSim, http: aiohttp.ClientSession, pod: str
) -> None:
    transcript = await run_exec(sim, http, ["sh", "-c", "echo $FOO"])
    assert transcript.messages == [b"\x01", b"\x01bar\n", b"\x03" + SUCCESS]
    assert transcript.close_code == 1000


@pytest.mark.asyncio
async def test_a_non_zero_exit_is_a_failure_status_carrying_the_code(
    sim: KubeSim, http: aiohttp.ClientSession, pod: str
) -> None:
    transcript = await run_exec(sim, http, ["sh", "-c", "exit 7"])
    assert json.loads(transcript.channel(3)) == {
        "metadata": {},
        "status": "Failure",
        "message": "command terminated with non-zero exit code: error executing command "
        "[sh -c exit 7], exit code 7",
        "reason": "NonZeroExitCode",
        "details": {"causes": [{"reason": "ExitCode", "message": "7"}]},
    }


@pytest.mark.asyncio
async def test_the_v5_close_signal_ends_the_commands_stdin(
    sim: KubeSim, http: aiohttp.ClientSession, pod: str
) -> None:
    transcript = await run_exec(
        sim, http, ["cat"], stdin=True, send=[b"\x00one\n", b"\x00two\n", bytes([255, 0])]
    )
    assert transcript.channel(1) == b"one\ntwo\n"
    assert transcript.channel(3) == SUCCESS


@pytest.mark.asyncio
async def test_base64_protocols_send_text_messages_with_a_digit_channel(
    sim: KubeSim, http: aiohttp.ClientSession, pod: str
) -> None:
    transcript = await run_exec(sim, http, ["echo", "hi"], protocol="v4.base64.channel.k8s.io")
    assert transcript.messages == [
        "1",
        "1" + base64.b64encode(b"hi\n").decode(),
        "3" + base64.b64encode(SUCCESS).decode(),
    ]


@pytest.mark.asyncio
async def test_before_v4_the_error_channel_carries_only_a_failures_text(
    sim: KubeSim, http: aiohttp.ClientSession, pod: str
) -> None:
    ok = await run_exec(sim, http, ["true"], protocol="channel.k8s.io")
    failed = await run_exec(sim, http, ["sh", "-c", "exit 2"], protocol="channel.k8s.io")
    assert ok.messages == [b"\x01"]
    assert failed.messages == [
        b"\x01",
        b"\x03command terminated with non-zero exit code: error executing command "
        b"[sh -c exit 2], exit code 2",
    ]


@pytest.mark.asyncio
async def test_a_terminal_has_the_size_the_client_sets(
    sim: KubeSim, http: aiohttp.ClientSession, pod: str
) -> None:
    resize = b"\x04" + json.dumps({"Width": 100, "Height": 30}).encode()
    transcript = await run_exec(
        sim,
        http,
        ["sh", "-c", "read line; stty size; test -t 1 && echo on-a-tty"],
        stdin=True,
        tty=True,
        send=[resize, b"\x00go\n"],
    )
    output = transcript.channel(1).decode()
    assert "30 100\r\non-a-tty\r\n" in output
    assert transcript.channel(2) == b"" and transcript.channel(3) == SUCCESS


@pytest.mark.asyncio
async def test_kubernetes_asyncio_stream_gets_the_output_and_the_exit_code(
    sim: KubeSim, pod: str
) -> None:
    async with WsApiClient(sim.client_configuration()) as ws_api:
        core: Any = CoreV1Api(ws_api)
        output = await core.connect_get_namespaced_pod_exec(
            pod, NS, command=["sh", "-c", "echo $FOO"], stdout=True, stderr=True
        )
        assert output == "bar\n"
        exit_codes = []
        async with await core.connect_get_namespaced_pod_exec(
            pod,
            NS,
            command=["sh", "-c", "exit 4"],
            stdout=True,
            stderr=True,
            _preload_content=False,
        ) as ws:
            async for message in ws:
                if message.data[0] == 3:
                    exit_codes.append(WsApiClient.parse_error_data(message.data[1:]))
        assert exit_codes == [4]


def _running_sleeps(seconds: str) -> list[int]:
    """Pids of ``sleep <seconds>`` processes on this machine."""
    found = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                cmdline = Path(entry.path, "cmdline").read_bytes()
            except OSError:
                continue
            if cmdline == f"sleep\0{seconds}\0".encode():
                found.append(int(entry.name))
    return found


async def _gone(seconds: str, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while _running_sleeps(seconds):
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.05)
    return True


@pytest.mark.asyncio
async def test_the_command_is_killed_when_the_client_goes_away(
    sim: KubeSim, http: aiohttp.ClientSession, pod: str
) -> None:
    url = exec_url(sim, pod, ["sleep", "31337"])
    async with http.ws_connect(url, protocols=("v5.channel.k8s.io",), headers=auth(sim.token)):
        deadline = time.monotonic() + 5
        while not _running_sleeps("31337"):
            assert time.monotonic() < deadline, "the command never started"
            await asyncio.sleep(0.05)
    assert await _gone("31337")


@pytest.mark.asyncio
async def test_stopping_kubesim_ends_running_execs(no_leaked_tasks: None) -> None:
    sim = await KubeSim(KubeSimConfig(namespaces=[NS], run_processes=True)).start()
    stopping: asyncio.Task[None] | None = None
    try:
        async with ApiClient(sim.client_configuration()) as api:
            core: Any = CoreV1Api(api)
            await core.create_namespaced_pod(NS, pod_manifest("p"))
            await running_pod(core, "p")
        async with aiohttp.ClientSession() as http:
            url = exec_url(sim, "p", ["sleep", "31338"])
            async with http.ws_connect(
                url, protocols=("v5.channel.k8s.io",), headers=auth(sim.token)
            ) as ws:
                assert (await ws.receive()).data == b"\x01"
                stopping = asyncio.create_task(sim.stop())
                closing = await asyncio.wait_for(ws.receive(), 5)
                assert closing.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
    finally:
        await (stopping or sim.stop())
    assert await _gone("31338")


@pytest.mark.asyncio
async def test_deleting_the_pod_ends_its_execs_with_exit_code_137(
    sim: KubeSim, core: Any, http: aiohttp.ClientSession, pod: str
) -> None:
    url = exec_url(sim, pod, ["sleep", "31339"])
    async with http.ws_connect(
        url, protocols=("v5.channel.k8s.io",), headers=auth(sim.token)
    ) as ws:
        assert (await ws.receive()).data == b"\x01"
        await core.delete_namespaced_pod(pod, NS, grace_period_seconds=0)
        transcript = await asyncio.wait_for(read_all(ws), 10)
    status = json.loads(transcript.channel(3))
    assert (status["reason"], status["details"]) == (
        "NonZeroExitCode",
        {"causes": [{"reason": "ExitCode", "message": "137"}]},
    )
    assert await _gone("31339")


# -- refusals ------------------------------------------------------------------------------------
async def _refusal(http: aiohttp.ClientSession, url: str, token: str) -> tuple[int, Any]:
    async with http.get(url, headers=auth(token)) as response:
        if response.content_type == "application/json":
            return response.status, await response.json()
        return response.status, await response.text()


@pytest.mark.asyncio
async def test_requests_that_cannot_run_are_refused_as_the_api_server_or_kubelet_would(
    sim: KubeSim, core: Any, http: aiohttp.ClientSession, pod: str
) -> None:
    await core.create_namespaced_pod(NS, pod_manifest("pending", cpu="64"))
    await core.create_namespaced_pod(NS, pod_manifest("pulling", image="does-not-exist:1"))
    await sim.wait_idle(0.3)
    cases = [
        (exec_url(sim, "ghost", ["true"]), 404, 'pods "ghost" not found'),
        (exec_url(sim, "pending", ["true"]), 400, "pod pending does not have a host assigned"),
        (exec_url(sim, pod, ["true"]) + "&container=web", 400, "container web is not valid for pod p"),  # noqa: E501
        (exec_url(sim, "pulling", ["true"]), 500, 'container not found ("session")'),
        (
            exec_url(sim, pod, ["true"], stdout=False, stderr=False),
            400,
            "you must specify at least 1 of stdin, stdout, stderr",
        ),
        (exec_url(sim, pod, ["true"]), 400, NO_SPDY),
    ]  # fmt: skip
    for url, code, message in cases:
        status, body = await _refusal(http, url, sim.token)
        assert (status, body["message"] if isinstance(body, dict) else body) == (code, message)


@pytest.mark.asyncio
async def test_an_unsupported_subprotocol_is_refused(
    sim: KubeSim, http: aiohttp.ClientSession, pod: str
) -> None:
    url = exec_url(sim, pod, ["true"])
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await http.ws_connect(url, protocols=("v9.channel.k8s.io",), headers=auth(sim.token))
    assert refused.value.status == 403


@pytest.mark.parametrize("kubesim_config", [KubeSimConfig(namespaces=[NS], seed=7)])
@pytest.mark.asyncio
async def test_without_process_mode_exec_is_refused_with_how_to_turn_it_on(
    sim: KubeSim, http: aiohttp.ClientSession, pod: str
) -> None:
    status, body = await _refusal(http, exec_url(sim, pod, ["true"]), sim.token)
    assert (status, body["reason"]) == (400, "BadRequest")
    assert body["message"] == (
        "pod p has no processes to exec into: kubesim runs container commands only in process "
        "mode (start it with `python -m kubesim --run-processes`, or set "
        "KubeSimConfig.run_processes)"
    )


@pytest.mark.asyncio
async def test_exec_needs_create_on_pods_exec(
    sim: KubeSim, core: Any, api: Any, http: aiohttp.ClientSession, pod: str
) -> None:
    await core.create_namespaced_service_account(NS, {"metadata": {"name": "runner"}})
    token = sim.issue_token(NS, "runner")
    rbac: Any = RbacAuthorizationV1Api(api)
    role: Any = {
        "metadata": {"name": "runner"},
        "rules": [{"apiGroups": [""], "resources": ["pods", "pods/exec"], "verbs": ["get"]}],
    }
    await rbac.create_namespaced_role(NS, role)
    await rbac.create_namespaced_role_binding(
        NS,
        {
            "metadata": {"name": "runner"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "runner"},
            "subjects": [{"kind": "ServiceAccount", "name": "runner", "namespace": NS}],
        },
    )
    status, body = await _refusal(http, exec_url(sim, pod, ["true"]), token)
    assert (status, body["message"]) == (
        403,
        'pods "p" is forbidden: User "system:serviceaccount:raworc-sessions:runner" cannot '
        'create resource "pods/exec" in API group "" in the namespace "raworc-sessions"',
    )
    role["rules"].append({"apiGroups": [""], "resources": ["pods/exec"], "verbs": ["create"]})
    await rbac.replace_namespaced_role("runner", NS, role)
    url = exec_url(sim, pod, ["echo", "allowed"])
    async with http.ws_connect(url, protocols=("v5.channel.k8s.io",), headers=auth(token)) as ws:
        transcript = await asyncio.wait_for(read_all(ws), 10)
    assert transcript.channel(1) == b"allowed\n"
