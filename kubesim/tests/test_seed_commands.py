"""Every kubectl command of the product description, verbatim, against kubesim as a user runs it.

kubesim runs standalone (``python -m kubesim --run-processes --kubeconfig FILE``) without the
sessions namespace, so ``kubectl create namespace raworc-sessions`` is the first command, as in
the description's "Namespace Setup". A session is created as the spawner creates one: the
claim ``session-pvc-<id>``, then the pod ``session-<id>`` mounting it at ``/workspace``,
labelled ``app=raworc, component=session, session-id=<id>``. Then each command of "Monitoring
Session Resources", "Logging", "Resource Usage", "Troubleshooting" and "Debug Commands" runs
exactly as written there, with the session id filled in.
"""

from __future__ import annotations

import os
import select
import shlex
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from kubesim import KubeSimProcess

KUBECTL = shutil.which("kubectl") or "/usr/bin/kubectl"
SESSION_ID = "66709101-b7dd-460f-95a3-799177797a5c"
POD = f"session-{SESSION_ID}"
PVC = f"session-pvc-{SESSION_ID}"

SESSION = f"""
apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  name: {PVC}
  namespace: raworc-sessions
  labels: {{app: raworc, component: session, session-id: "{SESSION_ID}"}}
spec:
  accessModes: [ReadWriteOnce]
  resources: {{requests: {{storage: 1Gi}}}}
---
apiVersion: v1
kind: Pod
metadata:
  name: {POD}
  namespace: raworc-sessions
  labels:
    app: raworc
    component: session
    session-id: "{SESSION_ID}"
    session-name: seed-check
spec:
  securityContext: {{runAsNonRoot: true, runAsUser: 1000, runAsGroup: 1000, fsGroup: 1000}}
  containers:
  - name: session
    image: python:3.11-slim
    imagePullPolicy: IfNotPresent
    command:
    - python3
    - -c
    - "import time; print('session ready', flush=True); [time.sleep(3600) for _ in iter(int, 1)]"
    workingDir: /workspace
    env:
    - {{name: SESSION_ID, value: "{SESSION_ID}"}}
    - {{name: SESSION_NAME, value: seed-check}}
    resources:
      requests: {{cpu: 100m, memory: 128Mi}}
      limits: {{cpu: 1000m, memory: 1Gi}}
    securityContext:
      readOnlyRootFilesystem: true
      allowPrivilegeEscalation: false
      capabilities: {{drop: [ALL]}}
    volumeMounts:
    - {{name: workspace, mountPath: /workspace}}
    - {{name: tmp, mountPath: /tmp}}
  volumes:
  - name: workspace
    persistentVolumeClaim: {{claimName: {PVC}}}
  - name: tmp
    emptyDir: {{}}
"""


class Kubectl:
    """Runs a command line exactly as the description writes it (``kubectl …``)."""

    def __init__(self, kubeconfig: str, home: Path) -> None:
        self.env = {
            "PATH": os.environ.get("PATH", "/usr/bin"),
            "HOME": str(home),
            "KUBECONFIG": kubeconfig,
        }

    def argv(self, line: str) -> list[str]:
        words = shlex.split(line.replace("<session-id>", SESSION_ID).replace("<id>", SESSION_ID))
        assert words[0] == "kubectl", line
        return [KUBECTL, *words[1:]]

    def __call__(self, line: str, *, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.argv(line), input=stdin, capture_output=True, text=True, env=self.env, timeout=60
        )


@pytest.fixture(scope="module")
def cluster() -> Iterator[KubeSimProcess]:
    if not os.access(KUBECTL, os.X_OK):
        pytest.skip(f"kubectl not found at {KUBECTL}")
    with KubeSimProcess(tls=True, args=["--run-processes"]) as sim:
        yield sim


@pytest.fixture(scope="module")
def kubectl(cluster: KubeSimProcess, tmp_path_factory: pytest.TempPathFactory) -> Kubectl:
    home = tmp_path_factory.mktemp("home")
    kubeconfig = home / "kubeconfig"  # a copy: one test sets its context's namespace
    shutil.copy(cluster.kubeconfig, kubeconfig)
    return Kubectl(str(kubeconfig), home)


