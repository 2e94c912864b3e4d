"""RaworcApp: configuration from every source, and the server's start and stop.

Sources, lowest to highest precedence: trait defaults; environment variables and a ``.env`` file
(the seed's ``KUBERNETES_*`` names and ``RAWORC_*``); the Python config file
(``raworc_config.py``, or ``--config``); command-line flags. Every value is validated at start-up
and a bad one stops the server with a message naming the setting, the value and what is allowed.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import secrets
import signal
import socket
import sys
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from dotenv import dotenv_values
from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets
from traitlets import Bool, Dict, Float, Int, TraitError, Unicode, Union, validate
from traitlets.config import Application, Config, Configurable, PyFileConfigLoader

from raworc_spawner import __version__
from raworc_spawner.backends.kubernetes.backend import KubernetesBackend
from raworc_spawner.backends.kubernetes.settings import KubernetesSettings
from raworc_spawner.backends.local import LocalBackend
from raworc_spawner.core import Core, CoreSettings
from raworc_spawner.errors import InvalidConfig
from raworc_spawner.handlers import ProxyLimits, end_streams, make_web_app
from raworc_spawner.handlers.auth import TokenAuthenticator
from raworc_spawner.hub.service import (
    HubTokenAuthenticator,
    PrefixedApplication,
    service_address,
    service_prefix,
)
from raworc_spawner.leadership import LeaderElection
from raworc_spawner.logs import LogSpecError, configure_logging, parse_log_spec
from raworc_spawner.sessions.culler import Culler
from raworc_spawner.sessions.manager import SessionManager
from raworc_spawner.sessions.model import Principal
from raworc_spawner.sessions.reconcile import Reconciler

#: Environment variables (and ``.env`` keys) → (class, trait).
ENV_SETTINGS: dict[str, tuple[str, str]] = {
    "KUBERNETES_ENABLED": ("RaworcApp", "kubernetes_enabled"),
    "KUBERNETES_NAMESPACE": ("KubernetesSettings", "namespace"),
    "KUBERNETES_IMAGE": ("KubernetesSettings", "image"),
    "KUBERNETES_IMAGE_PULL_POLICY": ("KubernetesSettings", "image_pull_policy"),
    "KUBERNETES_CPU_REQUEST": ("KubernetesSettings", "cpu_request"),
    "KUBERNETES_MEMORY_REQUEST": ("KubernetesSettings", "memory_request"),
    "KUBERNETES_CPU_LIMIT": ("KubernetesSettings", "cpu_limit"),
    "KUBERNETES_MEMORY_LIMIT": ("KubernetesSettings", "memory_limit"),
    "KUBERNETES_STORAGE_SIZE": ("KubernetesSettings", "storage_size"),
    "KUBERNETES_STORAGE_CLASS": ("KubernetesSettings", "storage_class"),
    "RAWORC_HOST": ("RaworcApp", "ip"),
    "RAWORC_PORT": ("RaworcApp", "port"),
    "RAWORC_DATA_DIR": ("RaworcApp", "data_dir"),
    "RAWORC_DB_URL": ("RaworcApp", "db_url"),
    "RAWORC_INSTANCE_NAME": ("RaworcApp", "instance_name"),
    "RAWORC_ADMIN_TOKEN": ("RaworcApp", "admin_token"),
    "RAWORC_LOG": ("RaworcApp", "log_spec"),
    "RAWORC_LOG_FILE": ("RaworcApp", "log_file"),
}
#: Accepted for compatibility with the original product's documentation; RAWORC_LOG wins.
ENV_ALIASES = {"RUST_LOG": "RAWORC_LOG"}


class RaworcApp(Application):
    """The raworc-spawner server: REST API and pages over the session manager."""

    name = "raworc-spawner"
    description = "Sessions with their own compute and a persistent workspace."
    version = __version__

    classes = [
        SessionManager,
        Reconciler,
        Culler,
        LocalBackend,
        KubernetesBackend,
        KubernetesSettings,
        LeaderElection,
    ]

    aliases = {
        "ip": "RaworcApp.ip",
        "port": "RaworcApp.port",
        "data-dir": "RaworcApp.data_dir",
        "db-url": "RaworcApp.db_url",
        "config": "RaworcApp.config_file",
        "log": "RaworcApp.log_spec",
        "log-file": "RaworcApp.log_file",
        "log-level": "Application.log_level",
    }
    flags = {
        "kubernetes": (
            {"RaworcApp": {"kubernetes_enabled": True}},
            "Run sessions on Kubernetes (KUBERNETES_ENABLED=true).",
        ),
        "local": (
            {"RaworcApp": {"kubernetes_enabled": False}},
            "Run sessions as local processes (the default).",
        ),
    }

    config_file = Unicode(
        "raworc_config.py",
        help="""Python config file (``c.RaworcApp.port = 9000``). Relative to the working
        directory; a missing default file is ignored, a missing explicit one is an error.""",
    ).tag(config=True)

    env_file = Unicode(
        ".env",
        help="""A ``.env`` file of ``KEY=value`` lines read like environment variables (real
        environment variables win). Empty disables it.""",
    ).tag(config=True)

    ip = Unicode("127.0.0.1", help="""Address the server listens on (RAWORC_HOST).""").tag(
        config=True
    )

    port = Int(
        9000,
        help="""TCP port the server listens on (RAWORC_PORT). 0 picks a free port.""",
    ).tag(config=True)

    data_dir = Unicode(
        "data",
        help="""Directory for the SQLite store, workspaces, logs and generated secrets
        (RAWORC_DATA_DIR). Relative to the working directory.""",
    ).tag(config=True)

    db_url = Unicode(
        "",
        help="""SQLAlchemy URL of the store (RAWORC_DB_URL), e.g.
        ``postgresql+asyncpg://user:pass@host/db``. Empty means SQLite at
        ``<data_dir>/raworc.sqlite``.""",
    ).tag(config=True)

    instance_name = Unicode(
        "",
        help="""The owner instance this server's sessions belong to (RAWORC_INSTANCE_NAME): every
        pod and PVC it creates carries it (label and annotation ``raworc.dev/instance``), and
        it acts only on objects of its own instance; others are listed by ``cleanup`` and
        ``doctor``, never touched. Replicas of one server share it. Empty (the default) derives
        ``raworc-<hash>`` from the store's location (without credentials) and the Kubernetes
        namespace, so a server whose store is reset in place keeps its name and re-adopts its
        sessions. Set it explicitly when the store moves, and give each deployment on one
        namespace its own. 1 to 59 characters: letters, digits, ``-``, ``_``, ``.``.""",
    ).tag(config=True)

    hub_auth = Bool(
        False,
        help="""Run as a JupyterHub service: accept hub user tokens (hub admins are raworc
        admins), serve under JUPYTERHUB_SERVICE_PREFIX and listen on JUPYTERHUB_SERVICE_URL.
        The server's own tokens keep working. Sessions the hub's spawner made are left to the
        hub's own manager (SessionManager.handle_hub_sessions is turned off).""",
    ).tag(config=True)

    kubernetes_enabled = Bool(
        False,
        help="""Run sessions on Kubernetes (KUBERNETES_ENABLED). False runs them as local
        processes with workspace directories.""",
    ).tag(config=True)

    admin_token = Unicode(
        "",
        help="""Bearer token of the admin user (RAWORC_ADMIN_TOKEN). Empty means one is
        generated once and kept in ``<data_dir>/admin-token`` (mode 0600).""",
    ).tag(config=True)

    admin_user = Unicode("admin", help="""User name of the admin token.""").tag(config=True)

    api_tokens = Dict(
        value_trait=Union([Unicode(), Dict()]),
        help="""More bearer tokens: ``{token: user}`` or ``{token: {"user": u, "admin": bool}}``.
        A key may be ``sha256:<hex digest>`` instead of the token itself.""",
    ).tag(config=True)

    log_spec = Unicode(
        "info",
        help="""Log levels (RAWORC_LOG, or RUST_LOG): a default level, then ``target=level``
        entries, e.g. ``debug,raworc::kubernetes=trace,tornado.access=warn``. Levels: trace,
        debug, info, warn, error, off.""",
    ).tag(config=True)

    log_file = Unicode(
        "",
        help="""Also write logs to this file (e.g. ``logs/raworc.log``). Empty: console only.""",
    ).tag(config=True)

    max_body_bytes = Int(
        1024 * 1024,
        help="""Largest request body accepted, in bytes; larger ones get 413.""",
    ).tag(config=True)

    proxy_wake_timeout_seconds = Float(
        120.0,
        help="""Seconds a request to a sleeping session waits for it to wake before it gets 503
        with Retry-After.""",
    ).tag(config=True)

    proxy_max_waiting = Int(
        100,
        help="""Requests that may wait at once for one session to wake; more get 503 at once.""",
    ).tag(config=True)

    proxy_max_body_bytes = Int(
        1024**3,
        help="""Largest request body the session proxy passes through, in bytes (it is
        streamed, never held in memory whole).""",
    ).tag(config=True)

    proxy_request_timeout_seconds = Float(
        3600.0,
        help="""Longest time one proxied request may take (streams included), in seconds.""",
    ).tag(config=True)

    shutdown_grace_seconds = Int(
        10,
        help="""Seconds to let requests in flight finish when the server is told to stop.""",
    ).tag(config=True)

    @validate("port")
    def _check_port(self, proposal: dict[str, Any]) -> int:
        value = int(proposal["value"])
        if not 0 <= value <= 65535:
            raise InvalidConfig("RaworcApp.port", value, "a TCP port from 1 to 65535 (0: any)")
        return value

    @validate("log_spec")
    def _check_log_spec(self, proposal: dict[str, Any]) -> str:
        try:
            parse_log_spec(proposal["value"])
        except LogSpecError as e:
            raise InvalidConfig("RaworcApp.log_spec", proposal["value"], str(e)) from e
        return str(proposal["value"])

    @validate("max_body_bytes")
    def _check_body(self, proposal: dict[str, Any]) -> int:
        if proposal["value"] < 1024:
            raise InvalidConfig("RaworcApp.max_body_bytes", proposal["value"], "at least 1024")
        return int(proposal["value"])

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.env_config = Config()
        self.file_config = Config()
        self.env_sources: dict[tuple[str, str], str] = {}
        self.bound_port = 0
        self._http: HTTPServer | None = None
        self._stopping: asyncio.Event | None = None

    # -- configuration ------------------------------------------------------------------------

    def initialize(self, argv: list[str] | None = None) -> None:
        """Load every configuration source and validate the result (raises InvalidConfig)."""
        self.parse_command_line(argv)
        if self.subapp is not None:  # --help-all and friends exit in parse_command_line
            return
        self._load_env()
        self._load_file()
        self.validate_settings()

    def _load_env(self) -> None:
        env: dict[str, str] = {}
        env_file = Path(self.env_file) if self.env_file else None
        if env_file is not None and env_file.is_file():
            env.update({k: v for k, v in dotenv_values(env_file).items() if v is not None})
        env.update(os.environ)
        for alias, name in ENV_ALIASES.items():
            if alias in env and name not in env:
                env[name] = env[alias]
        classes = {cls.__name__: cls for cls in configurable_classes()}
        for var, (cls_name, trait_name) in ENV_SETTINGS.items():
            if var not in env:
                continue
            trait = classes[cls_name].class_traits()[trait_name]
            try:
                value = trait.from_string(env[var])
            except (TraitError, ValueError) as e:
                raise InvalidConfig(var, env[var], str(e)) from e
            self.env_config[cls_name][trait_name] = value
            self.env_sources[(cls_name, trait_name)] = f"env {var}"
        self.update_config(self.env_config)
        # The environment comes after the command line was parsed: flags must still win.
        self.update_config(self.cli_config)

    def _load_file(self) -> None:
        explicit = "config_file" in self.cli_config.get("RaworcApp", {})
        path = Path(self.config_file)
        if not path.is_file():
            if explicit:
                raise InvalidConfig("RaworcApp.config_file", str(path), "an existing file")
            return
        loader = PyFileConfigLoader(path.name, path=str(path.parent.resolve()), log=self.log)
        self.file_config = loader.load_config()
        self.load_config_file(path.name, path=str(path.parent.resolve()))

    def validate_settings(self) -> None:
        """Instantiate every configurable once so their validators run now, not later.

        A value of the wrong type or out of range becomes :class:`InvalidConfig` naming the
        setting and the value (never a traceback).
        """
        with _as_invalid_config(self.config):
            KubernetesSettings(parent=self)
            LocalBackend(parent=self)
            SessionManager(parent=self, store=None, backend=None)  # type: ignore[arg-type]
            Reconciler(parent=self, manager=None)  # type: ignore[arg-type]
            Culler(parent=self, manager=None)  # type: ignore[arg-type]
        self.principals()

    def setting_sources(self) -> list[tuple[str, str, Any, str]]:
        """Every setting as (class, trait, effective value, where it came from)."""
        rows = []
        for cls in configurable_classes():
            section = cls.__name__
            for name, trait in sorted(cls.class_traits(config=True).items()):
                if cls is RaworcApp:
                    value = getattr(self, name)
                elif name in self.config[section]:
                    value = self.config[section][name]
                else:
                    value = trait.default()
                rows.append((section, name, value, self.source_of(section, name)))
        return rows

    def source_of(self, section: str, name: str) -> str:
        """Where setting ``section.name`` came from: command line, config file, env, default."""
        if name in self.cli_config.get(section, {}):
            return "command line"
        if name in self.file_config.get(section, {}):
            return f"config file {self.config_file}"
        return self.env_sources.get((section, name), "default")

    # -- paths and secrets --------------------------------------------------------------------

    @property
    def data_path(self) -> Path:
        """The data directory, absolute."""
        return Path(self.data_dir).resolve()

    def effective_db_url(self) -> str:
        """The store URL: ``db_url``, or SQLite in the data directory."""
        return self.db_url or f"sqlite+aiosqlite:///{self.data_path / 'raworc.sqlite'}"

    def ensure_admin_token(self) -> str:
        """The admin token: configured, or read from / generated into ``<data_dir>/admin-token``."""
        if self.admin_token:
            return self.admin_token
        return _secret_file(self.data_path / "admin-token", lambda: secrets.token_hex(32))

    def cookie_secret(self) -> bytes:
        """The secret that signs page cookies, generated once into the data directory."""
        secret = _secret_file(self.data_path / "cookie-secret", lambda: secrets.token_hex(32))
        return secret.encode()

    def principals(self) -> dict[str, Principal]:
        """Every configured token (or ``sha256:`` digest) and the principal it stands for."""
        tokens: dict[str, Principal] = {}
        for token, who in self.api_tokens.items():
            if isinstance(who, str):
                tokens[token] = Principal(who)
                continue
            user = who.get("user")
            unknown = set(who) - {"user", "admin"}
            if not isinstance(user, str) or not user or unknown:
                raise InvalidConfig(
                    "RaworcApp.api_tokens",
                    {**who},
                    'each value must be a user name or {"user": name, "admin": true|false}',
                )
            tokens[token] = Principal(user, admin=bool(who.get("admin", False)))
        return tokens

    # -- services -----------------------------------------------------------------------------

    def core_settings(self) -> CoreSettings:
        """What the server's core is built from."""
        return CoreSettings(
            data_dir=str(self.data_path),
            db_url=self.effective_db_url(),
            kubernetes_enabled=self.kubernetes_enabled,
            # As a hub service the hub's spawner writes these sessions too.
            shared_store=self.hub_auth,
            hub_service=self.hub_auth,
            instance_name=self.instance_name,
        )

    async def start_services(self) -> None:
        """Open the store, start the backend and manager, reconcile, and start listening."""
        configure_logging(self.log_spec, log_file=self.log_file)
        self.core = Core(self.core_settings(), parent=self)
        await self.core.start()
        self.manager = self.core.manager
        tokens = {self.ensure_admin_token(): Principal(self.admin_user, admin=True)}
        tokens.update(self.principals())
        self.web_app = web_app = make_web_app(
            manager=self.manager,
            auth=HubTokenAuthenticator(tokens) if self.hub_auth else TokenAuthenticator(tokens),
            max_body_bytes=self.max_body_bytes,
            cookie_secret=self.cookie_secret(),
            proxy=ProxyLimits(
                wake_timeout_seconds=self.proxy_wake_timeout_seconds,
                max_waiting=self.proxy_max_waiting,
                request_timeout_seconds=self.proxy_request_timeout_seconds,
                max_body_bytes=self.proxy_max_body_bytes,
            ),
        )
        served: Any = PrefixedApplication(web_app, service_prefix()) if self.hub_auth else web_app
        self._http = HTTPServer(served, xheaders=True, max_body_size=self.max_body_bytes * 4)
        ip, port = (service_address() if self.hub_auth else None) or (self.ip, self.port)
        sockets = bind_sockets(port, ip, family=_family(ip))
        self._http.add_sockets(sockets)
        self.bound_port = sockets[0].getsockname()[1]

    async def stop_services(self) -> None:
        """Stop listening, finish requests in flight, then stop the manager and the store."""
        if self._http is not None:
            self._http.stop()
            end_streams(self.web_app)
            try:
                await asyncio.wait_for(
                    self._http.close_all_connections(), self.shutdown_grace_seconds
                )
            except TimeoutError:
                self.log.warning("connections still open after %ss", self.shutdown_grace_seconds)
        await self.core.close()

    @property
    def url(self) -> str:
        """The URL the server answers on."""
        host = "127.0.0.1" if self.ip in ("", "0.0.0.0") else self.ip
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{self.bound_port}"

    async def serve(self) -> None:
        """Run until SIGINT or SIGTERM."""
        await self.start_services()
        token_source = "RAWORC_ADMIN_TOKEN" if self.admin_token else self.data_path / "admin-token"
        print(f"raworc-spawner {__version__} listening on {self.url}", flush=True)
        print(f"  backend: {self.manager.backend_name}; data: {self.data_path}", flush=True)
        print(f"  admin token ({token_source}): {self.ensure_admin_token()}", flush=True)
        self._stopping = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self._stopping.set)
        await self._stopping.wait()
        print("raworc-spawner: stopping", flush=True)
        await self.stop_services()

    def start(self) -> None:
        """Serve (the ``serve`` verb)."""
        asyncio.run(self.serve())


