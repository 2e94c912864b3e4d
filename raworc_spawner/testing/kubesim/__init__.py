"""kubesim: a simulated Kubernetes API server that real clients (kubectl, kubernetes_asyncio,
KubeSpawner) talk to over HTTP on 127.0.0.1."""

from .config import KubeSimConfig, NodeSpec, Rule, StorageClassSpec, Timings, TokenPolicy
from .faults import Counters, ErrorRule, Faults
from .server import KubeSim

__all__ = [
    "Counters",
    "ErrorRule",
    "Faults",
    "KubeSim",
    "KubeSimConfig",
    "NodeSpec",
    "Rule",
    "StorageClassSpec",
    "Timings",
    "TokenPolicy",
]
