"""Process mode: container exits, pod phases and restarts with the kubelet's back-off."""

from __future__ import annotations

import json
from typing import Any

import pytest
from kubernetes_asyncio.client import CoreV1Api
from kubernetes_asyncio.client.exceptions import ApiException

from kubesim import KubeSim, KubeSimConfig

from .conftest import NS, events_for, eventually
from .kubelet_support import (
    Manifest,
    container_status,
    finished,
    kubectl,
    log_of,
    process_config,
    shell_pod,
)


@pytest.fixture
def kubesim_config() -> KubeSimConfig:
    return process_config(tls=True)


def conditions(pod: Any) -> dict[str, tuple[str, str | None]]:
    return {c.type: (c.status, c.reason) for c in pod.status.conditions}


@pytest.mark.asyncio
async def test_a_command_that_exits_0_under_never_ends_the_pod_succeeded(core: CoreV1Api) -> None:
    await core.create_namespaced_pod(NS, shell_pod("ok", "echo done"))
    pod = await finished(core, "ok")
    assert pod.status.phase == "Succeeded"
    (status,) = pod.status.container_statuses
    terminated = status.state.terminated
    assert (terminated.exit_code, terminated.reason) == (0, "Completed")
    assert terminated.started_at is not None and terminated.finished_at is not None
    assert terminated.finished_at >= terminated.started_at
    assert terminated.container_id == status.container_id
    assert terminated.container_id.startswith("containerd://")
    assert status.ready is False and status.started is False and status.restart_count == 0
    assert conditions(pod) == {
        "PodScheduled": ("True", None),
        "PodReadyToStartContainers": ("False", None),
        "Initialized": ("True", None),
        "ContainersReady": ("False", "PodCompleted"),
        "Ready": ("False", "PodCompleted"),
    }
    assert await log_of(core, "ok") == "done\n"


@pytest.mark.asyncio
async def test_a_command_that_exits_3_under_never_ends_the_pod_failed(core: CoreV1Api) -> None:
    await core.create_namespaced_pod(NS, shell_pod("bad", "echo oops; exit 3"))
    pod = await finished(core, "bad")
    assert pod.status.phase == "Failed"
    terminated = pod.status.container_statuses[0].state.terminated
    assert (terminated.exit_code, terminated.reason) == (3, "Error")
    assert conditions(pod)["Ready"] == ("False", "PodFailed")
    started = [e for e in await events_for(core, "bad") if e.reason == "Started"]
    assert [e.message for e in started] == ["Started container main"]


@pytest.mark.asyncio
async def test_on_failure_does_not_restart_a_command_that_exits_0(core: CoreV1Api) -> None:
    await core.create_namespaced_pod(NS, shell_pod("once", "true", restart="OnFailure"))
    pod = await finished(core, "once")
    assert pod.status.phase == "Succeeded"
    assert pod.status.container_statuses[0].restart_count == 0


@pytest.mark.asyncio
async def test_on_failure_restarts_a_failing_command_with_crash_loop_back_off(
    core: CoreV1Api,
) -> None:
    await core.create_namespaced_pod(NS, shell_pod("flaky", "exit 3", restart="OnFailure"))
    status = await container_status(
        core,
        "flaky",
        lambda s: s.state.waiting and s.state.waiting.reason == "CrashLoopBackOff",
        what="CrashLoopBackOff",
    )
    assert status.last_state.terminated.exit_code == 3
    assert status.last_state.terminated.reason == "Error"
    assert status.restart_count >= 1 and status.ready is False
    assert status.state.waiting.message.startswith("back-off ")
    assert "restarting failed container=main pod=flaky_raworc-sessions(" in (
        status.state.waiting.message
    )
    assert (await core.read_namespaced_pod("flaky", NS)).status.phase == "Running"


