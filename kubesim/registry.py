"""The API semantics of get, list, create, update and patch, independent of HTTP.

HTTP handlers and the simulated controllers both go through a :class:`Registry`, so an object
written by the kubelet gets the same resourceVersion, watch event and checks as one written by
a client.
"""

from __future__ import annotations

import base64
import binascii
import builtins
import json
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from . import rules
from .errors import ApiError, already_exists, bad_request, conflict, expired, forbidden, not_found
from .objects import Obj, clone, generate_suffix, meta, new_uid, timestamp
from .patch import PATCH_TYPES, strategic_merge
from .resources import CATALOG, ResourceType
from .selectors import Selector
from .store import Store
from .validation import apply_schema, check_metadata, invalid, required

IMMUTABLE_META = (
    "uid",
    "creationTimestamp",
    "namespace",
    "name",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "generateName",
)


@dataclass
class WriteOptions:
    """Query options every write takes."""

    field_validation: str = "Warn"
    dry_run: bool = False
    field_manager: str = ""


@dataclass
class Written:
    """The outcome of a write: the object, the HTTP status and any warnings."""

    obj: Obj
    code: int = 200
    warnings: list[str] = field(default_factory=list)


@dataclass
class ListOptions:
    """What a list request asked for."""

    selector: Selector = field(default_factory=Selector)
    limit: int = 0
    continue_token: str = ""
    resource_version: str = ""


def encode_continue(rv: int, start: str) -> str:
    raw = json.dumps({"v": "meta.k8s.io/v1", "rv": rv, "start": start}).encode()
    return base64.urlsafe_b64encode(raw).decode()


def decode_continue(token: str) -> tuple[int, str]:
    try:
        data = json.loads(base64.urlsafe_b64decode(token.encode()))
        return int(data["rv"]), str(data["start"])
    except (ValueError, KeyError, TypeError, binascii.Error) as e:
        raise bad_request(f"continue key is not valid: {e}") from e


