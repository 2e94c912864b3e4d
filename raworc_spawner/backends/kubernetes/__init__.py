"""The Kubernetes backend: a PVC ``session-pvc-{id}`` and a pod ``session-{id}`` per session."""
