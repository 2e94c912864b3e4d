"""Process mode as root: processes run as the pod's runAsUser/runAsGroup, claims are theirs."""

from __future__ import annotations

import pytest
from kubernetes_asyncio.client import CoreV1Api

from kubesim import KubeSim, KubeSimConfig

from .conftest import NS
from .kubelet_support import (
    bound_claim,
    container_status,
    finished,
    log_of,
    needs_bwrap,
    needs_root,
    process_config,
    shell_pod,
    volume_dir,
)

pytestmark = needs_root

MODES = [pytest.param("bwrap", marks=needs_bwrap), "none"]


@pytest.fixture(params=MODES)
def kubesim_config(request: pytest.FixtureRequest) -> KubeSimConfig:
    return process_config(sandbox=request.param)


@pytest.mark.asyncio
async def test_run_as_user_1000_runs_the_process_as_uid_1000_owning_its_claim(
    sim: KubeSim, core: CoreV1Api
) -> None:
    claim = await bound_claim(core, "home")
    script = "id -u; id -g; id -G; touch /workspace/mine && stat -c '%u %g' /workspace/mine"
    manifest = shell_pod("u", script, claims={"/workspace": "home"})
    manifest["spec"]["securityContext"] = {"runAsUser": 1000, "runAsGroup": 1000, "fsGroup": 2000}
    await core.create_namespaced_pod(NS, manifest)
    assert (await finished(core, "u")).status.phase == "Succeeded"
    # The file's group is the fsGroup: the claim directory is setgid to it, as fsGroup does.
    assert (await log_of(core, "u")).splitlines() == ["1000", "1000", "1000 2000", "1000 2000"]
    stat = volume_dir(sim, claim).stat()
    assert (stat.st_uid, stat.st_gid, stat.st_mode & 0o2070) == (1000, 2000, 0o2070)


@pytest.mark.asyncio
async def test_the_container_security_context_wins_over_the_pods(core: CoreV1Api) -> None:
    manifest = shell_pod("c", "id -u; id -g", securityContext={"runAsUser": 1001})
    manifest["spec"]["securityContext"] = {"runAsUser": 1000, "runAsGroup": 3000}
    await core.create_namespaced_pod(NS, manifest)
    await finished(core, "c")
    assert (await log_of(core, "c")).splitlines() == ["1001", "3000"]


@pytest.mark.asyncio
async def test_run_as_non_root_without_a_user_refuses_to_start_as_root(core: CoreV1Api) -> None:
    manifest = shell_pod("r", "id -u")
    manifest["spec"]["securityContext"] = {"runAsNonRoot": True}
    created = await core.create_namespaced_pod(NS, manifest)
    status = await container_status(
        core,
        "r",
        lambda s: s.state.waiting and s.state.waiting.reason == "CreateContainerConfigError",
        what="CreateContainerConfigError",
    )
    assert status.state.waiting.message == (
        "container has runAsNonRoot and image will run as root "
        f'(pod: "r_{NS}({created.metadata.uid})", container: main)'
    )
