"""The default pod passes the restricted Pod Security Standard; breaking overrides are reported."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from raworc_spawner.backends.kubernetes.podsecurity import restricted_violations
from tests.k8s_manifests.conftest import make_renderer, make_spec


def _default_pod() -> dict[str, Any]:
    return make_renderer().render_pod(make_spec())


def test_the_default_pod_passes_the_restricted_standard() -> None:
    assert restricted_violations(_default_pod()) == []


def test_the_default_pod_has_the_secure_defaults() -> None:
    pod = _default_pod()
    assert pod["spec"]["securityContext"] == {
        "runAsNonRoot": True,
        "runAsUser": 1000,
        "runAsGroup": 1000,
        "fsGroup": 1000,
        "fsGroupChangePolicy": "OnRootMismatch",
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    container = pod["spec"]["containers"][0]
    assert container["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }
    assert pod["spec"]["automountServiceAccountToken"] is False
    assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]
    assert {"name": "tmp", "emptyDir": {}} in pod["spec"]["volumes"]


@pytest.mark.parametrize(
    ("settings", "violation"),
    [
        ({"allow_privilege_escalation": True}, "allowPrivilegeEscalation must be false"),
        ({"run_as_non_root": False}, "runAsNonRoot must be true"),
        ({"run_as_user": 0}, "spec.securityContext.runAsUser must not be 0"),
        ({"pod_security_context": {"runAsUser": 1000}}, "seccompProfile.type must be"),
        ({"container_security_context": {"privileged": True}}, "privileged must be false"),
        ({"extra_pod_config": {"hostNetwork": True}}, "spec.hostNetwork must be false"),
        (
            {"extra_volumes": [{"name": "host", "hostPath": {"path": "/"}}]},
            "volume type hostPath is not allowed",
        ),
        (
            {
                "extra_container_config": {
                    "securityContext": {"capabilities": {"add": ["SYS_ADMIN"]}}
                }
            },
            "capability SYS_ADMIN may not be added",
        ),
        (
            {
                "sidecar_containers": [
                    {"name": "x", "image": "x", "ports": [{"containerPort": 1, "hostPort": 80}]}
                ]
            },
            "hostPort must be 0 or unset",
        ),
    ],
)
def test_an_override_that_breaks_the_standard_is_reported(
    settings: dict[str, Any], violation: str
) -> None:
    pod = make_renderer(**settings).render_pod(make_spec())
    violations = restricted_violations(pod)
    assert any(violation in v for v in violations), violations


def test_relaxing_the_read_only_root_filesystem_stays_within_the_standard() -> None:
    pod = make_renderer(read_only_root_filesystem=False).render_pod(make_spec())
    assert restricted_violations(pod) == []


def test_sidecars_inherit_the_secure_container_defaults() -> None:
    sidecar = {"name": "db", "image": "postgres:14"}
    pod = make_renderer(sidecar_containers=[sidecar]).render_pod(make_spec())
    assert pod["spec"]["containers"][1]["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert restricted_violations(pod) == []


@pytest.mark.parametrize(
    ("path", "value", "violation"),
    [
        (
            ("spec", "securityContext", "sysctls"),
            [{"name": "kernel.msgmax", "value": "1"}],
            "safe sysctl",
        ),
        (("spec", "securityContext", "seLinuxOptions"), {"type": "spc_t"}, "seLinuxOptions.type"),
        (("spec", "securityContext", "seccompProfile"), {"type": "Unconfined"}, "RuntimeDefault"),
        (("spec", "hostPID"), True, "spec.hostPID"),
        (("spec", "securityContext", "appArmorProfile"), {"type": "Unconfined"}, "appArmorProfile"),
        (
            ("metadata", "annotations", "container.apparmor.security.beta.kubernetes.io/session"),
            "unconfined",
            "runtime/default or localhost",
        ),
    ],
)
def test_each_pod_level_control_is_checked(
    path: tuple[str, ...], value: Any, violation: str
) -> None:
    pod = copy.deepcopy(_default_pod())
    target = pod
    for key in path[:-1]:
        target = target.setdefault(key, {})
    target[path[-1]] = value
    assert any(violation in v for v in restricted_violations(pod))


def test_a_container_without_a_security_context_breaks_several_controls() -> None:
    pod = {"spec": {"containers": [{"name": "bare", "image": "x"}]}}
    violations = restricted_violations(pod)
    assert len(violations) == 4
    assert all("spec.containers[0] (bare)" in v for v in violations)
