# JupyterHub configuration for raworc-spawner: every user server is a raworc session.
#
#   jupyterhub -f jupyterhub_config.py            # local processes, workspaces in ./data
#   KUBERNETES_ENABLED=true jupyterhub -f ...     # a pod + PVC per server (see below)
#   RAWORC_HUB_DEMO=1 jupyterhub -f ...           # any user name, password "demo" (try-out only)
#
# Needs: pip install 'raworc-spawner[hub]' and configurable-http-proxy (npm). Every setting of
# the raworc classes used here (c.RaworcSpawner, c.LocalBackend, c.KubernetesSettings,
# c.KubernetesBackend, c.SessionManager, c.Reconciler) is documented in docs/configuration.md
# and docs/jupyterhub.md.

import os
import sys
from pathlib import Path

c = get_config()  # noqa: F821 (provided by JupyterHub when it loads this file)


def env(name, default=""):
    """An environment variable, stripped; ``default`` when unset or empty."""
    return os.environ.get(name, "").strip() or default


def env_flag(name):
    return env(name).lower() in ("1", "true", "yes", "on")


DATA_DIR = Path(env("RAWORC_DATA_DIR", "data")).resolve()
KUBERNETES = env_flag("KUBERNETES_ENABLED")
DEMO = env_flag("RAWORC_HUB_DEMO")

# -- The hub ------------------------------------------------------------------------------------
c.JupyterHub.bind_url = env("RAWORC_HUB_BIND_URL", "http://127.0.0.1:8000")
c.ConfigurableHTTPProxy.api_url = env("RAWORC_HUB_PROXY_API_URL", "http://127.0.0.1:8001")
if env("RAWORC_HUB_HUB_BIND_URL"):  # where the hub's own API listens (default 127.0.0.1:8081)
    c.JupyterHub.hub_bind_url = env("RAWORC_HUB_HUB_BIND_URL")
# Hub state lives beside the sessions' data; the cookie secret is generated once (mode 0600).
c.JupyterHub.db_url = env("RAWORC_HUB_DB_URL", f"sqlite:///{DATA_DIR / 'jupyterhub.sqlite'}")
c.JupyterHub.cookie_secret_file = str(DATA_DIR / "jupyterhub_cookie_secret")
c.ConfigurableHTTPProxy.pid_file = str(DATA_DIR / "jupyterhub-proxy.pid")
c.JupyterHub.pid_file = str(DATA_DIR / "jupyterhub.pid")
DATA_DIR.mkdir(parents=True, exist_ok=True)
# Stopping the hub leaves user servers running; the next hub re-attaches to them.
c.JupyterHub.cleanup_servers = False
c.JupyterHub.allow_named_servers = True
c.JupyterHub.named_server_limit_per_user = int(env("RAWORC_HUB_NAMED_SERVER_LIMIT", "5"))

# -- Who may log in -----------------------------------------------------------------------------
if DEMO:
    # Demo only: anyone may log in with the shared password. Never expose this hub.
    c.JupyterHub.authenticator_class = "dummy"
    c.DummyAuthenticator.password = env("RAWORC_HUB_DEMO_PASSWORD", "demo")
    c.Authenticator.allow_all = True
    c.Authenticator.admin_users = {"admin"}
else:
    # Use your organisation's authenticator here (OAuthenticator, LDAP…). The default, PAM,
    # accepts this machine's users; RAWORC_HUB_ADMINS lists hub admins (also raworc admins).
    c.Authenticator.admin_users = {u for u in env("RAWORC_HUB_ADMINS").split(",") if u}
    c.Authenticator.allowed_users = {u for u in env("RAWORC_HUB_USERS").split(",") if u}

# -- User servers: raworc sessions --------------------------------------------------------------
c.JupyterHub.spawner_class = "raworc"
c.RaworcSpawner.data_dir = str(DATA_DIR)  # the session store (and local workspaces)
c.RaworcSpawner.db_url = env("RAWORC_DB_URL")  # empty: SQLite in DATA_DIR; or PostgreSQL
c.RaworcSpawner.kubernetes_enabled = KUBERNETES
# Hub limits become the session's Kubernetes requests/limits (cpu in cores, memory in bytes).
c.RaworcSpawner.cpu_limit = float(env("RAWORC_HUB_CPU_LIMIT", "1"))
c.RaworcSpawner.mem_limit = env("RAWORC_HUB_MEM_LIMIT", "1G")

