"""Rendered manifests compared with the YAML files in ``golden/``.

Each case renders the manifests a session would get under some settings, validates every one
against the Kubernetes 1.32 schema strictly (unknown fields fail), checks every pod against the
restricted Pod Security Standard, and compares the YAML with ``golden/<case>.yaml``.

After an intended change to the templates or settings, regenerate the files and review the diff:

    UPDATE_GOLDEN=1 .venv/bin/pytest tests/k8s_manifests/test_golden.py
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from raworc_spawner.backends.kubernetes.podsecurity import restricted_violations
from tests.k8s_manifests.conftest import make_renderer, make_spec, validate_strictly

GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("UPDATE_GOLDEN") == "1"

GPU_PROFILES = {
    "gpu-small": {
        "description": "One NVIDIA GPU, 4 cores, 16 GiB",
        "image": "nvidia/cuda:11.8.0-runtime-ubuntu22.04",
        "cpu_request": "2",
        "cpu_limit": "4",
        "memory_request": "8Gi",
        "memory_limit": "16Gi",
        "gpu_limit": 1,
        "storage_size": "20Gi",
        "storage_class": "fast-ssd",
        "node_selector": {"accelerator": "nvidia-tesla-t4"},
        "tolerations": [
            {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"},
        ],
        "env": {"NVIDIA_VISIBLE_DEVICES": "all"},
    },
    "cpu": {"description": "The default small session"},
}

SIDECAR_SETTINGS: dict[str, Any] = {
    "sidecar_containers": [
        {
            "name": "database",
            "image": "postgres:14",
            "env": [{"name": "POSTGRES_PASSWORD", "value": "session-db-pass"}],
            "securityContext": {"readOnlyRootFilesystem": False},
        }
    ],
    "init_containers": [
        {
            "name": "fetch-data",
            "image": "busybox:1.36",
            "command": ["sh", "-c", "cp -r /seed/. /workspace/"],
            "volumeMounts": [
                {"name": "workspace", "mountPath": "/workspace"},
                {"name": "seed-data", "mountPath": "/seed", "readOnly": True},
            ],
        }
    ],
    "extra_volumes": [
        {"name": "seed-data", "configMap": {"name": "session-seed"}},
        {"name": "credentials", "secret": {"secretName": "session-credentials"}},
    ],
    "extra_volume_mounts": [
        {"name": "credentials", "mountPath": "/etc/credentials", "readOnly": True},
    ],
    "image_pull_secrets": ["registry-credentials"],
    "priority_class_name": "sessions-low",
    "service_account_name": "session-runner",
    "affinity": {
        "podAntiAffinity": {
            "preferredDuringSchedulingIgnoredDuringExecution": [
                {
                    "weight": 50,
                    "podAffinityTerm": {
                        "topologyKey": "kubernetes.io/hostname",
                        "labelSelector": {"matchLabels": {"component": "session"}},
                    },
                }
            ]
        }
    },
    "extra_labels": {"team": "data"},
    "extra_annotations": {"example.com/cost-center": "42"},
    "extra_env": {
        "PIP_CACHE_DIR": "/tmp/pip",
        "API_KEY": {"secretKeyRef": {"name": "session-credentials", "key": "api-key"}},
    },
    "tmp_size_limit": "512Mi",
}

HUB_SPEC = {
    "name": "ann",
    "owner": "ann",
    "starting_prompt": "",
    "command": ["jupyterhub-singleuser", "--ip=0.0.0.0"],
    "port": 8888,
    "env": {
        "JUPYTERHUB_API_URL": "http://hub:8081/hub/api",
        "JUPYTERHUB_USER": "ann",
        "JUPYTERHUB_SERVICE_PREFIX": "/user/ann/",
    },
    "resources": {"memory_limit": "2Gi", "cpu_limit": "2"},
}


def _default() -> list[dict[str, Any]]:
    return make_renderer(instance_name="raworc-3f9a1c0b2d").render_all(make_spec())


def _gpu_profile() -> list[dict[str, Any]]:
    renderer = make_renderer(profiles=GPU_PROFILES, default_profile="cpu")
    return renderer.render_all(make_spec(profile="gpu-small"))


def _sidecars_and_volumes() -> list[dict[str, Any]]:
    return make_renderer(**SIDECAR_SETTINGS).render_all(make_spec())


def _hub_spec() -> list[dict[str, Any]]:
    return make_renderer(image="quay.io/jupyter/base-notebook:2024-12-02").render_all(
        make_spec(**HUB_SPEC)
    )


def _network_policy() -> list[dict[str, Any]]:
    renderer = make_renderer(
        create_network_policy=True,
        network_policy_egress_cidrs=["0.0.0.0/0", "fd00::/8"],
        server_namespace="raworc",
    )
    return [renderer.render_network_policy()]


CASES = {
    "default": _default,
    "gpu-profile": _gpu_profile,
    "sidecars-init-volumes": _sidecars_and_volumes,
    "hub-spec": _hub_spec,
    "network-policy": _network_policy,
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_rendered_manifests_match_the_golden_files(case: str) -> None:
    text = yaml.safe_dump_all(CASES[case](), sort_keys=False, allow_unicode=True)
    path = GOLDEN / f"{case}.yaml"
    if UPDATE:
        path.write_text(text)
    assert path.exists(), f"{path} is missing: run with UPDATE_GOLDEN=1 to create it"
    assert text == path.read_text(), f"{case} differs from {path}; see the module docstring"


@pytest.mark.parametrize("case", sorted(CASES))
def test_every_rendered_manifest_passes_the_strict_kubernetes_schema(case: str) -> None:
    for manifest in CASES[case]():
        validate_strictly(manifest)


@pytest.mark.parametrize("case", sorted(CASES))
def test_every_rendered_pod_passes_the_restricted_pod_security_standard(case: str) -> None:
    pods = [m for m in CASES[case]() if m["kind"] == "Pod"]
    for pod in pods:
        assert restricted_violations(pod) == []