class Registry:
    """Objects with API-server semantics on top of a :class:`~.store.Store`."""

    def __init__(self, store: Store, *, rng: random.Random | None = None) -> None:
        self.store = store
        self.rng = rng or random.Random()
        self.default_storage_class: Callable[[], str | None] = lambda: None

    # -- reads -------------------------------------------------------------------------------
    def get(self, rt: ResourceType, namespace: str, name: str) -> Obj:
        obj = self.store.get(rt.key, namespace, name)
        if obj is None:
            raise not_found(rt, name)
        return obj

    def list(self, rt: ResourceType, namespace: str | None, opts: ListOptions) -> Obj:
        """A List with ``limit``/``continue`` paging; 410 for a continue token that is too old."""
        rv, start = self.store.rv, ""
        if opts.continue_token:
            rv, start = decode_continue(opts.continue_token)
            if rv < self.store.compacted_rv:
                raise self._continue_expired(rt, namespace, opts)
        elif (
            opts.resource_version not in ("", "0")
            and int_or_400(opts.resource_version) > self.store.rv
        ):
            raise ApiError(
                504,
                "Timeout",
                f"Too large resource version: {opts.resource_version}, current: {self.store.rv}",
                details={
                    "causes": [
                        {
                            "reason": "ResourceVersionTooLarge",
                            "message": "Too large resource version",
                        }
                    ],
                    "retryAfterSeconds": 1,
                },
            )
        items = [o for o in self.store.list(rt.key, namespace) if _key(o) > start or not start]
        if not opts.selector.empty:
            items = [o for o in items if opts.selector.matches(o)]
        list_meta: Obj = {"resourceVersion": str(rv)}
        if opts.limit and len(items) > opts.limit:
            items, rest = items[: opts.limit], len(items) - opts.limit
            list_meta["continue"] = encode_continue(rv, _key(items[-1]))
            list_meta["remainingItemCount"] = rest
        return {
            "kind": rt.list_kind,
            "apiVersion": rt.api_version,
            "metadata": list_meta,
            "items": items,
        }

    def _continue_expired(
        self, rt: ResourceType, namespace: str | None, opts: ListOptions
    ) -> ApiError:
        _, start = decode_continue(opts.continue_token)
        fresh = encode_continue(self.store.rv, start)
        message = (
            "The provided continue parameter is too old to display a consistent list result. "
            "You can start a new list without the continue parameter, or use the continue "
            "token in this response to retrieve the remainder of the results. Continuing with "
            "the provided token results in an inconsistent list - objects that were created, "
            "modified, or deleted between the time the first chunk was returned and now may "
            "show up in the list."
        )
        error = expired(message)
        error.metadata = {"continue": fresh}
        return error

    # -- create ------------------------------------------------------------------------------
    def create(self, rt: ResourceType, namespace: str, body: Any, opts: WriteOptions) -> Written:
        obj = self._decode(rt, body, namespace)
        m = meta(obj)
        if not m.get("name") and m.get("generateName"):
            m["name"] = f"{m['generateName']}{generate_suffix(self.rng)}"
        if not m.get("name"):
            raise invalid(rt, "", [required("metadata.name")])
        if rt.namespaced:
            m["namespace"] = namespace
            self._check_namespace_open(rt, namespace, m["name"])
        else:
            m.pop("namespace", None)
        for key in ("deletionTimestamp", "deletionGracePeriodSeconds", "resourceVersion"):
            m.pop(key, None)
        # Before admission: some defaults derive from the UID (a Job's generated selector).
        m["uid"] = new_uid()
        m["creationTimestamp"] = timestamp()
        warnings = self._admit(rt, obj, opts, None)
        if self.store.get(rt.key, namespace if rt.namespaced else "", m["name"]) is not None:
            raise already_exists(rt, m["name"])
        if "spec" in obj:
            m["generation"] = 1
        if opts.dry_run:
            return Written(obj, 201, warnings)
        return Written(self.store.put(rt.key, obj, added=True), 201, warnings)

    def _check_namespace_open(self, rt: ResourceType, namespace: str, name: str) -> None:
        ns = self.store.get("namespaces", "", namespace)
        if ns is None:
            raise not_found(CATALOG.by_key("namespaces"), namespace)
        if ns["metadata"].get("deletionTimestamp"):
            raise forbidden(
                f'{rt.key} "{name}" is forbidden: unable to create new content in '
                f"namespace {namespace} because it is being terminated",
                rt,
                name,
            )

    def _decode(self, rt: ResourceType, body: Any, namespace: str) -> Obj:
        if not isinstance(body, dict):
            raise bad_request(
                "the body of the request was in an unknown format - accepted media types "
                "include: application/json, application/yaml"
            )
        obj = clone(body)
        kind, api_version = (
            obj.setdefault("kind", rt.kind),
            obj.setdefault("apiVersion", rt.api_version),
        )
        if kind != rt.kind or api_version != rt.api_version:
            raise bad_request(
                f"the API version in the data ({api_version}) does not match the "
                f"expected API version ({rt.api_version})"
                if kind == rt.kind
                else f'{kind} in version "{api_version}" cannot be handled as a {rt.kind}'
            )
        body_ns = obj.get("metadata", {}).get("namespace")
        if rt.namespaced and body_ns and namespace and body_ns != namespace:
            raise bad_request(
                "the namespace of the provided object does not match the namespace "
                "sent on the request"
            )
        return obj

    def _admit(
        self, rt: ResourceType, obj: Obj, opts: WriteOptions, old: Obj | None
    ) -> builtins.list[str]:
        """Default, then validate; raise 422 with every cause found."""
        warnings: list[str] = []
        causes = check_metadata(obj, rt)
        if old is None:
            if rt.key == "persistentvolumeclaims":
                spec = obj.setdefault("spec", {})
                if "storageClassName" not in spec and (klass := self.default_storage_class()):
                    spec["storageClassName"] = klass
            if defaulter := rules.DEFAULTS.get(rt.key):
                defaulter(obj)
        if normalize := rules.NORMALIZE.get(rt.key):
            normalize(obj)
        if rt.key in rules.SCHEMA_CHECKED:
            schema_causes, warnings = apply_schema(obj, rt, opts.field_validation)
            causes += schema_causes
        if check := rules.CHECKS.get(rt.key):
            causes += check(obj)
        if old is not None and (update_check := rules.UPDATE_CHECKS.get(rt.key)):
            causes += update_check(old, obj)
        if causes:
            raise invalid(rt, obj["metadata"].get("name", ""), causes)
        return warnings

    # -- update and patch --------------------------------------------------------------------
    def update(
        self,
        rt: ResourceType,
        namespace: str,
        name: str,
        body: Any,
        opts: WriteOptions,
        *,
        subresource: str = "",
    ) -> Written:
        """PUT: 409 Conflict when the body's resourceVersion is not the stored one."""
        obj = self._decode(rt, body, namespace)
        if obj["metadata"].get("name", name) != name:
            raise bad_request(
                f"the name of the object ({obj['metadata'].get('name')}) does not "
                f"match the name on the URL ({name})"
            )
        old = self.get(rt, namespace if rt.namespaced else "", name)
        rv = obj["metadata"].get("resourceVersion")
        if rv and rv != old["metadata"]["resourceVersion"]:
            raise conflict(rt, name)
        return self._replace(rt, old, obj, opts, subresource)

    def patch(
        self,
        rt: ResourceType,
        namespace: str,
        name: str,
        patch_type: str,
        body: Any,
        opts: WriteOptions,
        *,
        subresource: str = "",
    ) -> Written:
        ns = namespace if rt.namespaced else ""
        if patch_type == "application/apply-patch+yaml":
            return self._apply(rt, ns, name, body, opts, subresource)
        apply = PATCH_TYPES.get(patch_type)
        if apply is None:
            raise ApiError(
                415,
                "UnsupportedMediaType",
                "the body of the request was in an unknown format - accepted media types "
                f"include: {', '.join(PATCH_TYPES)}, application/apply-patch+yaml",
            )
        old = self.get(rt, ns, name)
        patched = apply(old, body)
        if not isinstance(patched, dict):
            raise bad_request("the patch did not produce an object")
        rv = (
            patch_type != "application/json-patch+json"
            and isinstance(body, dict)
            and (body.get("metadata") or {}).get("resourceVersion")
        )
        if rv and rv != old["metadata"]["resourceVersion"]:
            raise conflict(rt, name)
        patched.setdefault("metadata", {})["name"] = name
        return self._replace(rt, old, self._decode(rt, patched, ns), opts, subresource)

    def _apply(
        self, rt: ResourceType, ns: str, name: str, body: Any, opts: WriteOptions, subresource: str
    ) -> Written:
        """Server-side apply, approximated: create when absent, strategic merge otherwise."""
        if not isinstance(body, dict):
            raise bad_request("apply patch must be an object")
        body.setdefault("metadata", {})["name"] = name
        old = self.store.get(rt.key, ns, name)
        if old is None:
            return self.create(rt, ns, body, opts)
        merged = strategic_merge(old, body)
        return self._replace(rt, old, self._decode(rt, merged, ns), opts, subresource)

    def _replace(
        self, rt: ResourceType, old: Obj, obj: Obj, opts: WriteOptions, subresource: str
    ) -> Written:
        new = self._carry_over(rt, old, obj, subresource)
        warnings = self._admit(rt, new, opts, old) if subresource != "status" else []
        if new == old or opts.dry_run:
            return Written(new if opts.dry_run else old, 200, warnings)
        m = new["metadata"]
        if m.get("deletionTimestamp") and not m.get("finalizers") and self._finalizable(rt, new):
            self.store.put(rt.key, new, added=False)
            gone = self.store.remove(rt.key, m.get("namespace", ""), m["name"])
            return Written(gone or new, 200, warnings)
        return Written(self.store.put(rt.key, new, added=False), 200, warnings)

    def _finalizable(self, rt: ResourceType, obj: Obj) -> bool:
        """Pods with a grace period left are removed by the kubelet, not by the last finalizer."""
        if rt.key != "pods":
            return True
        return (
            not obj["spec"].get("nodeName")
            or obj["metadata"].get("deletionGracePeriodSeconds", 0) == 0
        )

    def _carry_over(self, rt: ResourceType, old: Obj, obj: Obj, subresource: str) -> Obj:
        """Keep what the verb may not change: identity metadata, and status or spec."""
        if subresource == "status":
            new = clone(old)
            new["status"] = obj.get("status", {})
            return new
        m = obj["metadata"]
        if m.get("uid") and m["uid"] != old["metadata"]["uid"]:
            raise conflict(
                rt,
                m.get("name", ""),
                f"Precondition failed: UID in precondition: {m['uid']}, "
                f"UID in object meta: {old['metadata']['uid']}",
            )
        for key in IMMUTABLE_META:
            if key in old["metadata"]:
                m[key] = old["metadata"][key]
            else:
                m.pop(key, None)
        if rt.has_status and "status" in old:
            obj["status"] = old["status"]
        if "generation" in old["metadata"]:
            changed = obj.get("spec") != old.get("spec")
            m["generation"] = old["metadata"]["generation"] + (1 if changed else 0)
        return obj

    # -- helpers for controllers -------------------------------------------------------------
    def mutate(
        self, key: str, namespace: str, name: str, change: Callable[[Obj], None]
    ) -> Obj | None:
        """Apply ``change`` to a copy of the stored object and store it if anything changed."""
        old = self.store.get(key, namespace, name)
        if old is None:
            return None
        new = clone(old)
        change(new)
        if new == old:
            return old
        m = new["metadata"]
        if (
            m.get("deletionTimestamp")
            and not m.get("finalizers")
            and self._finalizable(CATALOG.by_key(key), new)
        ):
            return self.store.remove(key, namespace, name)
        return self.store.put(key, new, added=False)

    def create_internal(self, key: str, obj: Obj) -> Obj:
        """Create an object on behalf of the control plane (no auth, defaults applied)."""
        rt = CATALOG.by_key(key)
        return self.create(
            rt, obj.get("metadata", {}).get("namespace", ""), obj, WriteOptions()
        ).obj


def _key(obj: Obj) -> str:
    m = obj["metadata"]
    return f"{m.get('namespace', '')}/{m['name']}"


def int_or_400(text: str) -> int:
    try:
        return int(text)
    except ValueError as e:
        raise bad_request(f"invalid resource version: {text!r}") from e
