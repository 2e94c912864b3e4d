"""Helpers for the process-mode kubelet tests: shell pods, claims, waits and host processes."""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
from kubernetes_asyncio.client import CoreV1Api

from kubesim import KubeSim, KubeSimConfig

from .conftest import NS, eventually, pvc_manifest

Manifest = Any
"""A manifest as the tests send it: kubernetes_asyncio takes plain dicts, its stubs say models."""
KUBECTL = shutil.which("kubectl") or "/usr/bin/kubectl"
HAVE_BWRAP = shutil.which("bwrap") is not None
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="runAsUser is honoured only as root")
needs_bwrap = pytest.mark.skipif(not HAVE_BWRAP, reason="bubblewrap (bwrap) is not installed")


def process_config(**overrides: Any) -> KubeSimConfig:
    """A kubesim whose kubelet runs container commands as processes, with fast timings."""
    config = KubeSimConfig(
        namespaces=["default", "kube-system", NS], run_processes=True, seed=7, **overrides
    )
    config.timings.crash_backoff = 0.2
    config.timings.crash_backoff_max = 0.8
    return config


def shell_pod(
    name: str,
    script: str,
    *,
    restart: str = "Never",
    claims: dict[str, str] | None = None,
    env: list[dict[str, Any]] | None = None,
    **container: Any,
) -> Manifest:
    """A pod whose one container runs ``sh -c script``; ``claims`` maps mount path → claim."""
    mounts = [{"name": f"v{i}", "mountPath": path} for i, path in enumerate(claims or {})]
    volumes = [
        {"name": f"v{i}", "persistentVolumeClaim": {"claimName": claim}}
        for i, claim in enumerate((claims or {}).values())
    ]
    spec_container: dict[str, Any] = {
        "name": "main",
        "image": "busybox:1.36",
        "command": ["sh", "-c", script],
        "env": env or [],
        "volumeMounts": mounts,
        **container,
    }
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {
            "restartPolicy": restart,
            "terminationGracePeriodSeconds": 5,
            "containers": [spec_container],
            "volumes": volumes,
        },
    }


async def bound_claim(core: CoreV1Api, name: str) -> Any:
    """Create a claim of an ``Immediate`` class and wait until it is Bound; returns it."""
    manifest: Manifest = pvc_manifest(name, storage_class="immediate")
    await core.create_namespaced_persistent_volume_claim(NS, manifest)

    async def bound() -> Any:
        claim = await core.read_namespaced_persistent_volume_claim(name, NS)
        return claim if claim.status.phase == "Bound" else None

    return await eventually(bound, what=f"claim {name} Bound")


async def finished(core: CoreV1Api, name: str, *, timeout: float = 10.0) -> Any:
    """Wait until the pod is Succeeded or Failed; returns it."""

    async def done() -> Any:
        pod = await core.read_namespaced_pod(name, NS)
        return pod if pod.status.phase in ("Succeeded", "Failed") else None

    return await eventually(done, timeout=timeout, what=f"pod {name} finished")


async def container_status(core: CoreV1Api, name: str, probe: Any, *, what: str) -> Any:
    """Wait until ``probe(status)`` holds for the pod's first container status; returns it."""

    async def check() -> Any:
        pod = await core.read_namespaced_pod(name, NS)
        statuses = pod.status.container_statuses or []
        return statuses[0] if statuses and probe(statuses[0]) else None

    return await eventually(check, timeout=10.0, what=what)


async def log_of(core: CoreV1Api, name: str) -> str:
    return str(await core.read_namespaced_pod_log(name, NS))


async def gone(core: CoreV1Api, name: str) -> bool:
    return name not in [p.metadata.name for p in (await core.list_namespaced_pod(NS)).items]


def pids_running(argument: str) -> list[int]:
    """Host processes with ``argument`` as one of their arguments (zombies excluded)."""
    found: list[int] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if argument.encode() in argv[1:] and state != "Z":
            found.append(int(entry.name))
    return found


def volume_dir(sim: KubeSim, claim: Any) -> Path:
    """The host directory behind a bound claim."""
    assert sim.kubelet.host is not None
    return sim.kubelet.host.volumes.volume_dir(claim.spec.volume_name)


async def kubectl(sim: KubeSim, *args: str) -> str:
    """Run the real kubectl against ``sim`` (TLS) without blocking its event loop."""
    proc = await asyncio.create_subprocess_exec(
        KUBECTL,
        *args,
        env={**os.environ, "KUBECONFIG": str(sim.kubeconfig_path)},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), timeout=30)
    assert proc.returncode == 0, out.decode()
    return out.decode()
