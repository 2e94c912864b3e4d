"""A subPath stays inside its volume: the API refuses absolute and '..' paths, the kubelet a
symlink that leads out."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from kubernetes_asyncio.client import CoreV1Api
from kubernetes_asyncio.client.exceptions import ApiException

from kubesim import KubeSim, KubeSimConfig

from .conftest import NS, eventually
from .kubelet_support import bound_claim, finished, process_config, shell_pod, volume_dir


@pytest.fixture
def kubesim_config() -> KubeSimConfig:
    return process_config()


def with_sub_path(name: str, script: str, claim: str, sub_path: str) -> dict:
    pod = shell_pod(name, script, claims={"/data": claim})
    pod["spec"]["containers"][0]["volumeMounts"][0]["subPath"] = sub_path
    return pod


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("sub_path", "message"),
    [
        ("/etc", 'Invalid value: "/etc": must be a relative path'),
        ("../../..", "Invalid value: \"../../..\": must not contain '..'"),
        ("a/../../b", "Invalid value: \"a/../../b\": must not contain '..'"),
    ],
)
async def test_an_absolute_or_climbing_sub_path_is_refused_by_the_api(
    core: CoreV1Api, sub_path: str, message: str
) -> None:
    await bound_claim(core, "c")
    with pytest.raises(ApiException) as refused:
        await core.create_namespaced_pod(NS, with_sub_path("p", "true", "c", sub_path))
    assert refused.value.status == 422
    causes = json.loads(refused.value.body)["details"]["causes"]
    assert {
        "reason": "FieldValueInvalid",
        "message": message,
        "field": "spec.containers[0].volumeMounts[0].subPath",
    } in causes


@pytest.mark.asyncio
async def test_a_sub_path_that_is_a_symlink_out_of_the_volume_is_not_mounted(
    sim: KubeSim, core: CoreV1Api, tmp_path: Path
) -> None:
    claim = await bound_claim(core, "c")
    planter = shell_pod("planter", f"ln -s {tmp_path} /data/out", claims={"/data": "c"})
    await core.create_namespaced_pod(NS, planter)
    assert (await finished(core, "planter")).status.phase == "Succeeded"
    assert (volume_dir(sim, claim) / "out").is_symlink()
    marker = f"escaped-{uuid.uuid4().hex}"
    await core.create_namespaced_pod(
        NS, with_sub_path("escaper", f"echo x > /data/{marker}", "c", "out")
    )

    async def refused() -> object:
        pod = await core.read_namespaced_pod("escaper", NS)
        statuses = pod.status.container_statuses or []
        waiting = statuses[0].state.waiting if statuses else None
        return waiting if waiting and waiting.reason == "CreateContainerConfigError" else None

    waiting = await eventually(refused, what="CreateContainerConfigError")
    assert "subPath 'out' leaves the volume" in waiting.message
    assert not (tmp_path / marker).exists()
