"""Process mode: every claim is its own directory, seen by the process at its mountPath."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from kubernetes_asyncio.client import CoreV1Api

from kubesim import KubeSim, KubeSimConfig

from .conftest import NS, eventually
from .kubelet_support import (
    bound_claim,
    finished,
    gone,
    log_of,
    needs_bwrap,
    process_config,
    shell_pod,
    volume_dir,
)

MODES = [pytest.param("bwrap", marks=needs_bwrap), "none"]


@pytest.fixture(params=MODES)
def kubesim_config(request: pytest.FixtureRequest) -> KubeSimConfig:
    return process_config(sandbox=request.param)


WRITE = "echo {me} > /workspace/who && echo {me}-data > /data/who && sleep 0.3 && " + (
    "cat /workspace/who /data/who && pwd"
)


@pytest.mark.asyncio
async def test_two_pods_with_two_claims_each_see_only_their_own_files(
    sim: KubeSim, core: CoreV1Api
) -> None:
    host_workspace_before = os.path.exists("/workspace/who")
    claims = {}
    for name in ("a1", "a2", "b1", "b2"):
        claims[name] = await bound_claim(core, name)
    for me, first, second in (("a", "a1", "a2"), ("b", "b1", "b2")):
        mounts = {"/workspace": first, "/data": second}
        pod = shell_pod(me, WRITE.format(me=me), claims=mounts, workingDir="/workspace")
        await core.create_namespaced_pod(NS, pod)
    for me in ("a", "b"):
        assert (await finished(core, me)).status.phase == "Succeeded"
    assert sim.kubelet.host is not None
    sandboxed = sim.kubelet.host.bwrap is not None
    for me in ("a", "b"):
        # Without bubblewrap the process works in the claim's directory under its real path.
        workdir = "/workspace" if sandboxed else str(volume_dir(sim, claims[f"{me}1"]))
        assert (await log_of(core, me)).splitlines() == [me, f"{me}-data", workdir]
    assert (volume_dir(sim, claims["a1"]) / "who").read_text() == "a\n"
    assert (volume_dir(sim, claims["a2"]) / "who").read_text() == "a-data\n"
    assert (volume_dir(sim, claims["b1"]) / "who").read_text() == "b\n"
    assert (volume_dir(sim, claims["b2"]) / "who").read_text() == "b-data\n"
    assert os.path.exists("/workspace/who") == host_workspace_before  # the host's is untouched


@pytest.mark.asyncio
async def test_a_claims_files_outlive_its_pod_and_reach_the_next_one(
    sim: KubeSim, core: CoreV1Api
) -> None:
    claim = await bound_claim(core, "keep")
    mounts = {"/workspace": "keep"}
    await core.create_namespaced_pod(NS, shell_pod("w", "echo kept > /workspace/f", claims=mounts))
    await finished(core, "w")
    await core.delete_namespaced_pod("w", NS, grace_period_seconds=0)
    await eventually(lambda: gone(core, "w"), what="pod w gone")
    assert (volume_dir(sim, claim) / "f").read_text() == "kept\n"  # deleting a pod never removes it
    await core.create_namespaced_pod(NS, shell_pod("w", "cat /workspace/f", claims=mounts))
    assert (await finished(core, "w")).status.phase == "Succeeded"
    assert await log_of(core, "w") == "kept\n"


@pytest.mark.asyncio
async def test_deleting_a_claim_whose_volume_is_reclaimed_removes_its_directory(
    sim: KubeSim, core: CoreV1Api
) -> None:
    claim = await bound_claim(core, "tmp")
    await core.create_namespaced_pod(
        NS, shell_pod("t", "echo x > /workspace/f", claims={"/workspace": "tmp"})
    )
    await finished(core, "t")
    directory = volume_dir(sim, claim)
    assert (directory / "f").exists()
    await core.delete_namespaced_pod("t", NS, grace_period_seconds=0)
    await core.delete_namespaced_persistent_volume_claim("tmp", NS)

    async def volume_gone() -> bool:
        names = [v.metadata.name for v in (await core.list_persistent_volume()).items]
        return claim.spec.volume_name not in names

    await eventually(volume_gone, what="the volume reclaimed")
    assert not directory.exists()


@pytest.mark.asyncio
async def test_empty_dir_volumes_are_per_pod_and_removed_with_the_pod(
    sim: KubeSim, core: CoreV1Api
) -> None:
    for me in ("x", "y"):
        manifest = shell_pod(me, f"echo {me} > /scratch/who; sleep 0.3; cat /scratch/who")
        manifest["spec"]["volumes"] = [{"name": "s", "emptyDir": {}}]
        manifest["spec"]["containers"][0]["volumeMounts"] = [{"name": "s", "mountPath": "/scratch"}]
        await core.create_namespaced_pod(NS, manifest)
    for me in ("x", "y"):
        await finished(core, me)
        assert await log_of(core, me) == f"{me}\n"
    pod = await core.read_namespaced_pod("x", NS)
    assert sim.kubelet.host is not None
    scratch: Path = sim.kubelet.host.volumes.pod_dir(pod.metadata.uid) / "volumes" / "s"
    assert (scratch / "who").read_text() == "x\n"
    assert scratch.stat().st_mode & 0o777 == 0o777
    await core.delete_namespaced_pod("x", NS, grace_period_seconds=0)
    await eventually(lambda: gone(core, "x"), what="pod x gone")

    async def removed() -> bool:
        return not scratch.exists()

    await eventually(removed, what="the emptyDir removed")
