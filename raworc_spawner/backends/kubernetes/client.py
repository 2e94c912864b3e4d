"""The only module that talks to the Kubernetes API server.

It wraps the real ``kubernetes_asyncio`` client: configuration is found in a documented order,
one API client (one connection pool) is shared, objects go in and out as plain dicts (no model
deserialization on hot paths), errors become the classes in ``apierrors``, and requests that
fail with 429, 5xx or a connection error are retried with exponential backoff and jitter,
honouring ``Retry-After``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from kubernetes_asyncio import client as k8s
from kubernetes_asyncio import config as k8s_config

from raworc_spawner.backends.kubernetes.apierrors import (
    APIError,
    APIUnreachable,
    error_for,
    is_retryable,
)
from raworc_spawner.errors import InvalidConfig

log = logging.getLogger(__name__)

#: resource → (API class, method suffix) of the generated client.
_RESOURCES: dict[str, tuple[type[Any], str]] = {
    "pods": (k8s.CoreV1Api, "namespaced_pod"),
    "persistentvolumeclaims": (k8s.CoreV1Api, "namespaced_persistent_volume_claim"),
    "events": (k8s.CoreV1Api, "namespaced_event"),
    "networkpolicies": (k8s.NetworkingV1Api, "namespaced_network_policy"),
    "leases": (k8s.CoordinationV1Api, "namespaced_lease"),
}
MERGE_PATCH = "application/merge-patch+json"
SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how patiently a failed request is sent again."""

    attempts: int = 5
    base_seconds: float = 0.1
    max_seconds: float = 5.0

    def delay(self, attempt: int, error: BaseException) -> float:
        """Seconds to wait before attempt ``attempt + 1`` (full jitter, or ``Retry-After``)."""
        retry_after = getattr(error, "retry_after", None)
        if retry_after:
            return float(min(retry_after, self.max_seconds * 4))
        ceiling = min(self.max_seconds, self.base_seconds * 2 ** (attempt - 1))
        return random.uniform(ceiling / 2, ceiling)


@dataclass(frozen=True, slots=True)
class ConnectionOptions:
    """Explicit connection settings (``KubernetesBackend.api_url``…); empty values mean "detect"."""

    api_url: str = ""
    token: str = ""
    token_file: str = ""
    ca_file: str = ""
    verify_tls: bool = True
    kubeconfig: str = ""
    context: str = ""
    pool_size: int = 256


