"""raworc-spawner: a pod and a persistent workspace per session, for JupyterHub-style platforms."""

__version__ = "0.1.0"
