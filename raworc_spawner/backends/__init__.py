"""Compute backends: where sessions' compute and workspaces live (processes or Kubernetes)."""
