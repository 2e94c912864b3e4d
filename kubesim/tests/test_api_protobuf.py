"""kubectl's typed ``create`` commands post protobuf; kubesim reads them as the JSON they mean.

Every case runs the real kubectl (v1.32) with ``-v=8`` against a standalone kubesim, checks that
the request really was protobuf, then reads the object back as JSON. Bodies of kinds kubesim
has no table for are 415, malformed ones 400 (sent with a plain HTTP client).
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest

from kubesim import KubeSim
from kubesim.proto import decode_object

from . import test_kubectl
from .test_kubectl import NS, Kubectl

# The standalone kubesim and the kubectl runner of the kubectl suite.
cluster = test_kubectl.cluster
kubectl = test_kubectl.kubectl

PROTOBUF = "application/vnd.kubernetes.protobuf"
SENT_AS_PROTOBUF = f"Content-Type: {PROTOBUF}"


@dataclass(frozen=True)
class Case:
    """A ``kubectl create`` command, the object to read back, and what it must hold."""

    create: list[str]
    get: list[str]
    expected: dict[str, Any]


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


CASES: dict[str, Case] = {
    "namespace": Case(
        ["namespace", "pb-ns"],
        ["namespace", "pb-ns"],
        {"spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}},
    ),
    "secret": Case(
        ["secret", "generic", "pb-secret", "--from-literal=user=admin", "--from-literal=empty="],
        ["secret", "pb-secret"],
        {"type": "Opaque", "data": {"user": b64("admin"), "empty": ""}},
    ),
    "configmap": Case(
        ["configmap", "pb-cm", "--from-literal=a=1", "--from-literal=b=two words"],
        ["configmap", "pb-cm"],
        {"data": {"a": "1", "b": "two words"}},
    ),
    "serviceaccount": Case(
        ["serviceaccount", "pb-robot"],
        ["serviceaccount", "pb-robot"],
        {"metadata": {"name": "pb-robot", "namespace": NS}},
    ),
    "role": Case(
        ["role", "pb-reader", "--verb=get,list", "--resource=pods,leases.coordination.k8s.io"],
        ["role", "pb-reader"],
        {
            "rules": [
                {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]},
                {
                    "apiGroups": ["coordination.k8s.io"],
                    "resources": ["leases"],
                    "verbs": ["get", "list"],
                },
            ]
        },
    ),
    "rolebinding": Case(
        ["rolebinding", "pb-rb", "--role=pb-reader", "--user=alice", f"--serviceaccount={NS}:x"],
        ["rolebinding", "pb-rb"],
        {
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "Role",
                "name": "pb-reader",
            },
            "subjects": [
                {"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "alice"},
                {"kind": "ServiceAccount", "name": "x", "namespace": NS},
            ],
        },
    ),
    "clusterrole": Case(
        ["clusterrole", "pb-health", "--verb=get", "--non-resource-url=/healthz"],
        ["clusterrole", "pb-health"],
        {"rules": [{"nonResourceURLs": ["/healthz"], "verbs": ["get"]}]},
    ),
    "aggregated clusterrole": Case(
        ["clusterrole", "pb-agg", "--aggregation-rule=example.com/agg=true"],
        ["clusterrole", "pb-agg"],
        {
            "aggregationRule": {
                "clusterRoleSelectors": [{"matchLabels": {"example.com/agg": "true"}}]
            }
        },
    ),
    "clusterrolebinding": Case(
        ["clusterrolebinding", "pb-crb", "--clusterrole=pb-health", "--group=ops"],
        ["clusterrolebinding", "pb-crb"],
        {
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": "pb-health",
            },
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "ops"}],
        },
    ),
    "quota": Case(
        ["quota", "pb-quota", "--hard=cpu=1,memory=1G,pods=2", "--scopes=NotBestEffort"],
        ["resourcequota", "pb-quota"],
        {"spec": {"hard": {"cpu": "1", "memory": "1G", "pods": "2"}, "scopes": ["NotBestEffort"]}},
    ),
    "priorityclass": Case(
        [
            "priorityclass",
            "pb-high",
            "--value=1000",
            "--description=sessions",
            "--preemption-policy=Never",
        ],
        ["priorityclass", "pb-high"],
        {"value": 1000, "description": "sessions", "preemptionPolicy": "Never"},
    ),
    "priorityclass of value zero": Case(
        ["priorityclass", "pb-zero", "--value=0"],
        ["priorityclass", "pb-zero"],
        {"value": 0, "preemptionPolicy": "PreemptLowerPriority"},
    ),
    "deployment": Case(
        ["deployment", "pb-web", "--image=nginx:1.27", "--replicas=2", "--port=80"],
        ["deployment", "pb-web"],
        {
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": {"app": "pb-web"}},
                "template": {
                    "metadata": {"labels": {"app": "pb-web"}},
                    "spec": {
                        "containers": [
                            {
                                "name": "nginx",
                                "image": "nginx:1.27",
                                "ports": [{"containerPort": 80}],
                            }
                        ]
                    },
                },
            }
        },
    ),
    "deployment scaled to zero": Case(
        ["deployment", "pb-idle", "--image=nginx", "--replicas=0"],
        ["deployment", "pb-idle"],
        {"spec": {"replicas": 0}},
    ),
    "job": Case(
        ["job", "pb-once", "--image=busybox", "--", "echo", "hi"],
        ["job", "pb-once"],
        {
            "spec": {
                "completions": 1,
                "parallelism": 1,
                "backoffLimit": 6,
                "template": {
                    "spec": {
                        "restartPolicy": "Never",
                        "containers": [
                            {"name": "pb-once", "image": "busybox", "command": ["echo", "hi"]}
                        ],
                    }
                },
            }
        },
    ),
    "cronjob": Case(
        ["cronjob", "pb-tick", "--image=busybox", "--schedule=*/5 * * * *", "--", "date"],
        ["cronjob", "pb-tick"],
        {
            "spec": {
                "schedule": "*/5 * * * *",
                "concurrencyPolicy": "Allow",
                "jobTemplate": {
                    "spec": {
                        "template": {
                            "spec": {
                                "restartPolicy": "OnFailure",
                                "containers": [
                                    {"name": "pb-tick", "image": "busybox", "command": ["date"]}
                                ],
                            }
                        }
                    }
                },
            }
        },
    ),
    "service clusterip": Case(
        ["service", "clusterip", "pb-api", "--tcp=5678:8080"],
        ["service", "pb-api"],
        {
            "spec": {
                "type": "ClusterIP",
                "selector": {"app": "pb-api"},
                "ports": [
                    {"name": "5678-8080", "port": 5678, "protocol": "TCP", "targetPort": 8080}
                ],
            }
        },
    ),
}


def contains(actual: Any, expected: Any, path: str = "") -> list[str]:
    """Where ``actual`` differs from ``expected`` (dicts compared on expected keys only)."""
    if isinstance(expected, dict) and isinstance(actual, dict):
        return [p for k, v in expected.items() for p in contains(actual.get(k), v, f"{path}.{k}")]
    if isinstance(expected, list) and isinstance(actual, list) and len(actual) == len(expected):
        return [
            p
            for i, (a, e) in enumerate(zip(actual, expected, strict=True))
            for p in contains(a, e, f"{path}[{i}]")
        ]
    return [] if actual == expected else [f"{path}: {actual!r} != {expected!r}"]


@pytest.mark.parametrize("case", list(CASES.values()), ids=list(CASES))
def test_a_typed_create_sent_as_protobuf_is_stored_as_its_json(
    kubectl: Kubectl, case: Case
) -> None:
    created = kubectl("create", "-n", NS, "-v=8", *case.create)
    assert SENT_AS_PROTOBUF in created.stderr, "kubectl did not send protobuf"
    stored = json.loads(kubectl("get", *case.get, "-n", NS, "-o", "json").stdout)
    assert contains(stored, case.expected) == []


def test_create_token_reads_a_protobuf_token_request(kubectl: Kubectl) -> None:
    kubectl("create", "serviceaccount", "pb-token", "-n", NS)
    done = kubectl("create", "token", "pb-token", "-n", NS, "--duration=20m", "-v=8")
    assert SENT_AS_PROTOBUF in done.stderr
    _, claims, _ = done.stdout.strip().split(".")
    payload = json.loads(base64.urlsafe_b64decode(claims + "=" * (-len(claims) % 4)))
    assert payload["sub"] == f"system:serviceaccount:{NS}:pb-token"
    assert payload["exp"] - payload["iat"] == 1200


def test_kubectl_gets_json_answers_to_its_protobuf_requests(kubectl: Kubectl) -> None:
    done = kubectl("create", "configmap", "pb-answer", "-n", NS, "-v=8")
    assert f"Accept: {PROTOBUF},application/json" in done.stderr
    assert "Response Status: 201 Created" in done.stderr
    assert done.stdout.strip() == "configmap/pb-answer created"


def test_the_namespace_of_the_seed_is_created_as_kubectl_sends_it(kubectl: Kubectl) -> None:
    assert kubectl("create", "namespace", "raworc-sessions-2").stdout.strip() == (
        "namespace/raworc-sessions-2 created"
    )
    again = kubectl("create", "namespace", "raworc-sessions-2", ok=False)
    assert again.returncode == 1
    assert 'namespaces "raworc-sessions-2" already exists' in again.stderr


def test_the_body_kubectl_sends_for_create_namespace_decodes_to_its_json() -> None:
    # Captured from `kubectl create namespace foo -v=8` (kubectl v1.32.4).
    body = bytes.fromhex(
        "6b3873000a0f0a0276311209 4e616d657370616365121b0a130a03666f6f1200"
        "1a0022002a00320038004200 12001a020a001a002200".replace(" ", "")
    )
    assert decode_object(body) == {
        "kind": "Namespace",
        "apiVersion": "v1",
        "metadata": {"name": "foo"},
    }


# -- bodies sent by hand -------------------------------------------------------------------------
def varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def field(number: int, payload: bytes) -> bytes:
    """A length-delimited field (wire type 2)."""
    return varint(number << 3 | 2) + varint(len(payload)) + payload


def envelope(api_version: str, kind: str, raw: bytes) -> bytes:
    type_meta = field(1, api_version.encode()) + field(2, kind.encode())
    return b"k8s\x00" + field(1, type_meta) + field(2, raw)


async def post(sim: KubeSim, path: str, body: bytes) -> tuple[int, dict[str, Any]]:
    headers = {"Authorization": f"Bearer {sim.token}", "Content-Type": PROTOBUF}
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{sim.url}{path}", data=body, headers=headers) as resp,
    ):
        return resp.status, await resp.json(content_type=None)


@pytest.mark.asyncio
async def test_a_protobuf_body_of_a_kind_without_a_table_is_415_naming_the_kind(
    sim: KubeSim,
) -> None:
    pod = field(1, field(1, b"p1"))  # metadata.name
    status, body = await post(sim, f"/api/v1/namespaces/{NS}/pods", envelope("v1", "Pod", pod))
    assert status == 415
    assert body["reason"] == "UnsupportedMediaType" and body["code"] == 415
    assert body["message"] == (
        "kubesim cannot decode a protobuf Pod (v1): "
        "send it as JSON (Content-Type: application/json)"
    )


@pytest.mark.asyncio
async def test_a_malformed_protobuf_body_is_400(sim: KubeSim) -> None:
    status, body = await post(sim, "/api/v1/namespaces", b"k8s\x00\x0a\xff")
    assert status == 400 and body["reason"] == "BadRequest"
    assert body["message"].startswith("the body of the request was in an unknown format")
    status, body = await post(sim, "/api/v1/namespaces", b'{"not": "protobuf"}')
    assert status == 400
    assert "without the k8s magic prefix" in body["message"]


@pytest.mark.asyncio
async def test_a_protobuf_object_posted_to_another_resource_is_refused(sim: KubeSim) -> None:
    config_map = field(1, field(1, b"cm"))
    status, body = await post(
        sim, f"/api/v1/namespaces/{NS}/secrets", envelope("v1", "ConfigMap", config_map)
    )
    assert status == 400
    assert body["message"] == 'ConfigMap in version "v1" cannot be handled as a Secret'


def number_field(number: int, value: int) -> bytes:
    """A varint field (wire type 0); negative numbers as 64-bit two's complement."""
    return varint(number << 3) + varint(value & (1 << 64) - 1)


