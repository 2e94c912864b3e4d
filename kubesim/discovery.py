"""Discovery documents: /version, /api, /apis and the per group-version resource lists.

Also answers the aggregated discovery format (``apidiscovery.k8s.io/v2``) that kubectl asks
for first, so one request replaces one per group-version.
"""

from __future__ import annotations

from typing import Any

from .resources import CATALOG, GROUP_PREFERRED, ResourceType

Obj = dict[str, Any]
AGGREGATED_ACCEPT = "as=APIGroupDiscoveryList"
AGGREGATED_CONTENT_TYPE = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
SUBRESOURCE_VERBS = {
    "status": ["get", "patch", "update"],
    "log": ["get"],
    "binding": ["create"],
    "finalize": ["update"],
    "token": ["create"],
    "exec": ["create", "get"],
}
#: Subresources whose request and response are another kind: (group, version, kind).
SUBRESOURCE_KINDS = {
    "binding": ("", "v1", "Binding"),
    "token": ("authentication.k8s.io", "v1", "TokenRequest"),
    "exec": ("", "v1", "PodExecOptions"),
}
#: ``kubectl get all`` expands the ``all`` category (resource keys, as in the catalog).
CATEGORIES = {
    key: ["all"] for key in ("pods", "services", "deployments.apps", "jobs.batch", "cronjobs.batch")
}


def version_info(git_version: str) -> Obj:
    major, minor = git_version.lstrip("v").split(".")[:2]
    return {
        "major": major,
        "minor": minor,
        "gitVersion": git_version,
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2024-12-11T00:00:00Z",
        "goVersion": "go1.23.4",
        "compiler": "gc",
        "platform": "linux/amd64",
    }


def api_versions(server_address: str) -> Obj:
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [
            {"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}
        ],
    }


def _group_entry(group: str) -> Obj:
    version = GROUP_PREFERRED[group]
    gv = {"groupVersion": f"{group}/{version}", "version": version}
    return {"name": group, "versions": [gv], "preferredVersion": gv}


def api_group_list() -> Obj:
    return {
        "kind": "APIGroupList",
        "apiVersion": "v1",
        "groups": [_group_entry(g) for g in CATALOG.groups()],
    }


def api_group(group: str) -> Obj | None:
    if group not in GROUP_PREFERRED or not group:
        return None
    return {"kind": "APIGroup", "apiVersion": "v1", **_group_entry(group)}


def _resource_entries(rt: ResourceType) -> list[Obj]:
    entry: Obj = {
        "name": rt.plural,
        "singularName": rt.singular,
        "namespaced": rt.namespaced,
        "kind": rt.kind,
        "verbs": list(rt.verbs),
    }
    if rt.short_names:
        entry["shortNames"] = list(rt.short_names)
    if rt.key in CATEGORIES:
        entry["categories"] = CATEGORIES[rt.key]
    entries = [entry]
    for sub in rt.subresources:
        sub_entry: Obj = {
            "name": f"{rt.plural}/{sub}",
            "singularName": "",
            "namespaced": rt.namespaced,
            "kind": rt.kind,
            "verbs": SUBRESOURCE_VERBS[sub],
        }
        if sub in SUBRESOURCE_KINDS:
            group, version, kind = SUBRESOURCE_KINDS[sub]
            sub_entry["kind"] = kind
            if group:
                sub_entry.update(group=group, version=version)
        entries.append(sub_entry)
    return entries


def resource_list(group: str, version: str) -> Obj | None:
    resources = CATALOG.in_group_version(group, version)
    if not resources:
        return None
    gv = f"{group}/{version}" if group else version
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": gv,
        "resources": [e for rt in resources for e in _resource_entries(rt)],
    }


def _subresource_kind(rt: ResourceType, sub: str) -> Obj:
    group, version, kind = SUBRESOURCE_KINDS.get(sub, (rt.group, rt.version, rt.kind))
    if sub == "binding":
        group, version = rt.group, rt.version
    return {"group": group, "version": version, "kind": kind}


def _aggregated_resource(rt: ResourceType) -> Obj:
    out: Obj = {
        "resource": rt.plural,
        "responseKind": {"group": rt.group, "version": rt.version, "kind": rt.kind},
        "scope": "Namespaced" if rt.namespaced else "Cluster",
        "singularResource": rt.singular,
        "verbs": list(rt.verbs),
    }
    if rt.short_names:
        out["shortNames"] = list(rt.short_names)
    if rt.key in CATEGORIES:
        out["categories"] = CATEGORIES[rt.key]
    if rt.subresources:
        out["subresources"] = [
            {
                "subresource": sub,
                "verbs": SUBRESOURCE_VERBS[sub],
                "responseKind": _subresource_kind(rt, sub),
            }
            for sub in rt.subresources
        ]
    return out


def aggregated(core: bool) -> Obj:
    """The ``APIGroupDiscoveryList`` for ``/api`` (core) or ``/apis`` (named groups)."""
    groups = [""] if core else CATALOG.groups()
    items = []
    for group in groups:
        version = GROUP_PREFERRED[group]
        resources = [_aggregated_resource(rt) for rt in CATALOG.in_group_version(group, version)]
        items.append(
            {
                "metadata": {"name": group, "creationTimestamp": None},
                "versions": [{"version": version, "resources": resources, "freshness": "Current"}],
            }
        )
    return {
        "kind": "APIGroupDiscoveryList",
        "apiVersion": "apidiscovery.k8s.io/v2",
        "metadata": {},
        "items": items,
    }
