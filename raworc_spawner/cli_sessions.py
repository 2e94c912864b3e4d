"""``raworc-spawner sessions``: list, create, get, delete, pause and resume through the REST API.

A thin HTTP client of ``/api/v0/sessions``. Exit status: 0 on success, 1 when the server
refuses or cannot be reached, 2 on a usage error.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx

DEFAULT_URL = "http://127.0.0.1:9000"
API = "/api/v0/sessions"
TABLE_COLUMNS = ("id", "name", "namespace", "owner", "state", "created_at")
EPILOG = """\
The token comes from --token, else RAWORC_TOKEN, else the admin token that `raworc-spawner
serve` keeps in $RAWORC_DATA_DIR/admin-token (./data/admin-token by default), when that file
exists. Exit status: 0 success, 1 the server refused or could not be reached, 2 usage error.
"""


class CliError(Exception):
    """A failure to report on stderr with an exit status."""

    def __init__(self, message: str, *, status: int = 1) -> None:
        super().__init__(message)
        self.status = status


# -- arguments -------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``raworc-spawner sessions``."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--url",
        default=os.environ.get("RAWORC_URL", DEFAULT_URL),
        help=f"server URL (env RAWORC_URL; default {DEFAULT_URL})",
    )
    common.add_argument("--token", help="bearer token (env RAWORC_TOKEN; see below)")
    common.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser = argparse.ArgumentParser(
        prog="raworc-spawner sessions",
        description="Manage sessions through the REST API.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="VERB")

    def verb(name: str, text: str) -> argparse.ArgumentParser:
        return verbs.add_parser(
            name,
            parents=[common],
            help=text,
            description=text[0].upper() + text[1:] + ".",
            epilog=EPILOG,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )

    _add_list(verb("list", "list sessions, newest first"))
    _add_create(verb("create", "create a session"))
    verb("get", "show a session").add_argument("ids", nargs=1, metavar="ID")
    verb("delete", "delete sessions").add_argument("ids", nargs="+", metavar="ID")
    verb("pause", "scale a session to zero").add_argument("ids", nargs=1, metavar="ID")
    resume = verb("resume", "wake a session up")
    resume.add_argument("ids", nargs=1, metavar="ID")
    resume.add_argument(
        "--new-workspace",
        action="store_true",
        help="accept a new, empty workspace: after WorkspaceLost, or to move a session "
        "recorded on the other backend to this server's",
    )
    _add_wait(resume)
    return parser


def _add_list(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("--state", action="append", help="only this state (repeatable)")
    sub.add_argument("--namespace", help="only this namespace")
    sub.add_argument("-q", "--query", help="substring of the name or id")
    sub.add_argument("--limit", type=int, default=50, help="page size, 1 to 500 (default 50)")
    sub.add_argument("--cursor", help="continue from a previous page's next_cursor")
    sub.add_argument("--all", action="store_true", help="follow cursors through every page")


def _add_create(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("--name", required=True, help="session name")
    sub.add_argument("--namespace", help="logical namespace (default: default)")
    sub.add_argument("--prompt", help="starting prompt (STARTING_PROMPT in the session)")
    sub.add_argument("--agent-id", action="append", dest="agent_ids", help="repeatable")
    sub.add_argument("--metadata", help='a JSON object, e.g. \'{"team": "ml"}\'')
    sub.add_argument("--timeout", type=int, help="idle seconds before pausing (0: never)")
    sub.add_argument("--profile", help="a backend profile name")
    _add_wait(sub)


def _add_wait(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("--wait", action="store_true", help="wait until the session is ready")
    sub.add_argument(
        "--wait-timeout", type=float, default=120.0, help="seconds to wait (default 120)"
    )


def resolve_token(given: str | None) -> str | None:
    """--token, else RAWORC_TOKEN, else the local server's admin-token file if it exists."""
    if given:
        return given
    if os.environ.get("RAWORC_TOKEN"):
        return os.environ["RAWORC_TOKEN"]
    path = Path(os.environ.get("RAWORC_DATA_DIR") or "data") / "admin-token"
    try:
        return path.read_text().strip() or None
    except OSError:
        return None


# -- HTTP ------------------------------------------------------------------------------------------


class ApiClient:
    """Sends requests to the REST API and turns failures into :class:`CliError`."""

    def __init__(self, url: str, token: str | None, *, timeout: float = 60.0) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.url = url.rstrip("/")
        self._http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout)

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        """The decoded JSON answer (None for 204); raises CliError on any failure."""
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.ConnectError:
            raise CliError(f"cannot reach {self.url}: is `raworc-spawner serve` running?") from None
        except httpx.TimeoutException:
            raise CliError(f"{self.url} did not answer in time") from None
        except httpx.HTTPError as e:
            raise CliError(f"request to {self.url} failed: {e}") from None
        if response.status_code >= 400:
            raise CliError(_error_text(response))
        return None if response.status_code == 204 else response.json()


def _error_text(response: httpx.Response) -> str:
    try:
        error = response.json()["error"]
        text = f"{error['message']} (HTTP {response.status_code} {error['code']})"
    except (ValueError, KeyError, TypeError):
        text = f"HTTP {response.status_code}: {response.text[:200]}"
    if response.status_code == 401:
        text += "; pass --token or set RAWORC_TOKEN"
    return text


# -- verbs -----------------------------------------------------------------------------------------