if KUBERNETES:
    # The seed's settings, from the environment (or set c.KubernetesSettings.* directly).
    for variable, setting in {
        "KUBERNETES_NAMESPACE": "namespace",
        "KUBERNETES_IMAGE": "image",
        "KUBERNETES_IMAGE_PULL_POLICY": "image_pull_policy",
        "KUBERNETES_CPU_REQUEST": "cpu_request",
        "KUBERNETES_MEMORY_REQUEST": "memory_request",
        "KUBERNETES_CPU_LIMIT": "cpu_limit",
        "KUBERNETES_MEMORY_LIMIT": "memory_limit",
        "KUBERNETES_STORAGE_SIZE": "storage_size",
        "KUBERNETES_STORAGE_CLASS": "storage_class",
    }.items():
        if env(variable):
            setattr(c.KubernetesSettings, setting, env(variable))
    # The image must contain jupyterhub-singleuser (the seed's python:3.11-slim does not).
    c.KubernetesSettings.image = env("KUBERNETES_IMAGE", "quay.io/jupyter/base-notebook:latest")
    # Pods must reach the hub's API: listen on all addresses and tell pods where the hub is
    # (a Service in front of the hub, when the hub runs in the cluster).
    c.JupyterHub.hub_bind_url = env("RAWORC_HUB_HUB_BIND_URL", "http://0.0.0.0:8081")
    c.JupyterHub.hub_connect_url = env("RAWORC_HUB_CONNECT_URL", "http://jupyterhub:8081")
    c.RaworcSpawner.start_timeout = 300  # image pulls and volume binding take time
    c.RaworcSpawner.http_timeout = 120
    # Profiles offered on the spawn page ("profile" in the REST API's user_options).
    c.KubernetesSettings.profiles = {
        "small": {"description": "1 CPU, 2 GiB", "cpu_limit": "1", "memory_limit": "2Gi"},
        "large": {
            "description": "4 CPU, 16 GiB, 50 GiB workspace",
            "cpu_limit": "4",
            "memory_limit": "16Gi",
            "storage_size": "50Gi",
        },
    }
    c.KubernetesSettings.default_profile = "small"
    # The workspace PVC (KUBERNETES_STORAGE_SIZE/CLASS) survives stops; deleting the server
    # or the user deletes it. Sessions run as a non-root user, without privilege escalation.
    c.KubernetesSettings.run_as_user = 1000
    c.KubernetesSettings.fs_group = 100
else:
    # Each server is a local process in <data>/workspaces/<session id>, its working directory.
    c.LocalBackend.stop_grace_seconds = 10
    if os.getuid() == 0:
        c.Spawner.args = ["--allow-root"]  # containers often run as root; jupyter_server asks

# -- Idle culling: idle servers are stopped, their workspace stays ------------------------------
# jupyterhub-idle-culler stops servers idle for RAWORC_HUB_IDLE_TIMEOUT seconds (the session is
# scaled to zero, the workspace kept); users are never deleted by it.
c.JupyterHub.services = [
    {
        "name": "idle-culler",
        "command": [
            sys.executable,
            "-m",
            "jupyterhub_idle_culler",
            f"--timeout={env('RAWORC_HUB_IDLE_TIMEOUT', '3600')}",
        ],
    }
]
c.JupyterHub.load_roles = [
    {
        "name": "idle-culler",
        "scopes": ["list:users", "read:users:activity", "read:servers", "delete:servers"],
        "services": ["idle-culler"],
    }
]

# -- The session API and pages inside the hub (opt-in) ------------------------------------------
# RAWORC_HUB_SERVICE=1 runs the raworc server as a hub service at /services/raworc/: hub users
# use their hub tokens there, hub admins are raworc admins, and it shares the spawner's store.
# It runs the server's hub mode (RaworcApp.hub_auth; see docs/jupyterhub.md), listening on
# RAWORC_HUB_SERVICE_URL (default http://127.0.0.1:9000).
if env_flag("RAWORC_HUB_SERVICE"):
    c.JupyterHub.services.append(
        {
            "name": "raworc",
            "url": env("RAWORC_HUB_SERVICE_URL") or "http://127.0.0.1:9000",
            "command": [
                str(Path(sys.executable).parent / "raworc-spawner"),
                "serve",
                "--RaworcApp.hub_auth=True",
                f"--data-dir={DATA_DIR}",
                # The hub owns its servers' lifecycle: no periodic reconciliation here.
                "--Reconciler.interval_seconds=0",
            ]
            + ([f"--db-url={env('RAWORC_DB_URL')}"] if env("RAWORC_DB_URL") else [])
            + (["--kubernetes"] if KUBERNETES else []),
            "display": True,
        }
    )
    c.JupyterHub.load_roles.append(
        {"name": "raworc-service", "scopes": ["read:users"], "services": ["raworc"]}
    )
