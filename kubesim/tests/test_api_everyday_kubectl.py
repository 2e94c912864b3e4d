"""Everyday kubectl commands of docs/kubesim.md's command table, against a standalone kubesim."""

from __future__ import annotations

from . import test_kubectl
from .test_kubectl import Kubectl

cluster = test_kubectl.cluster
kubectl = test_kubectl.kubectl


def test_cluster_info_names_the_control_plane(kubectl: Kubectl) -> None:
    out = kubectl("cluster-info").stdout
    assert out.startswith("Kubernetes control plane is running at https://127.0.0.1:")


def test_get_storageclass_marks_the_default_class(kubectl: Kubectl) -> None:
    rows = kubectl("get", "storageclass").stdout.splitlines()
    assert rows[0].split()[:4] == ["NAME", "PROVISIONER", "RECLAIMPOLICY", "VOLUMEBINDINGMODE"]
    assert ["standard", "(default)"] in [row.split()[:2] for row in rows[1:]]


def test_get_all_lists_workloads_of_the_all_category(kubectl: Kubectl) -> None:
    ns = "everyday-all"
    kubectl("create", "namespace", ns)
    kubectl("create", "deployment", "web", "--image=nginx", "-n", ns)
    kubectl("create", "job", "once", "--image=busybox", "-n", ns, "--", "true")
    kubectl("create", "cronjob", "tick", "--image=busybox", "--schedule=@hourly", "-n", ns)
    out = kubectl("get", "all", "-n", ns, "-o", "name").stdout.split()
    assert sorted(out) == ["cronjob.batch/tick", "deployment.apps/web", "job.batch/once"]


def test_get_deployments_jobs_and_cronjobs_print_the_api_servers_columns(
    kubectl: Kubectl,
) -> None:
    ns = "everyday-tables"
    kubectl("create", "namespace", ns)
    kubectl("create", "deployment", "web", "--image=nginx", "--replicas=3", "-n", ns)
    kubectl("create", "job", "once", "--image=busybox", "-n", ns, "--", "true")
    kubectl("create", "cronjob", "tick", "--image=busybox", "--schedule=*/5 * * * *", "-n", ns)
    deploy = kubectl("get", "deployment", "-n", ns).stdout.splitlines()
    assert deploy[0].split() == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]
    assert deploy[1].split()[:4] == ["web", "0/3", "0", "0"]
    jobs = kubectl("get", "jobs", "-n", ns).stdout.splitlines()
    assert jobs[0].split() == ["NAME", "STATUS", "COMPLETIONS", "DURATION", "AGE"]
    assert jobs[1].split()[:3] == ["once", "Running", "0/1"]
    cron = kubectl("get", "cronjobs", "-n", ns).stdout.splitlines()
    assert cron[0].split() == [
        "NAME",
        "SCHEDULE",
        "TIMEZONE",
        "SUSPEND",
        "ACTIVE",
        "LAST",
        "SCHEDULE",
        "AGE",
    ]
    assert cron[1].split()[:8] == ["tick", "*/5", "*", "*", "*", "*", "<none>", "False"]


def test_delete_namespace_removes_it_with_its_contents(kubectl: Kubectl) -> None:
    ns = "everyday-gone"
    kubectl("create", "namespace", ns)
    kubectl("create", "configmap", "c", "--from-literal=a=1", "-n", ns)
    assert kubectl("delete", "namespace", ns).stdout.strip() == f'namespace "{ns}" deleted'
    missing = kubectl("get", "namespace", ns, ok=False)
    assert missing.returncode == 1
    assert f'namespaces "{ns}" not found' in missing.stderr
