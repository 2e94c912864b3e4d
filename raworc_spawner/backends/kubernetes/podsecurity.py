"""A checker for the Kubernetes "restricted" Pod Security Standard (Linux pods).

It implements the controls of https://kubernetes.io/docs/concepts/security/pod-security-standards/
— the baseline ones (host namespaces, privileged, capabilities, hostPath, host ports, AppArmor,
SELinux, /proc mount, seccomp, sysctls, HostProcess) and the restricted ones (volume types,
privilege escalation, non-root, non-root user, seccomp, capabilities) — so tests and operators
can tell whether a rendered pod would be admitted by a namespace labelled
``pod-security.kubernetes.io/enforce: restricted``.

>>> restricted_violations({"spec": {"hostNetwork": True, "containers": []}})[0]
'spec.hostNetwork must be false or unset'
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

BASELINE_CAPABILITIES = frozenset(
    {
        "AUDIT_WRITE",
        "CHOWN",
        "DAC_OVERRIDE",
        "FOWNER",
        "FSETID",
        "KILL",
        "MKNOD",
        "NET_BIND_SERVICE",
        "SETFCAP",
        "SETGID",
        "SETPCAP",
        "SETUID",
        "SYS_CHROOT",
    }
)
SAFE_SYSCTLS = frozenset(
    {
        "kernel.shm_rmid_forced",
        "net.ipv4.ip_local_port_range",
        "net.ipv4.ip_unprivileged_port_start",
        "net.ipv4.tcp_syncookies",
        "net.ipv4.ping_group_range",
        "net.ipv4.ip_local_reserved_ports",
        "net.ipv4.tcp_keepalive_time",
        "net.ipv4.tcp_fin_timeout",
        "net.ipv4.tcp_keepalive_intvl",
        "net.ipv4.tcp_keepalive_probes",
    }
)
RESTRICTED_VOLUME_TYPES = frozenset(
    {
        "configMap",
        "csi",
        "downwardAPI",
        "emptyDir",
        "ephemeral",
        "persistentVolumeClaim",
        "projected",
        "secret",
    }
)
SELINUX_TYPES = frozenset(
    {"", "container_t", "container_init_t", "container_kvm_t", "container_engine_t"}
)
SECCOMP_ALLOWED = frozenset({"RuntimeDefault", "Localhost"})
APPARMOR_ALLOWED = frozenset({"RuntimeDefault", "Localhost"})
CONTAINER_FIELDS = ("containers", "initContainers", "ephemeralContainers")


def restricted_violations(pod: dict[str, Any]) -> list[str]:
    """Every way ``pod`` (a Pod manifest) breaks the restricted standard; empty if it complies."""
    spec = pod.get("spec") or {}
    pod_sc = spec.get("securityContext") or {}
    problems = [*_pod_level(pod, spec, pod_sc)]
    for path, container in _containers(spec):
        problems.extend(_container_level(path, container, pod_sc))
    return problems


def _containers(spec: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for field in CONTAINER_FIELDS:
        for i, container in enumerate(spec.get(field) or []):
            yield f"spec.{field}[{i}]", container


def _pod_level(pod: dict[str, Any], spec: dict[str, Any], sc: dict[str, Any]) -> Iterator[str]:
    for field in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(field):
            yield f"spec.{field} must be false or unset"
    if (sc.get("windowsOptions") or {}).get("hostProcess"):
        yield "spec.securityContext.windowsOptions.hostProcess must be false or unset"
    yield from _volumes(spec.get("volumes") or [])
    yield from _selinux("spec.securityContext", sc)
    yield from _apparmor("spec.securityContext", sc, pod)
    for sysctl in sc.get("sysctls") or []:
        if sysctl.get("name") not in SAFE_SYSCTLS:
            yield f"spec.securityContext.sysctls: {sysctl.get('name')} is not a safe sysctl"
    if sc.get("runAsUser") == 0:
        yield "spec.securityContext.runAsUser must not be 0"
    if "seccompProfile" in sc and _seccomp_type(sc) not in SECCOMP_ALLOWED:
        yield "spec.securityContext.seccompProfile.type must be RuntimeDefault or Localhost"
    if sc.get("runAsNonRoot") is False:
        yield "spec.securityContext.runAsNonRoot must be true"


def _volumes(volumes: list[dict[str, Any]]) -> Iterator[str]:
    for i, volume in enumerate(volumes):
        kinds = set(volume) - {"name"}
        for kind in sorted(kinds - RESTRICTED_VOLUME_TYPES):
            yield f"spec.volumes[{i}] ({volume.get('name')}): volume type {kind} is not allowed"


def _container_level(path: str, container: dict[str, Any], pod_sc: dict[str, Any]) -> Iterator[str]:
    sc = container.get("securityContext") or {}
    where = f"{path} ({container.get('name')})"
    if sc.get("privileged"):
        yield f"{where}: securityContext.privileged must be false or unset"
    if (sc.get("windowsOptions") or {}).get("hostProcess"):
        yield f"{where}: securityContext.windowsOptions.hostProcess must be false or unset"
    if sc.get("procMount", "Default") != "Default":
        yield f"{where}: securityContext.procMount must be Default or unset"
    for port in container.get("ports") or []:
        if port.get("hostPort"):
            yield f"{where}: ports[].hostPort must be 0 or unset"
    yield from _selinux(f"{where}: securityContext", sc)
    yield from _apparmor(f"{where}: securityContext", sc, None)
    yield from _restricted_container(where, sc, pod_sc)


def _restricted_container(where: str, sc: dict[str, Any], pod_sc: dict[str, Any]) -> Iterator[str]:
    if sc.get("allowPrivilegeEscalation") is not False:
        yield f"{where}: securityContext.allowPrivilegeEscalation must be false"
    non_root = sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot"))
    if non_root is not True:
        yield f"{where}: runAsNonRoot must be true (in the pod or container securityContext)"
    if sc.get("runAsUser") == 0:
        yield f"{where}: securityContext.runAsUser must not be 0"
    seccomp = _seccomp_type(sc) if "seccompProfile" in sc else _seccomp_type(pod_sc)
    if seccomp not in SECCOMP_ALLOWED:
        yield f"{where}: seccompProfile.type must be RuntimeDefault or Localhost (pod or container)"
    capabilities = sc.get("capabilities") or {}
    if "ALL" not in (capabilities.get("drop") or []):
        yield f"{where}: securityContext.capabilities.drop must include ALL"
    for cap in capabilities.get("add") or []:
        if cap != "NET_BIND_SERVICE":
            yield f"{where}: capability {cap} may not be added (only NET_BIND_SERVICE)"


def _seccomp_type(sc: dict[str, Any]) -> str | None:
    profile = sc.get("seccompProfile") or {}
    return profile.get("type")


def _selinux(where: str, sc: dict[str, Any]) -> Iterator[str]:
    options = sc.get("seLinuxOptions") or {}
    if options.get("type", "") not in SELINUX_TYPES:
        yield f"{where}.seLinuxOptions.type {options['type']} is not allowed"
    for key in ("user", "role"):
        if options.get(key):
            yield f"{where}.seLinuxOptions.{key} must be unset"


def _apparmor(where: str, sc: dict[str, Any], pod: dict[str, Any] | None) -> Iterator[str]:
    profile = sc.get("appArmorProfile") or {}
    if profile and profile.get("type") not in APPARMOR_ALLOWED:
        yield f"{where}.appArmorProfile.type must be RuntimeDefault or Localhost"
    annotations = ((pod or {}).get("metadata") or {}).get("annotations") or {}
    for key, value in annotations.items():
        if not key.startswith("container.apparmor.security.beta.kubernetes.io/"):
            continue
        if value != "runtime/default" and not str(value).startswith("localhost/"):
            yield f"metadata.annotations[{key}] must be runtime/default or localhost/*"