@pytest.mark.asyncio
async def test_always_restarts_even_a_clean_exit_and_backs_off_doubling(
    sim: KubeSim, core: CoreV1Api
) -> None:
    # Exits after 0.1 s: first restart at once, then back-offs of 0.2, 0.4, 0.8 (cap) seconds.
    await core.create_namespaced_pod(NS, shell_pod("loop", "sleep 0.1", restart="Always"))
    status = await container_status(
        core, "loop", lambda s: s.restart_count >= 3, what="three restarts"
    )
    assert status.last_state.terminated.exit_code == 0
    assert status.last_state.terminated.reason == "Completed"
    backoffs = [e for e in await events_for(core, "loop") if e.reason == "BackOff"]
    assert backoffs and backoffs[0].type == "Warning"
    assert backoffs[0].message.startswith("Back-off restarting failed container main in pod loop_")
    assert sum(e.count for e in backoffs) >= 2
    started = [e for e in await events_for(core, "loop") if e.reason == "Started"]
    assert sum(e.count for e in started) >= 4
    waiting = await container_status(
        core,
        "loop",
        lambda s: s.state.waiting and "back-off 800ms" in s.state.waiting.message,
        what="the back-off to reach its cap",
    )
    assert waiting.state.waiting.reason == "CrashLoopBackOff"
    assert (await core.read_namespaced_pod("loop", NS)).status.phase == "Running"


@pytest.mark.asyncio
async def test_kubectl_shows_the_restart_count_and_crash_loop(
    sim: KubeSim, core: CoreV1Api
) -> None:
    await core.create_namespaced_pod(NS, shell_pod("crashy", "exit 1", restart="Always"))
    await container_status(
        core,
        "crashy",
        lambda s: s.state.waiting and s.state.waiting.reason == "CrashLoopBackOff",
        what="CrashLoopBackOff",
    )
    out = await kubectl(
        sim,
        "get",
        "pod",
        "crashy",
        "-n",
        NS,
        "-o",
        "jsonpath={.status.containerStatuses[0].lastState.terminated.exitCode} "
        "{.status.containerStatuses[0].lastState.terminated.reason}",
    )
    assert out == "1 Error"


@pytest.mark.asyncio
async def test_a_missing_executable_is_a_start_error(core: CoreV1Api) -> None:
    manifest = shell_pod("nocmd", "")
    manifest["spec"]["containers"][0]["command"] = ["no-such-command-here"]
    await core.create_namespaced_pod(NS, manifest)
    pod = await finished(core, "nocmd")
    terminated = pod.status.container_statuses[0].state.terminated
    assert (pod.status.phase, terminated.reason, terminated.exit_code) == (
        "Failed",
        "StartError",
        128,
    )
    assert 'exec: "no-such-command-here": executable file not found in $PATH' in (
        terminated.message
    )
    failed = [e.message for e in await events_for(core, "nocmd") if e.reason == "Failed"]
    assert failed and failed[0].startswith("Error: failed to create containerd task")


@pytest.mark.asyncio
async def test_a_missing_config_map_is_a_create_container_config_error_until_it_exists(
    core: CoreV1Api,
) -> None:
    env = [{"name": "X", "valueFrom": {"configMapKeyRef": {"name": "later", "key": "x"}}}]
    await core.create_namespaced_pod(NS, shell_pod("cfg", 'echo "x=$X"', env=env))
    status = await container_status(
        core,
        "cfg",
        lambda s: s.state.waiting and s.state.waiting.reason == "CreateContainerConfigError",
        what="CreateContainerConfigError",
    )
    assert status.state.waiting.message == 'configmap "later" not found'
    config_map: Manifest = {"metadata": {"name": "later"}, "data": {"x": "42"}}
    await core.create_namespaced_config_map(NS, config_map)
    await finished(core, "cfg")
    assert await log_of(core, "cfg") == "x=42\n"

    async def pod_phase() -> str | None:
        return str((await core.read_namespaced_pod("cfg", NS)).status.phase)

    assert await eventually(pod_phase) == "Succeeded"


@pytest.mark.asyncio
async def test_a_negative_run_as_user_is_rejected_by_the_api(core: CoreV1Api) -> None:
    manifest = shell_pod("neg", "true", securityContext={"runAsUser": -1})
    with pytest.raises(ApiException) as raised:
        await core.create_namespaced_pod(NS, manifest)
    assert raised.value.status == 422
    body = json.loads(raised.value.body or b"{}")
    assert body["details"]["causes"] == [
        {
            "reason": "FieldValueInvalid",
            "field": "spec.containers[0].securityContext.runAsUser",
            "message": "Invalid value: -1: must be between 0 and 2147483647, inclusive",
        }
    ]
