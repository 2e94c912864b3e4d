"""deploy/ applied with kubectl, then ``raworc-spawner doctor`` with the ServiceAccount's token."""

from __future__ import annotations

from pathlib import Path

import pytest

from .conftest import DEPLOY, NS, SA, Cluster

INSTANCE = "raworc-doctor-test"

pytestmark = pytest.mark.slow

REDUCED_ROLE = f"""
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata:
  name: raworc-reduced
  namespace: {NS}
rules:
- apiGroups: [""]
  resources: ["pods", "persistentvolumeclaims"]
  verbs: ["create", "get", "list", "delete", "patch"]
- apiGroups: ["coordination.k8s.io"]
  resources: ["leases"]
  verbs: ["get", "create", "update"]
- apiGroups: [""]
  resources: ["pods/log"]
  verbs: ["get"]
- apiGroups: [""]
  resources: ["events"]
  verbs: ["list"]
---
apiVersion: v1
kind: ServiceAccount
metadata:
  name: raworc-reduced
  namespace: {NS}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: raworc-reduced
  namespace: {NS}
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: Role, name: raworc-reduced}}
subjects:
- {{kind: ServiceAccount, name: raworc-reduced, namespace: {NS}}}
"""


def test_the_deploy_manifests_apply_with_kubectl_including_the_server_deployment(
    cluster: Cluster,
) -> None:
    out = cluster.apply_deploy("namespace.yaml", "rbac.yaml", "networkpolicy.yaml", "server.yaml")
    assert out.splitlines() == [
        "namespace/raworc-sessions created",
        "serviceaccount/raworc-controller created",
        "role.rbac.authorization.k8s.io/raworc-controller created",
        "rolebinding.rbac.authorization.k8s.io/raworc-controller created",
        "clusterrole.rbac.authorization.k8s.io/raworc-doctor created",
        "clusterrolebinding.rbac.authorization.k8s.io/raworc-doctor created",
        "networkpolicy.networking.k8s.io/session-pods-isolation created",
        "deployment.apps/raworc-server created",
        "poddisruptionbudget.policy/raworc-server created",
        "service/raworc-server created",
    ]
    again = cluster.apply_deploy("rbac.yaml", "server.yaml").splitlines()
    # A PodDisruptionBudget's selector is patched with strategy "replace", so kubectl's patch
    # for it is never empty and it reports "configured" on every apply, as against a real
    # API server; everything else is unchanged.
    budget = "poddisruptionbudget.policy/raworc-server configured"
    assert budget in again
    assert [line for line in again if line != budget] == [
        line for line in again if line.endswith(" unchanged")
    ]
    assert len(again) == 8
    account = cluster.kubectl(
        "get",
        "deployment",
        "raworc-server",
        "-n",
        NS,
        "-o",
        "jsonpath={.spec.template.spec.serviceAccountName}",
    ).stdout
    assert account == SA


def test_doctor_passes_every_check_with_the_service_accounts_token(
    deployed: Cluster, tmp_path: Path
) -> None:
    token = deployed.create_token()
    done = deployed.spawner(
        "doctor", token=token, cwd=tmp_path, env={"RAWORC_INSTANCE_NAME": INSTANCE}
    )
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert f"✓ namespace {NS} exists" in lines
    assert f"✓ RBAC: all 15 permissions granted in {NS}" in lines
    owners = [line for line in lines if line.startswith(f"- session pods and claims in {NS}: ")]
    assert owners == [f"- session pods and claims in {NS}: 0 of this instance ({INSTANCE})"]
    assert "✓ default storage class standard will provision workspaces" in lines
    assert not [line for line in lines if line.startswith("✗")]
    assert deployed.kubectl("auth", "can-i", "watch", "pods", "-n", NS, token=token).stdout == (
        "yes\n"
    )


def test_doctor_names_the_missing_verbs_and_the_fix_when_the_role_lacks_watch(
    deployed: Cluster, tmp_path: Path
) -> None:
    deployed.kubectl("apply", "-f", "-", stdin=REDUCED_ROLE)
    token = deployed.create_token("raworc-reduced")
    done = deployed.spawner("doctor", token=token, cwd=tmp_path)
    assert done.returncode == 1
    assert (
        f"✗ RBAC: not allowed to watch pods, watch persistentvolumeclaims, watch events in {NS}\n"
        "    fix: kubectl apply -f deploy/rbac.yaml (or grant these verbs to the ServiceAccount)"
    ) in done.stdout


def test_doctor_reports_a_missing_storage_class_with_the_fix(
    deployed: Cluster, tmp_path: Path
) -> None:
    token = deployed.create_token()
    env = {"KUBERNETES_STORAGE_CLASS": "fast-ssd"}
    done = deployed.spawner("doctor", token=token, cwd=tmp_path, env=env)
    assert done.returncode == 1
    have = "immediate, no-cloning, standard, wait-for-consumer"
    assert f"✗ storage class fast-ssd does not exist (have: {have})" in done.stdout
    assert "fix: kubectl get storageclass; set KUBERNETES_STORAGE_CLASS to one of them" in (
        done.stdout
    )


def test_doctor_reports_a_missing_namespace_with_the_fix(cluster: Cluster, tmp_path: Path) -> None:
    done = cluster.spawner("doctor", token=cluster.sim.token, cwd=tmp_path)
    assert done.returncode == 1
    assert f"✗ namespace {NS} is missing\n    fix: kubectl create namespace {NS}" in done.stdout
    cluster.kubectl("apply", "-f", str(DEPLOY / "namespace.yaml"))
    assert cluster.spawner("doctor", token=cluster.sim.token, cwd=tmp_path).returncode == 0
