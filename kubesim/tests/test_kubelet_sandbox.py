"""plan_process: how a container's process is launched, with bubblewrap and without."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from kubesim.control.podenv import ContainerConfigError
from kubesim.control.sandbox import (
    SYSTEM_PATHS,
    SandboxHost,
    SandboxMode,
    plan_process,
    rewrite_paths,
)
from kubesim.control.volumes import Mount, VolumeDirs
from kubesim.store import Store

from .kubelet_support import needs_bwrap

NS = "ns"


def pod(**container: Any) -> dict[str, Any]:
    spec_container = {
        "name": "main",
        "image": "busybox",
        "command": ["sh", "-c", "cat /workspace/f"],
        "workingDir": "/workspace",
        "env": [{"name": "DATA", "value": "/workspace/data"}],
        "volumeMounts": [{"name": "w", "mountPath": "/workspace"}],
        **container,
    }
    return {
        "metadata": {"name": "p", "namespace": NS, "uid": "uid-1"},
        "spec": {
            "containers": [spec_container],
            "volumes": [{"name": "w", "persistentVolumeClaim": {"claimName": "c"}}],
        },
        "status": {"podIP": "127.10.0.7"},
    }


@pytest.fixture
def store() -> Store:
    store = Store(history_size=10)
    claim = {
        "metadata": {"name": "c", "namespace": NS, "uid": "cu"},
        "spec": {"volumeName": "pvc-cu"},
        "status": {"phase": "Bound"},
    }
    store.put("persistentvolumeclaims", claim, added=True)
    return store


def host_for(store: Store, tmp_path: Path, mode: SandboxMode) -> SandboxHost:
    return SandboxHost.detect(store, VolumeDirs(tmp_path, store), mode=mode)


def pairs(argv: tuple[str, ...], flag: str) -> list[tuple[str, str]]:
    return [(argv[i + 1], argv[i + 2]) for i, a in enumerate(argv) if a == flag]


@needs_bwrap
def test_with_bubblewrap_the_root_is_built_from_binds_and_the_claim_is_at_its_mount_path(
    store: Store, tmp_path: Path
) -> None:
    plan = plan_process(pod(), "main", host=host_for(store, tmp_path, SandboxMode.BWRAP))
    assert plan.sandboxed and plan.argv[0].endswith("bwrap") and plan.cwd == "/"
    assert ("/", "/") not in pairs(plan.argv, "--ro-bind")
    assert pairs(plan.argv, "--bind") == [(str(tmp_path / "volumes" / "pvc-cu"), "/workspace")]
    read_only = [target for _, target in pairs(plan.argv, "--ro-bind")]
    assert "/usr" in read_only and "/etc" in read_only
    assert sys.prefix in read_only and sys.base_prefix in read_only  # the venv, its Python
    assert plan.argv[plan.argv.index("--chdir") + 1] == "/workspace"
    assert "--remount-ro" not in plan.argv  # no readOnlyRootFilesystem
    assert plan.argv[-3:] == ("sh", "-c", "cat /workspace/f")
    assert plan.env["DATA"] == "/workspace/data" and plan.env["KUBESIM_POD_IP"] == "127.10.0.7"
    assert plan.env["HOSTNAME"] == "p"
    assert (tmp_path / "volumes" / "pvc-cu").is_dir()


@needs_bwrap
def test_a_sandboxed_process_sees_its_claim_and_not_the_hosts_files(
    store: Store, tmp_path: Path
) -> None:
    (tmp_path / "volumes" / "pvc-cu").mkdir(parents=True)
    (tmp_path / "volumes" / "pvc-cu" / "f").write_text("mine\n")
    secret = tmp_path / "host-only.txt"
    secret.write_text("host\n")
    script = f"cat /workspace/f; pwd; cat {secret} 2>/dev/null || echo hidden; touch /x || echo ro"
    manifest = pod(command=["sh", "-c", script], securityContext={"readOnlyRootFilesystem": True})
    plan = plan_process(manifest, "main", host=host_for(store, tmp_path, SandboxMode.BWRAP))
    done = subprocess.run(
        plan.argv, env=dict(plan.env), cwd=plan.cwd, capture_output=True, text=True, timeout=20
    )
    assert done.stdout.splitlines() == ["mine", "/workspace", "hidden", "ro"]


def test_without_bubblewrap_mount_paths_are_rewritten_to_the_claims_directory(
    store: Store, tmp_path: Path
) -> None:
    plan = plan_process(pod(), "main", host=host_for(store, tmp_path, SandboxMode.NONE))
    claim = str(tmp_path / "volumes" / "pvc-cu")
    assert not plan.sandboxed
    assert plan.cwd == claim
    assert plan.env["DATA"] == f"{claim}/data"
    assert plan.command == ("sh", "-c", f"cat {claim}/f")


def test_an_exec_argv_is_used_as_given_in_the_pods_environment(
    store: Store, tmp_path: Path
) -> None:
    plan = plan_process(
        pod(), "main", ["echo", "$(DATA)"], host=host_for(store, tmp_path, SandboxMode.NONE)
    )
    assert plan.command == ("echo", "$(DATA)")
    assert plan.env["DATA"].endswith("/volumes/pvc-cu/data")


def test_an_unbound_claim_cannot_be_mounted(store: Store, tmp_path: Path) -> None:
    manifest = pod()
    manifest["spec"]["volumes"][0]["persistentVolumeClaim"]["claimName"] = "nope"
    with pytest.raises(ContainerConfigError, match='persistentvolumeclaim "nope" not found'):
        plan_process(manifest, "main", host=host_for(store, tmp_path, SandboxMode.NONE))


def test_rewriting_matches_whole_paths_only() -> None:
    mounts = [
        Mount("w", Path("/v/w"), "/workspace"),
        Mount("t", Path("/v/t"), "/tmp"),
    ]
    assert rewrite_paths("/workspace", mounts) == "/v/w"
    assert rewrite_paths("cd /workspace/a && ls /tmp", mounts) == "cd /v/w/a && ls /v/t"
    assert rewrite_paths("--dir=/workspace:/tmp/x", mounts) == "--dir=/v/w:/v/t/x"
    assert rewrite_paths("/workspaces /x/workspace /tmpfs", mounts) == (
        "/workspaces /x/workspace /tmpfs"
    )


def test_the_system_paths_include_the_usual_image_directories() -> None:
    assert {"/usr", "/etc", "/bin", "/lib", "/opt"} <= set(SYSTEM_PATHS)


@needs_bwrap
def test_a_script_the_command_names_under_an_empty_dir_mount_is_still_visible(
    store: Store, tmp_path: Path
) -> None:
    script = tmp_path / "scripts" / "hello.sh"  # under /tmp, where the pod mounts an emptyDir
    script.parent.mkdir()
    script.write_text("echo hello from the script\n")
    manifest = pod(command=["sh", str(script)], workingDir="/tmp")
    manifest["spec"]["volumes"] = [{"name": "tmp", "emptyDir": {}}]
    manifest["spec"]["containers"][0]["volumeMounts"] = [{"name": "tmp", "mountPath": "/tmp"}]
    manifest["spec"]["securityContext"] = {"runAsUser": 1000}  # honoured as root: must pass
    host = host_for(store, tmp_path / "state", SandboxMode.BWRAP)
    plan = plan_process(manifest, "main", host=host)
    done = subprocess.run(
        plan.argv, env=dict(plan.env), cwd=plan.cwd, capture_output=True, text=True, timeout=20
    )
    assert (done.returncode, done.stdout) == (0, "hello from the script\n"), done.stderr