class KubeClient:
    """Kubernetes API verbs on plain dicts, with retries. One instance per process."""

    def __init__(self, api: k8s.ApiClient, *, source: str, retry: RetryPolicy) -> None:
        self.api = api
        self.source = source
        self.retry = retry
        self._apis: dict[type[Any], Any] = {}

    @classmethod
    async def connect(
        cls, options: ConnectionOptions, *, retry: RetryPolicy | None = None
    ) -> KubeClient:
        """Find a configuration and build the shared client.

        Order: explicit ``api_url`` (with ``token``/``token_file``); in-cluster ServiceAccount;
        ``kubeconfig`` / ``KUBECONFIG`` / ``~/.kube/config``. If none works the error names
        every source tried and why it failed.
        """
        configuration, source = await load_configuration(options)
        configuration.connection_pool_maxsize = options.pool_size
        return cls(k8s.ApiClient(configuration), source=source, retry=retry or RetryPolicy())

    async def close(self) -> None:
        """Close the connection pool."""
        await self.api.close()

    # -- verbs --------------------------------------------------------------------------------

    async def create(self, resource: str, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST an object; returns the stored object."""
        return await self._json(self._method(resource, "create"), namespace, body)

    async def get(self, resource: str, namespace: str, name: str) -> dict[str, Any]:
        """GET one object."""
        return await self._json(self._method(resource, "read"), name, namespace)

    async def replace(
        self, resource: str, namespace: str, name: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        """PUT an object (409 Conflict when ``body``'s resourceVersion is stale)."""
        return await self._json(self._method(resource, "replace"), name, namespace, body)

    async def patch(
        self, resource: str, namespace: str, name: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        """PATCH an object with a JSON merge patch (RFC 7386); returns the stored object.

        A ``metadata.resourceVersion`` in ``body`` makes the patch conditional: 409 Conflict
        when the object changed since.
        """
        method = self._method(resource, "patch")
        return await self._json(method, name, namespace, body, _content_type=MERGE_PATCH)

    async def delete(
        self,
        resource: str,
        namespace: str,
        name: str,
        *,
        grace_period_seconds: int | None = None,
        uid: str | None = None,
        propagation: str = "Background",
    ) -> dict[str, Any]:
        """DELETE one object (only the one with ``uid`` when given)."""
        options: dict[str, Any] = {"propagationPolicy": propagation}
        if grace_period_seconds is not None:
            options["gracePeriodSeconds"] = grace_period_seconds
        if uid is not None:
            options["preconditions"] = {"uid": uid}
        return await self._json(self._method(resource, "delete"), name, namespace, body=options)

    async def list_page(
        self,
        resource: str,
        namespace: str,
        *,
        label_selector: str = "",
        field_selector: str = "",
        limit: int = 0,
        continue_token: str = "",
    ) -> dict[str, Any]:
        """LIST objects (one page when ``limit`` is set)."""
        kwargs: dict[str, Any] = {}
        if label_selector:
            kwargs["label_selector"] = label_selector
        if field_selector:
            kwargs["field_selector"] = field_selector
        if limit:
            kwargs["limit"] = limit
        if continue_token:
            kwargs["_continue"] = continue_token
        return await self._json(self._method(resource, "list"), namespace, **kwargs)

    async def list_all(
        self, resource: str, namespace: str, *, label_selector: str = "", page_size: int = 500
    ) -> tuple[list[dict[str, Any]], str]:
        """Every object, paging with ``continue``; returns (items, list resourceVersion)."""
        items: list[dict[str, Any]] = []
        token = ""
        while True:
            page = await self.list_page(
                resource,
                namespace,
                label_selector=label_selector,
                limit=page_size,
                continue_token=token,
            )
            items.extend(page.get("items") or [])
            token = (page.get("metadata") or {}).get("continue") or ""
            if not token:
                return items, str(page["metadata"].get("resourceVersion", ""))

    async def watch(
        self,
        resource: str,
        namespace: str,
        *,
        resource_version: str,
        label_selector: str = "",
        timeout_seconds: int = 300,
    ) -> AsyncIterator[dict[str, Any]]:
        """Stream watch events (``{"type", "object"}``) after ``resource_version``.

        Bookmarks are requested and passed through. An ``ERROR`` event raises the matching
        :class:`APIError` (``APIGone`` for 410). The stream ends when the server closes it.
        """
        kwargs: dict[str, Any] = {
            "watch": True,
            "resource_version": resource_version,
            "allow_watch_bookmarks": True,
            "timeout_seconds": timeout_seconds,
            "_request_timeout": (10, timeout_seconds + 30),
        }
        if label_selector:
            kwargs["label_selector"] = label_selector
        response = await self._send(self._method(resource, "list"), namespace, **kwargs)
        try:
            async for line in response.content:
                if not line.strip():
                    continue
                event = json.loads(line)
                if event.get("type") == "ERROR":
                    status = event.get("object") or {}
                    raise error_for(int(status.get("code") or 500), status, None)
                yield event
        except (aiohttp.ClientPayloadError, aiohttp.ClientConnectionError, TimeoutError) as e:
            raise APIUnreachable(f"watch of {resource} interrupted: {describe(e)}") from e
        finally:
            response.release()

    async def pod_logs(
        self, namespace: str, name: str, *, tail_lines: int | None, follow: bool
    ) -> AsyncIterator[str]:
        """A pod's container output, line by line."""
        core = self._api(k8s.CoreV1Api)
        kwargs: dict[str, Any] = {"follow": follow}
        if tail_lines is not None:
            kwargs["tail_lines"] = tail_lines
        if follow:
            kwargs["_request_timeout"] = (10, 3600)
        response = await self._send(core.read_namespaced_pod_log, name, namespace, **kwargs)
        try:
            async for line in response.content:
                yield line.decode(errors="replace")
        finally:
            response.release()

    async def list_pod_metrics(self, namespace: str, *, label_selector: str = "") -> list[Any]:
        """The PodMetrics of ``metrics.k8s.io/v1beta1`` in ``namespace``: one LIST, no retry.

        Usage is sampled again soon anyway, so a failure is not retried. Raises
        :class:`APINotFound` when the metrics API is not served (no metrics-server), and
        :class:`APIServerError` (503) when it is registered but its server is down.
        """
        api = self._api(k8s.CustomObjectsApi)
        kwargs: dict[str, Any] = {"label_selector": label_selector} if label_selector else {}
        response = await self._send_once(
            api.list_namespaced_custom_object,
            "metrics.k8s.io",
            "v1beta1",
            namespace,
            "pods",
            **kwargs,
        )
        try:
            page = await response.json(content_type=None)
        finally:
            response.release()
        return list(page.get("items") or [])

    async def can_i(self, verb: str, resource: str, namespace: str, *, group: str = "") -> bool:
        """SelfSubjectAccessReview: may these credentials do ``verb`` on ``resource``?"""
        authz = self._api(k8s.AuthorizationV1Api)
        body = {
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SelfSubjectAccessReview",
            "spec": {
                "resourceAttributes": {
                    "verb": verb,
                    "resource": resource,
                    "namespace": namespace,
                    "group": group,
                }
            },
        }
        review = await self._json(authz.create_self_subject_access_review, body)
        return bool((review.get("status") or {}).get("allowed"))

    async def get_namespace(self, name: str) -> dict[str, Any]:
        """GET a namespace."""
        return await self._json(self._api(k8s.CoreV1Api).read_namespace, name)

    async def get_storage_class(self, name: str) -> dict[str, Any]:
        """GET a StorageClass."""
        return await self._json(self._api(k8s.StorageV1Api).read_storage_class, name)

    async def list_storage_classes(self) -> list[dict[str, Any]]:
        """Every StorageClass."""
        page = await self._json(self._api(k8s.StorageV1Api).list_storage_class)
        return list(page.get("items") or [])

    async def version(self) -> dict[str, Any]:
        """The API server's ``/version``."""
        return await self._json(self._api(k8s.VersionApi).get_code)

    # -- plumbing -----------------------------------------------------------------------------

    def _api(self, cls: type[Any]) -> Any:
        api = self._apis.get(cls)
        if api is None:
            api = self._apis[cls] = cls(self.api)
        return api

    def _method(self, resource: str, verb: str) -> Callable[..., Awaitable[Any]]:
        try:
            cls, suffix = _RESOURCES[resource]
        except KeyError:
            raise ValueError(f"unsupported resource {resource!r}") from None
        return getattr(self._api(cls), f"{verb}_{suffix}")

    async def _json(self, method: Callable[..., Awaitable[Any]], *args: Any, **kwargs: Any) -> Any:
        response = await self._send(method, *args, **kwargs)
        try:
            return await response.json(content_type=None)
        finally:
            response.release()

    async def _send(self, method: Callable[..., Awaitable[Any]], *args: Any, **kwargs: Any) -> Any:
        """Send with retries; returns the raw (2xx) aiohttp response."""
        name = getattr(method, "__name__", "request")
        for attempt in range(1, self.retry.attempts + 1):
            try:
                return await self._send_once(method, *args, **kwargs)
            except APIError as e:
                error: BaseException = e
            except APIUnreachable as e:
                error = e
            if not is_retryable(error) or attempt == self.retry.attempts:
                raise error
            delay = self.retry.delay(attempt, error)
            log.warning(
                "%s: attempt %d/%d failed (%s); will retry in %.2fs",
                name,
                attempt,
                self.retry.attempts,
                error,
                delay,
            )
            await asyncio.sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _send_once(
        self, method: Callable[..., Awaitable[Any]], *args: Any, **kwargs: Any
    ) -> Any:
        try:
            response = await method(*args, _preload_content=False, **kwargs)
        except (aiohttp.ClientConnectionError, TimeoutError, OSError) as e:
            raise APIUnreachable(
                f"cannot reach the Kubernetes API ({self.source}): {describe(e)}"
            ) from e
        if 200 <= response.status < 300:
            return response
        try:
            body = await response.json(content_type=None)
        except (ValueError, aiohttp.ClientError):
            body = {"message": (await response.text())[:500]}
        finally:
            response.release()
        retry_after = _retry_after(response.headers.get("Retry-After"))
        raise error_for(response.status, body if isinstance(body, dict) else {}, retry_after)


def describe(error: BaseException) -> str:
    """An error in words, never empty (``TimeoutError()`` has no message of its own)."""
    text = str(error).strip()
    return text or f"{type(error).__name__} (no message)"


def _retry_after(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None


async def load_configuration(options: ConnectionOptions) -> tuple[k8s.Configuration, str]:
    """A client configuration and a description of where it came from."""
    tried: list[str] = []
    if options.api_url:
        return _explicit(options), f"api_url {options.api_url}"
    tried.append("explicit api_url: not set")
    if os.environ.get("KUBERNETES_SERVICE_HOST") and SERVICE_ACCOUNT_DIR.is_dir():
        configuration = k8s.Configuration()
        try:
            k8s_config.load_incluster_config(client_configuration=configuration)
            return configuration, "in-cluster ServiceAccount"
        except k8s_config.ConfigException as e:
            tried.append(f"in-cluster ServiceAccount: {describe(e)}")
    else:
        tried.append("in-cluster ServiceAccount: not running in a pod")
    path = options.kubeconfig or os.environ.get("KUBECONFIG", "").split(os.pathsep)[0]
    path = os.path.expanduser(path or "~/.kube/config")
    if Path(path).is_file():
        configuration = k8s.Configuration()
        try:
            await k8s_config.load_kube_config(
                config_file=path,
                context=options.context or None,
                client_configuration=configuration,
                persist_config=False,
            )
            return configuration, f"kubeconfig {path}"
        except (k8s_config.ConfigException, OSError, ValueError, KeyError) as e:
            tried.append(f"kubeconfig {path}: {describe(e)}")
    else:
        tried.append(f"kubeconfig {path}: no such file")
    raise InvalidConfig(
        "KubernetesBackend.api_url",
        options.api_url,
        "a way to reach the API server; tried " + "; ".join(tried),
    )


def _explicit(options: ConnectionOptions) -> k8s.Configuration:
    configuration = k8s.Configuration(host=options.api_url.rstrip("/"))
    token = options.token
    if not token and options.token_file:
        try:
            token = Path(options.token_file).read_text().strip()
        except OSError as e:
            raise InvalidConfig(
                "KubernetesBackend.api_token_file", options.token_file, f"a readable file ({e})"
            ) from e
    if token:
        configuration.api_key = {"BearerToken": f"Bearer {token}"}
    if options.ca_file:
        configuration.ssl_ca_cert = options.ca_file
    configuration.verify_ssl = options.verify_tls
    return configuration