@pytest.fixture(scope="module")
def namespace_created(kubectl: Kubectl) -> subprocess.CompletedProcess[str]:
    """``kubectl create namespace raworc-sessions``, run once (kubesim starts without it)."""
    return kubectl("kubectl create namespace raworc-sessions")


@pytest.fixture(scope="module")
def session(kubectl: Kubectl, namespace_created: subprocess.CompletedProcess[str]) -> str:
    """The session's claim and pod, created as the spawner creates them, and running."""
    assert namespace_created.returncode == 0, namespace_created.stderr
    applied = kubectl("kubectl apply -f -", stdin=SESSION)
    assert applied.returncode == 0, applied.stderr
    ready = kubectl(
        f"kubectl wait --for=condition=Ready pod/{POD} -n raworc-sessions --timeout=30s"
    )
    assert ready.returncode == 0, ready.stderr
    return POD


def rows(out: str) -> list[list[str]]:
    return [line.split() for line in out.splitlines()]


def ok(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 0, done.stderr
    return done.stdout


# -- Namespace Setup -----------------------------------------------------------------------------
def test_kubectl_create_namespace_creates_the_sessions_namespace(
    namespace_created: subprocess.CompletedProcess[str],
) -> None:
    assert ok(namespace_created) == "namespace/raworc-sessions created\n"


def test_kubectl_get_namespace_shows_it_active(
    kubectl: Kubectl, namespace_created: subprocess.CompletedProcess[str]
) -> None:
    table = rows(ok(kubectl("kubectl get namespace raworc-sessions")))
    assert table[0] == ["NAME", "STATUS", "AGE"]
    assert table[1][:2] == ["raworc-sessions", "Active"] and len(table) == 2


# -- Monitoring Session Resources ---------------------------------------------------------------
def test_kubectl_get_pod_shows_the_session_running(kubectl: Kubectl, session: str) -> None:
    table = rows(ok(kubectl("kubectl get pod session-<session-id> -n raworc-sessions")))
    assert table[0] == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    assert table[1][:4] == [POD, "1/1", "Running", "0"]


def test_kubectl_describe_pod_shows_the_session_its_workspace_and_no_warning(
    kubectl: Kubectl, session: str
) -> None:
    out = ok(kubectl("kubectl describe pod session-<session-id> -n raworc-sessions"))
    assert_describes_the_session(out)


def assert_describes_the_session(out: str) -> None:
    fields = {line.split(":", 1)[0]: line.split(":", 1)[1].strip() for line in out.splitlines()
              if line and not line.startswith(" ") and ":" in line}  # fmt: skip
    assert (fields["Name"], fields["Namespace"], fields["Status"]) == (
        POD,
        "raworc-sessions",
        "Running",
    )
    assert f"session-id={SESSION_ID}" in out
    assert "/workspace from workspace (rw)" in out
    assert f"ClaimName:  {PVC}" in out
    events = out.split("\nEvents:\n")[1]
    assert f"Successfully assigned raworc-sessions/{POD} to kubesim-node-1" in events
    assert "Started container session" in events
    assert "Warning" not in events and "FailedScheduling" not in events


def test_kubectl_exec_df_shows_the_workspace_filesystem(kubectl: Kubectl, session: str) -> None:
    out = ok(kubectl("kubectl exec session-<session-id> -n raworc-sessions -- df -h /workspace"))
    table = rows(out)
    assert table[0] == ["Filesystem", "Size", "Used", "Avail", "Use%", "Mounted", "on"]
    assert len(table) == 2 and table[1][-1] == "/workspace"
    assert table[1][4].endswith("%")


# -- Logging --------------------------------------------------------------------------------------
def test_kubectl_logs_prints_what_the_session_wrote(kubectl: Kubectl, session: str) -> None:
    assert ok(kubectl("kubectl logs session-<session-id> -n raworc-sessions")) == "session ready\n"


def test_kubectl_logs_follow_streams_the_sessions_output(kubectl: Kubectl, session: str) -> None:
    argv = kubectl.argv("kubectl logs -f session-<session-id> -n raworc-sessions")
    follower = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True, env=kubectl.env)
    try:
        assert follower.stdout is not None
        readable, _, _ = select.select([follower.stdout], [], [], 15)
        assert readable, "kubectl logs -f printed nothing in 15 s"
        assert follower.stdout.readline() == "session ready\n"
        assert follower.poll() is None, "kubectl logs -f ended instead of following"
    finally:
        follower.kill()
        follower.wait(timeout=10)
        if follower.stdout is not None:
            follower.stdout.close()


