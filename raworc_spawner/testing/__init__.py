"""Test helpers that other projects can use too; chiefly kubesim, a simulated Kubernetes API.

>>> from raworc_spawner.testing import KubeSim, KubeSimConfig   # doctest: +SKIP
"""

from .kubesim import (
    Counters,
    ErrorRule,
    Faults,
    KubeSim,
    KubeSimConfig,
    NodeSpec,
    Rule,
    StorageClassSpec,
    Timings,
    TokenPolicy,
)
from .kubesim.process import KubeSimProcess

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