def configurable_classes() -> list[type[Configurable]]:
    """Every class whose settings the server reads, the app first."""
    return [RaworcApp, *RaworcApp.classes]


def _secret_file(path: Path, make: Callable[[], str]) -> str:
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    value = make()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(value + "\n")
    return value


#: traitlets' wording: "The 'port' trait of a RaworcApp instance expected an int, not …".
_TRAIT_ERROR = re.compile(
    r"The (?:value of the )?'(?P<trait>\w+)' trait of an? (?P<cls>\w+) instance (?P<why>.*)",
    re.S,
)


@contextlib.contextmanager
def _as_invalid_config(config: Config) -> Iterator[None]:
    """Turn a traitlets ``TraitError`` (or a constructor's ``ValueError``) into InvalidConfig."""
    try:
        yield
    except TraitError as e:
        match = _TRAIT_ERROR.match(str(e))
        if match is None:
            raise InvalidConfig("configuration", "", str(e)) from e
        cls, trait = match["cls"], match["trait"]
        value = config[cls][trait] if trait in config.get(cls, {}) else "?"
        raise InvalidConfig(f"{cls}.{trait}", value, match["why"].strip()) from e
    except ValueError as e:
        raise InvalidConfig("configuration", "", str(e)) from e


def _family(ip: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in ip else socket.AF_UNSPEC


def describe_config_error(error: InvalidConfig, sources: Mapping[tuple[str, str], str]) -> str:
    """A one-line message for a bad setting, saying where the value came from if known."""
    for (cls_name, trait_name), source in sources.items():
        if error.setting == f"{cls_name}.{trait_name}":
            return f"{error.message} (from {source})"
    return error.message


def exit_with_config_error(error: InvalidConfig, app: RaworcApp | None = None) -> None:
    """Print a bad setting and exit with status 2 (the conventional usage-error status)."""
    sources: dict[tuple[str, str], str] = {}
    if app is not None and "." in error.setting:
        section, _, name = error.setting.partition(".")
        source = app.source_of(section, name)
        if source == "default" and (section, name) in app.env_sources:
            source = app.env_sources[(section, name)]
        if source not in ("default", "command line"):  # what the user typed needs no pointer
            sources[(section, name)] = source
    message = describe_config_error(error, sources)
    print(f"raworc-spawner: configuration error: {message}", file=sys.stderr)
    sys.exit(2)
