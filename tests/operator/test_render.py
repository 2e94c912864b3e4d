"""``raworc-spawner render`` prints manifests the API server accepts, with the seed's names."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from .conftest import NS, Cluster

pytestmark = pytest.mark.slow

SESSION_ID = "0b7c2d0e-3c55-4f7e-9a57-5d1f1e0f6a11"
CONFIG = """
c.KubernetesSettings.profiles = {
    "gpu-small": {
        "description": "one GPU",
        "image": "nvidia/cuda:11.8.0-runtime-ubuntu22.04",
        "gpu_limit": 1,
        "memory_limit": "4Gi",
        "node_selector": {"accelerator": "nvidia"},
    }
}
"""


def test_rendered_manifests_pass_a_server_side_dry_run_with_the_seeds_names_and_labels(
    deployed: Cluster, tmp_path: Path
) -> None:
    (tmp_path / "raworc_config.py").write_text(CONFIG)
    token = deployed.create_token()
    done = deployed.spawner(
        "render",
        "--name",
        "My Session",
        "--profile",
        "gpu-small",
        "--id",
        SESSION_ID,
        token=token,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    pvc, pod = list(yaml.safe_load_all(done.stdout))
    assert (pvc["kind"], pvc["metadata"]["name"]) == (
        "PersistentVolumeClaim",
        f"session-pvc-{SESSION_ID}",
    )
    assert (pod["kind"], pod["metadata"]["name"]) == ("Pod", f"session-{SESSION_ID}")
    for doc in (pvc, pod):
        assert doc["metadata"]["namespace"] == NS
        labels = doc["metadata"]["labels"]
        assert {k: labels[k] for k in ("app", "component", "session-id")} == {
            "app": "raworc",
            "component": "session",
            "session-id": SESSION_ID,
        }
        assert labels["session-name"].startswith("My-Session-")  # sanitized, made unique
        assert doc["metadata"]["annotations"]["raworc.dev/session-name"] == "My Session"
    container = pod["spec"]["containers"][0]
    assert container["image"] == "nvidia/cuda:11.8.0-runtime-ubuntu22.04"
    assert container["resources"]["limits"]["nvidia.com/gpu"] in (1, "1")
    dry_run = deployed.kubectl(
        "apply", "--dry-run=server", "--validate=strict", "-f", "-", stdin=done.stdout
    )
    assert dry_run.stdout.splitlines() == [
        f"persistentvolumeclaim/session-pvc-{SESSION_ID} created (server dry run)",
        f"pod/session-{SESSION_ID} created (server dry run)",
    ]
    listed = deployed.kubectl("get", "pod,pvc", "-n", NS, "-l", f"session-id={SESSION_ID}")
    assert listed.stdout == "" and "No resources found" in listed.stderr
