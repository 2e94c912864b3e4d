"""``raworc-spawner serve`` with KUBERNETES_ENABLED=true, running as the deploy/ ServiceAccount,
seen through its REST API and through kubectl."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.waiting import wait_for

from .conftest import (
    NS,
    Cluster,
    Server,
    forbidden_requests,
    labelled,
    running_cluster,
    start_server,
)

pytestmark = pytest.mark.slow


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Cluster, Server]]:
    with running_cluster(tmp_path / "cluster", "--timing", "log_interval=0.05") as cluster:
        cluster.apply_deploy()
        token = cluster.create_token()
        cluster.sim.reset_counters()
        yield cluster, start_server(cluster, token=token, data_dir=tmp_path / "data")


def state_of(api: httpx.Client, sid: str) -> str:
    return str(api.get(f"/api/v0/sessions/{sid}").json()["state"])


def wait_state(api: httpx.Client, sid: str, state: str) -> None:
    wait_for(lambda: state_of(api, sid) == state, timeout=20, what=f"session {sid} {state}")


def pod_json(cluster: Cluster, sid: str) -> dict[str, Any]:
    out = cluster.kubectl("get", "pod", f"session-{sid}", "-n", NS, "-o", "json").stdout
    return dict(json.loads(out))


def test_sessions_run_as_pods_with_workspaces_that_kubectl_sees_and_delete_removes(
    served: tuple[Cluster, Server],
) -> None:
    cluster, server = served
    with server.client() as api:
        created = [
            api.post("/api/v0/sessions", json={"name": f"ops {i}", "starting_prompt": "hi"})
            for i in range(2)
        ]
        assert [r.status_code for r in created] == [201, 201]
        ids = [r.json()["id"] for r in created]
        assert all(r.json()["persistent_volume_id"].startswith("pvc-") for r in created)
        for sid in ids:
            wait_state(api, sid, "ready")
        names = cluster.kubectl(
            "get", "pod,pvc", "-l", "app=raworc", "-n", NS, "-o", "name"
        ).stdout.split()
        assert sorted(names) == sorted(
            [f"pod/session-{sid}" for sid in ids]
            + [f"persistentvolumeclaim/session-pvc-{sid}" for sid in ids]
        )
        sid = ids[0]
        pod = pod_json(cluster, sid)
        assert pod["metadata"]["uid"] == created[0].json()["container_id"]
        container = pod["spec"]["containers"][0]
        mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
        assert mounts["/workspace"] == "workspace"
        assert container["workingDir"] == "/workspace"
        env = {e["name"]: e.get("value") for e in container["env"]}
        assert (env["SESSION_ID"], env["SESSION_NAME"], env["STARTING_PROMPT"]) == (
            sid,
            "ops 0",
            "hi",
        )
        assert container["resources"] == {
            "requests": {"cpu": "100m", "memory": "128Mi"},
            "limits": {"cpu": "1000m", "memory": "1Gi"},
        }
        assert container["securityContext"]["allowPrivilegeEscalation"] is False
        assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
        assert pod["spec"]["securityContext"]["runAsNonRoot"] is True
        assert pod["spec"]["volumes"][0]["persistentVolumeClaim"] == {
            "claimName": f"session-pvc-{sid}"
        }
        described = cluster.kubectl("describe", "pod", f"session-{sid}", "-n", NS).stdout
        assert "Events:" in described and "Started" in described
        wait_for(
            lambda: cluster.kubectl("logs", f"session-{sid}", "-n", NS).stdout,
            timeout=10,
            what="log lines",
        )
        assert api.delete(f"/api/v0/sessions/{sid}").status_code == 204
        assert api.get(f"/api/v0/sessions/{sid}").status_code == 404
        left = {o["metadata"]["name"] for o in labelled(cluster, "pod,pvc")}
        assert left == {f"session-{ids[1]}", f"session-pvc-{ids[1]}"}
    assert forbidden_requests(cluster) == []


def test_the_service_accounts_role_covers_a_whole_lifecycle_without_a_single_403(
    served: tuple[Cluster, Server],
) -> None:
    cluster, server = served
    with server.client() as api:
        sid = api.post("/api/v0/sessions", json={"name": "lifecycle"}).json()["id"]
        wait_state(api, sid, "ready")
        logs = api.get(f"/api/v0/sessions/{sid}/logs")
        assert logs.status_code == 200
        assert api.put(f"/api/v0/sessions/{sid}/state", json={"state": "idle"}).status_code == 200
        wait_state(api, sid, "idle")
        assert [o["metadata"]["name"] for o in labelled(cluster, "pod")] == []
        assert [o["metadata"]["name"] for o in labelled(cluster, "pvc")] == [f"session-pvc-{sid}"]
        assert api.put(f"/api/v0/sessions/{sid}/state", json={"state": "ready"}).status_code == 200
        wait_state(api, sid, "ready")
        assert api.get(f"/api/v0/sessions/{sid}/status").status_code == 200
        assert api.delete(f"/api/v0/sessions/{sid}").status_code == 204
    assert labelled(cluster, "pod,pvc") == []
    used = {(row["verb"], row["resource"]) for row in cluster.requests()}
    assert {("create", "pods"), ("delete", "pods"), ("watch", "pods"), ("get", "pods/log")} <= used
    assert forbidden_requests(cluster) == []