# -- Resource Usage and Troubleshooting --------------------------------------------------------
def test_kubectl_top_pod_reports_the_sessions_usage(kubectl: Kubectl, session: str) -> None:
    table = rows(ok(kubectl("kubectl top pod session-<session-id> -n raworc-sessions")))
    assert table[0] == ["NAME", "CPU(cores)", "MEMORY(bytes)"]
    name, cpu, memory = table[1]
    assert name == POD and cpu.endswith("m") and memory.endswith("Mi")


def test_kubectl_describe_pod_without_a_namespace_uses_the_contexts(
    kubectl: Kubectl, session: str
) -> None:
    """The troubleshooting line has no ``-n``: it relies on the context's namespace."""
    ok(kubectl("kubectl config set-context --current --namespace=raworc-sessions"))
    assert_describes_the_session(ok(kubectl("kubectl describe pod session-<id>")))


def test_kubectl_get_pvc_shows_the_workspace_bound(kubectl: Kubectl, session: str) -> None:
    table = rows(ok(kubectl("kubectl get pvc -n raworc-sessions")))
    assert table[0][:6] == ["NAME", "STATUS", "VOLUME", "CAPACITY", "ACCESS", "MODES"]
    (row,) = table[1:]
    assert row[:2] == [PVC, "Bound"] and row[2].startswith("pvc-")
    assert row[3:6] == ["1Gi", "RWO", "standard"]


def test_kubectl_top_nodes_reports_node_usage(kubectl: Kubectl) -> None:
    table = rows(ok(kubectl("kubectl top nodes")))
    assert table[0] == ["NAME", "CPU(cores)", "CPU(%)", "MEMORY(bytes)", "MEMORY(%)"]
    assert table[1][0] == "kubesim-node-1" and table[1][2].endswith("%")


def test_kubectl_get_storageclass_shows_a_default_that_waits_for_the_first_consumer(
    kubectl: Kubectl,
) -> None:
    table = rows(ok(kubectl("kubectl get storageclass")))
    assert table[0] == [
        "NAME",
        "PROVISIONER",
        "RECLAIMPOLICY",
        "VOLUMEBINDINGMODE",
        "ALLOWVOLUMEEXPANSION",
        "AGE",
    ]
    defaults = [row for row in table[1:] if row[1] == "(default)"]
    assert [row[:6] for row in defaults] == [
        ["standard", "(default)", "kubesim.io/hostpath", "Delete", "WaitForFirstConsumer", "true"]
    ]


# -- Permission Denied Errors and Debug Commands -------------------------------------------------
def test_kubectl_auth_can_i_create_pods_says_yes(
    kubectl: Kubectl, namespace_created: subprocess.CompletedProcess[str]
) -> None:
    assert ok(kubectl("kubectl auth can-i create pods -n raworc-sessions")) == "yes\n"


def test_kubectl_cluster_info_names_the_control_plane(
    kubectl: Kubectl, cluster: KubeSimProcess
) -> None:
    lines = ok(kubectl("kubectl cluster-info")).splitlines()
    assert lines[0] == f"Kubernetes control plane is running at {cluster.url}"
    assert lines[-1] == (
        "To further debug and diagnose cluster problems, use 'kubectl cluster-info dump'."
    )
