"""The real kubectl (v1.32, /usr/bin/kubectl) against a standalone kubesim process."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from kubesim import KubeSimProcess

KUBECTL = shutil.which("kubectl") or "/usr/bin/kubectl"
NS = "raworc-sessions"
Kubectl = Callable[..., subprocess.CompletedProcess[str]]

POD = """
apiVersion: v1
kind: Pod
metadata:
  name: {name}
  namespace: raworc-sessions
  labels: {{app: raworc, component: session, session-id: "{name}"}}
spec:
  containers:
  - name: session
    image: python:3.11-slim
    command: ["sleep", "infinity"]
    resources:
      requests: {{cpu: 100m, memory: 128Mi}}
    volumeMounts: [{{name: workspace, mountPath: /workspace}}]
  volumes:
  - name: workspace
    persistentVolumeClaim: {{claimName: session-pvc-{name}}}
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  name: session-pvc-{name}
  namespace: raworc-sessions
  labels: {{app: raworc}}
spec:
  accessModes: [ReadWriteOnce]
  resources: {{requests: {{storage: 1Gi}}}}
"""


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeSimProcess]:
    if not os.access(KUBECTL, os.X_OK):
        pytest.skip(f"kubectl not found at {KUBECTL}")
    with KubeSimProcess(tls=True, args=["--namespace", NS]) as sim:
        yield sim


@pytest.fixture
def kubectl(cluster: KubeSimProcess, tmp_path: Path) -> Kubectl:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin"),
        "HOME": str(tmp_path),
        "KUBECONFIG": cluster.kubeconfig,
    }

    def run(
        *args: str, stdin: str | None = None, ok: bool = True
    ) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [KUBECTL, *args], input=stdin, capture_output=True, text=True, env=env, timeout=60
        )
        if ok:
            assert done.returncode == 0, done.stderr
        return done

    return run


def apply_session(kubectl: Kubectl, tmp_path: Path, name: str) -> None:
    manifest = tmp_path / f"{name}.yaml"
    manifest.write_text(POD.format(name=name))
    out = kubectl("apply", "-f", str(manifest)).stdout
    assert out.splitlines() == [
        f"pod/{name} created",
        f"persistentvolumeclaim/session-pvc-{name} created",
    ]


def wait_running(kubectl: Kubectl, name: str) -> None:
    done = kubectl("wait", "--for=condition=Ready", f"pod/{name}", "-n", NS, "--timeout=20s")
    assert f"pod/{name} condition met" in done.stdout


def test_apply_creates_and_reapply_is_unchanged(kubectl: Kubectl, tmp_path: Path) -> None:
    apply_session(kubectl, tmp_path, "s1")
    again = kubectl("apply", "-f", str(tmp_path / "s1.yaml")).stdout
    assert again.splitlines() == [
        "pod/s1 unchanged",
        "persistentvolumeclaim/session-pvc-s1 unchanged",
    ]


def test_reapplying_a_changed_manifest_patches_it(kubectl: Kubectl, tmp_path: Path) -> None:
    apply_session(kubectl, tmp_path, "s7")
    changed = tmp_path / "s7-changed.yaml"
    changed.write_text(
        POD.format(name="s7").replace("component: session,", "component: session, tier: gold,")
    )
    out = kubectl("apply", "-f", str(changed)).stdout
    assert out.splitlines()[0] == "pod/s7 configured"
    labels = kubectl("get", "pod", "s7", "-n", NS, "-o", "jsonpath={.metadata.labels.tier}").stdout
    assert labels == "gold"


def test_get_watch_prints_rows_as_the_pod_changes(
    cluster: KubeSimProcess, kubectl: Kubectl, tmp_path: Path
) -> None:
    apply_session(kubectl, tmp_path, "s8")
    wait_running(kubectl, "s8")
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin"),
        "HOME": str(tmp_path),
        "KUBECONFIG": cluster.kubeconfig,
    }
    watcher = subprocess.Popen(
        [KUBECTL, "get", "pod", "s8", "-n", NS, "-w"], stdout=subprocess.PIPE, text=True, env=env
    )
    try:
        assert watcher.stdout is not None
        assert watcher.stdout.readline().split() == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
        assert watcher.stdout.readline().split()[:3] == ["s8", "1/1", "Running"]
        kubectl("delete", "pod", "s8", "-n", NS, "--wait=false")
        assert watcher.stdout.readline().split()[:3] == ["s8", "1/1", "Terminating"]
    finally:
        watcher.terminate()
        watcher.wait(timeout=10)
        if watcher.stdout:
            watcher.stdout.close()


def test_get_pods_by_label_and_get_pvc_print_tables(kubectl: Kubectl, tmp_path: Path) -> None:
    apply_session(kubectl, tmp_path, "s2")
    wait_running(kubectl, "s2")
    pods = kubectl("get", "pods", "-n", NS, "-l", "app=raworc,session-id=s2").stdout.splitlines()
    assert pods[0].split() == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    assert pods[1].split()[:4] == ["s2", "1/1", "Running", "0"]
    pvcs = kubectl("get", "pvc", "-n", NS, "session-pvc-s2").stdout.splitlines()
    assert pvcs[0].split()[:6] == ["NAME", "STATUS", "VOLUME", "CAPACITY", "ACCESS", "MODES"]
    row = pvcs[1].split()
    assert (
        row[:2] == ["session-pvc-s2", "Bound"]
        and row[2].startswith("pvc-")
        and row[3:6] == ["1Gi", "RWO", "standard"]
    )


def test_a_claim_whose_deletion_waits_on_its_pod_prints_terminating(
    kubectl: Kubectl, tmp_path: Path
) -> None:
    apply_session(kubectl, tmp_path, "s9")
    wait_running(kubectl, "s9")
    kubectl("delete", "pvc", "-n", NS, "session-pvc-s9", "--wait=false")
    row = kubectl("get", "pvc", "-n", NS, "session-pvc-s9").stdout.splitlines()[1].split()
    assert row[:2] == ["session-pvc-s9", "Terminating"]  # held by kubernetes.io/pvc-protection
    kubectl("delete", "pod", "-n", NS, "s9", "--wait=false")


def test_describe_pod_shows_the_events(kubectl: Kubectl, tmp_path: Path) -> None:
    apply_session(kubectl, tmp_path, "s3")
    wait_running(kubectl, "s3")
    out = kubectl("describe", "pod", "s3", "-n", NS).stdout
    assert "Status:           Running" in out and "IP:               127.10." in out
    events = out.split("Events:")[1]
    for reason in ("Scheduled", "Pulled", "Created", "Started"):
        assert reason in events
    assert f"Successfully assigned {NS}/s3 to kubesim-node-1" in events


def test_logs_print_the_container_output(kubectl: Kubectl, tmp_path: Path) -> None:
    apply_session(kubectl, tmp_path, "s4")
    wait_running(kubectl, "s4")
    assert (
        kubectl("logs", "s4", "-n", NS).stdout
        == "kubesim: container session started (image python:3.11-slim)\n"
    )


def test_auth_can_i_answers_yes_for_the_admin(kubectl: Kubectl) -> None:
    assert kubectl("auth", "can-i", "create", "pods", "-n", NS).stdout.strip() == "yes"


def test_top_pod_and_top_node_report_usage(kubectl: Kubectl, tmp_path: Path) -> None:
    apply_session(kubectl, tmp_path, "s5")
    wait_running(kubectl, "s5")
    top = kubectl("top", "pod", "s5", "-n", NS).stdout.splitlines()
    assert top[0].split() == ["NAME", "CPU(cores)", "MEMORY(bytes)"]
    name, cpu, memory = top[1].split()
    assert name == "s5" and cpu.endswith("m") and memory.endswith("Mi")
    nodes = kubectl("top", "node").stdout.splitlines()
    assert nodes[1].split()[0] == "kubesim-node-1"


def test_delete_waits_until_the_pod_is_gone(kubectl: Kubectl, tmp_path: Path) -> None:
    apply_session(kubectl, tmp_path, "s6")
    wait_running(kubectl, "s6")
    started = time.monotonic()
    out = kubectl("delete", "-f", str(tmp_path / "s6.yaml")).stdout
    assert out.splitlines() == [
        'pod "s6" deleted',
        'persistentvolumeclaim "session-pvc-s6" deleted',
    ]
    assert time.monotonic() - started < 20
    missing = kubectl("get", "pod", "s6", "-n", NS, ok=False)
    assert missing.returncode == 1 and 'pods "s6" not found' in missing.stderr


def test_invalid_manifest_is_rejected_with_the_server_message(kubectl: Kubectl) -> None:
    bad = POD.format(name="Bad_Name").split("---")[0]
    done = kubectl("apply", "-f", "-", stdin=bad, ok=False)
    assert done.returncode == 1
    assert 'The Pod "Bad_Name" is invalid: metadata.name: Invalid value: "Bad_Name"' in done.stderr
