"""kubesim: a simulated Kubernetes API server and kubelet that real clients (kubectl,
kubernetes_asyncio, KubeSpawner) talk to over HTTP(S) on 127.0.0.1.

Independent of raworc_spawner (an import-linter contract keeps it so); see README.md beside this
file.

>>> from kubesim import KubeSim, KubeSimConfig   # doctest: +SKIP
"""

from .config import KubeSimConfig, NodeSpec, Rule, StorageClassSpec, Timings, TokenPolicy
from .faults import Counters, ErrorRule, Faults
from .process import KubeSimProcess
from .server import KubeSim

__all__ = [
    "Counters",
    "ErrorRule",
    "Faults",
    "KubeSim",
    "KubeSimConfig",
    "KubeSimProcess",
    "NodeSpec",
    "Rule",
    "StorageClassSpec",
    "Timings",
    "TokenPolicy",
]
