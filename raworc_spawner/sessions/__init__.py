"""The session core: model, state machine, manager. Knows nothing of HTTP or Kubernetes objects."""