def cmd_list(api: ApiClient, args: argparse.Namespace) -> int:
    """List one page, or every page with --all."""
    params: dict[str, Any] = {"limit": args.limit}
    for key, value in [("namespace", args.namespace), ("q", args.query)]:
        if value:
            params[key] = value
    if args.state:
        params["state"] = ",".join(args.state)
    sessions, next_cursor = [], args.cursor
    for page in _pages(api, params, next_cursor, follow=args.all):
        sessions += page["items"]
        next_cursor = page["next_cursor"]
    if args.json:
        print(json.dumps({"items": sessions, "next_cursor": next_cursor}, indent=2))
        return 0
    print(format_table(sessions))
    if next_cursor:
        print(f"more sessions: --all, or --cursor {next_cursor}", file=sys.stderr)
    return 0


def _pages(
    api: ApiClient, params: dict[str, Any], cursor: str | None, *, follow: bool
) -> Iterator[dict[str, Any]]:
    while True:
        page: dict[str, Any] = api.request(
            "GET", API, params={**params, **({"cursor": cursor} if cursor else {})}
        )
        yield page
        cursor = page["next_cursor"]
        if not follow or not cursor:
            return


def cmd_create(api: ApiClient, args: argparse.Namespace) -> int:
    """Create a session from the flags."""
    body: dict[str, Any] = {"name": args.name}
    optional = {
        "namespace": args.namespace,
        "starting_prompt": args.prompt,
        "agent_ids": args.agent_ids,
        "metadata": _metadata(args.metadata),
        "waiting_timeout_seconds": args.timeout,
        "profile": args.profile,
    }
    body.update({key: value for key, value in optional.items() if value is not None})
    session = api.request("POST", API, json=body)
    if args.wait:
        session = wait_ready(api, session["id"], args.wait_timeout)
    return show(session, args)


def _metadata(text: str | None) -> dict[str, Any] | None:
    if text is None:
        return None
    try:
        value = json.loads(text)
    except ValueError as e:
        raise CliError(f"--metadata is not JSON: {e}", status=2) from None
    if not isinstance(value, dict):
        raise CliError("--metadata must be a JSON object", status=2)
    return value


def cmd_get(api: ApiClient, args: argparse.Namespace) -> int:
    """Show one session."""
    return show(api.request("GET", f"{API}/{args.ids[0]}"), args, detail=True)


def cmd_delete(api: ApiClient, args: argparse.Namespace) -> int:
    """Delete each session; report each one."""
    for session_id in args.ids:
        api.request("DELETE", f"{API}/{session_id}")
        print(json.dumps({"deleted": session_id}) if args.json else f"deleted {session_id}")
    return 0


def cmd_pause(api: ApiClient, args: argparse.Namespace) -> int:
    """Scale a session to zero."""
    session = api.request("PUT", f"{API}/{args.ids[0]}/state", json={"state": "idle"})
    return show(session, args)


def cmd_resume(api: ApiClient, args: argparse.Namespace) -> int:
    """Wake a session up, optionally waiting until it is ready."""
    body: dict[str, Any] = {"state": "ready"}
    if args.new_workspace:
        body["new_workspace"] = True
    session = api.request("PUT", f"{API}/{args.ids[0]}/state", json=body)
    if args.wait:
        session = wait_ready(api, session["id"], args.wait_timeout)
    return show(session, args)


def wait_ready(api: ApiClient, session_id: str, timeout: float) -> dict[str, Any]:
    """Poll until the session is ready; raise CliError if it fails or time runs out."""
    deadline = time.monotonic() + timeout
    while True:
        session: dict[str, Any] = api.request("GET", f"{API}/{session_id}")
        if session["state"] in ("ready", "busy"):
            return session
        if session["state"] == "error":
            raise CliError(f"session {session_id} failed: {session.get('error')}")
        if time.monotonic() > deadline:
            raise CliError(f"session {session_id} not ready after {timeout:g} s")
        time.sleep(0.2)


COMMANDS: dict[str, Callable[[ApiClient, argparse.Namespace], int]] = {
    "list": cmd_list,
    "create": cmd_create,
    "get": cmd_get,
    "delete": cmd_delete,
    "pause": cmd_pause,
    "resume": cmd_resume,
}


# -- output ----------------------------------------------------------------------------------------


def show(session: dict[str, Any], args: argparse.Namespace, *, detail: bool = False) -> int:
    """Print a session as JSON, as ``field: value`` lines, or as a one-row table."""
    if args.json:
        print(json.dumps(session, indent=2))
    elif detail:
        width = max(len(key) for key in session)
        for key, value in session.items():
            shown = json.dumps(value) if isinstance(value, dict | list) else value
            print(f"{key:<{width}}  {'' if shown is None else shown}")
    else:
        print(format_table([session]))
    return 0


def format_table(sessions: Sequence[dict[str, Any]]) -> str:
    """Sessions as aligned columns under upper-case headers."""
    rows = [[col.upper() for col in TABLE_COLUMNS]]
    rows += [[str(session.get(col) or "") for col in TABLE_COLUMNS] for session in sessions]
    widths = [max(len(row[i]) for row in rows) for i in range(len(TABLE_COLUMNS))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in rows]
    return "\n".join(line.rstrip() for line in lines)


def main(argv: list[str]) -> int:
    """Run ``raworc-spawner sessions <argv>``; returns the exit status."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as e:  # --help exits 0, a usage error 2
        return e.code if isinstance(e.code, int) else 2
    api = ApiClient(args.url, resolve_token(args.token))
    try:
        return COMMANDS[args.verb](api, args)
    except CliError as e:
        print(f"raworc-spawner sessions: {e}", file=sys.stderr)
        return e.status
    finally:
        api.close()
