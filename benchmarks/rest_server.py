"""The HTTP servers of the REST and wake scenarios, each in a process of its own.

``python -m benchmarks.rest_server raworc --sessions 10000``: the raworc-spawner server
(:class:`RaworcApp`, local backend, SQLite) with ``--sessions`` idle sessions already in its
store. ``python -m benchmarks.rest_server hello``: a raw Tornado hello-world handler.
``python -m benchmarks.rest_server raworc-k8s --api-url URL --api-token T``: the server on the
Kubernetes backend (kubesim), empty store. Each prints one JSON line (``url``, ``token``,
``session_id``) once it listens, then serves until SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa
import tornado.web
from traitlets.config import Config

from benchmarks.sides import NAMESPACE
from raworc_spawner.app import RaworcApp
from raworc_spawner.sessions.model import Session, SessionState, new_session_id
from raworc_spawner.store import SessionStore
from raworc_spawner.store.schema import session_values, sessions_table

TOKEN = "bench-rest-admin"


class HelloHandler(tornado.web.RequestHandler):
    def get(self) -> None:
        self.write("Hello, world")


async def fill_store(data_dir: Path, count: int) -> str:
    """``count`` idle sessions in the server's SQLite store; returns one of their ids."""
    store = SessionStore.sqlite_in(data_dir)
    await store.open()  # creates the schema
    await store.close()
    start = datetime.now(UTC) - timedelta(days=1)
    rows = [
        session_values(
            Session(
                id=new_session_id(), name=f"session-{i:05d}", owner=f"user-{i % 100}",
                state=SessionState.IDLE, waiting_timeout_seconds=0,
                created_at=start + timedelta(seconds=i),
            )
        ) | {"version": 1}
        for i in range(count)
    ]  # fmt: skip
    engine = sa.create_engine(f"sqlite:///{data_dir / 'raworc.sqlite'}")
    with engine.begin() as conn:
        conn.execute(sa.insert(sessions_table), rows)
    engine.dispose()
    return str(rows[count // 2]["id"])


def raworc_config(api_url: str = "", api_token: str = "") -> Config:
    c = Config()
    if api_url:
        c.RaworcApp.kubernetes_enabled = True
        c.KubernetesBackend.api_url = api_url
        c.KubernetesBackend.api_token = api_token
        c.KubernetesSettings.namespace = NAMESPACE
    c.RaworcApp.admin_token = TOKEN
    c.RaworcApp.env_file = ""
    c.RaworcApp.log_spec = "warn"
    c.Reconciler.interval_seconds = 0.0
    return c


async def serve_raworc(sessions: int, api_url: str = "", api_token: str = "") -> None:
    with tempfile.TemporaryDirectory(prefix="bench-rest-") as tmp:
        data_dir = Path(tmp) / "data"
        session_id = await fill_store(data_dir, sessions) if sessions else ""
        app = RaworcApp(config=raworc_config(api_url, api_token))
        app.initialize(["--port=0", "--ip=127.0.0.1", f"--data-dir={data_dir}"])
        await app.start_services()
        try:
            await _announce_and_wait(app.url, session_id)
        finally:
            await app.stop_services()


async def serve_hello() -> None:
    app = tornado.web.Application([(r"/", HelloHandler)])
    server = app.listen(0, address="127.0.0.1")
    port = next(iter(server._sockets.values())).getsockname()[1]
    try:
        await _announce_and_wait(f"http://127.0.0.1:{port}", "")
    finally:
        server.stop()


async def _announce_and_wait(url: str, session_id: str) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    print(json.dumps({"url": url, "token": TOKEN, "session_id": session_id}), flush=True)
    await stop.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.rest_server")
    parser.add_argument("kind", choices=["raworc", "raworc-k8s", "hello"])
    parser.add_argument("--sessions", type=int, default=10_000)
    parser.add_argument("--api-url", default="", help="kubesim URL (raworc-k8s)")
    parser.add_argument("--api-token", default="", help="kubesim token (raworc-k8s)")
    args = parser.parse_args(argv)
    if args.kind == "hello":
        serve = serve_hello()
    elif args.kind == "raworc":
        serve = serve_raworc(args.sessions)
    else:
        serve = serve_raworc(0, args.api_url, args.api_token)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve)
    return 0


if __name__ == "__main__":
    sys.exit(main())
