"""Writing a kubeconfig that kubectl, kubernetes_asyncio and KubeSpawner accept."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import yaml

CONTEXT = "kubesim"


def kubeconfig_document(
    url: str, token: str, *, namespace: str = "default", ca_pem: bytes | None = None
) -> dict[str, object]:
    """A kubeconfig with one cluster, one user (bearer token) and one current context."""
    cluster: dict[str, str] = {"server": url}
    if ca_pem is not None:
        cluster["certificate-authority-data"] = base64.b64encode(ca_pem).decode()
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": CONTEXT, "cluster": cluster}],
        "users": [{"name": CONTEXT, "user": {"token": token}}],
        "contexts": [
            {
                "name": CONTEXT,
                "context": {"cluster": CONTEXT, "user": CONTEXT, "namespace": namespace},
            }
        ],
        "current-context": CONTEXT,
        "preferences": {},
    }


def write_kubeconfig(
    path: str | os.PathLike[str],
    url: str,
    token: str,
    *,
    namespace: str = "default",
    ca_pem: bytes | None = None,
) -> Path:
    """Write the kubeconfig (mode 0600, as it holds a token) and return its path."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    document = kubeconfig_document(url, token, namespace=namespace, ca_pem=ca_pem)
    text = yaml.safe_dump(document, sort_keys=False)
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    return target