def test_decoding_keeps_pointer_zeros_and_drops_empty_plain_values() -> None:
    spec = (
        number_field(1, 0)  # replicas: a pointer, an explicit 0 is kept
        + number_field(5, 0)  # minReadySeconds: plain, 0 is omitted as JSON omits it
        + field(4, b"")  # strategy: an empty struct is omitted
        + number_field(6, -1)  # revisionHistoryLimit: negative int32
    )
    deployment = field(1, field(1, b"d") + field(2, b"")) + field(2, spec)
    assert decode_object(envelope("apps/v1", "Deployment", deployment)) == {
        "kind": "Deployment",
        "apiVersion": "apps/v1",
        "metadata": {"name": "d"},
        "spec": {"replicas": 0, "revisionHistoryLimit": -1},
    }


def test_decoding_reads_maps_quantities_int_or_strings_and_times() -> None:
    quantity = field(1, field(1, b"cpu") + field(2, field(1, b"500m")))  # map entry
    metadata = (
        field(1, b"q")
        + field(8, number_field(1, 1_714_557_600))  # creationTimestamp
        + field(11, field(1, b"app") + field(2, b"raworc"))  # labels entry
    )
    quota = field(1, metadata) + field(2, quantity)
    assert decode_object(envelope("v1", "ResourceQuota", quota)) == {
        "kind": "ResourceQuota",
        "apiVersion": "v1",
        "metadata": {
            "name": "q",
            "creationTimestamp": "2024-05-01T10:00:00Z",
            "labels": {"app": "raworc"},
        },
        "spec": {"hard": {"cpu": "500m"}},
    }
    named_port = number_field(1, 1) + field(3, b"http")  # IntOrString type=String
    port = number_field(3, 80) + field(4, named_port)
    service = field(1, field(1, b"s")) + field(2, field(1, port))
    decoded = decode_object(envelope("v1", "Service", service))
    assert decoded["spec"]["ports"] == [{"port": 80, "targetPort": "http"}]
    renew = field(4, number_field(1, 1_714_557_600) + number_field(2, 123_456_000))
    lease = field(1, field(1, b"l")) + field(2, renew)
    decoded = decode_object(envelope("coordination.k8s.io/v1", "Lease", lease))
    assert decoded["spec"] == {"renewTime": "2024-05-01T10:00:00.123456Z"}
