"""The ``raworc-spawner`` command: ``serve``, ``config``, ``sessions …`` and operator tools."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Callable, Sequence

from raworc_spawner import __version__
from raworc_spawner.app import RaworcApp, exit_with_config_error
from raworc_spawner.errors import InvalidConfig, RaworcError

USAGE = f"""raworc-spawner {__version__}

Usage: raworc-spawner VERB [options]

Verbs:
  serve        run the server (the default verb; see --help-all for every setting)
  config       print the effective settings and where each came from (--json for JSON)
  sessions     manage sessions through the REST API (list, create, get, delete, pause, resume)
  doctor       check the Kubernetes cluster: access, namespace, RBAC, storage class
  render       print the manifests a session would get (--name NAME [--profile P] [--id ID])
  cleanup      list resources no session record of this instance accounts for: orphans
               (--delete removes them), other instances' objects (never touched), compute
               left on the other backend after a switch (--delete stops it)
  version      print the version

Settings come from defaults < environment and .env < raworc_config.py (--config) < flags.
Run `raworc-spawner serve --help-all` to list every setting with its help.
"""


def main(argv: Sequence[str] | None = None) -> int:
    """Dispatch on the verb; returns the process exit status."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] in ("-h", "--help", "help"):
        print(USAGE)
        return 0
    verb = args.pop(0) if args and not args[0].startswith("-") else "serve"
    handler = VERBS.get(verb)
    if handler is None:
        print(f"raworc-spawner: unknown verb {verb!r}\n\n{USAGE}", file=sys.stderr)
        return 2
    return handler(args)


def _app(args: list[str]) -> RaworcApp:
    app = RaworcApp()
    try:
        app.initialize(args)
    except InvalidConfig as e:
        exit_with_config_error(e, app)
    return app


def _serve(args: list[str]) -> int:
    app = _app(args)
    try:
        app.start()
    except InvalidConfig as e:
        exit_with_config_error(e, app)
    except KeyboardInterrupt:
        pass
    return 0


def _config(args: list[str]) -> int:
    as_json = "--json" in args
    app = _app([a for a in args if a != "--json"])
    rows = app.setting_sources()
    if as_json:
        data = [
            {"setting": f"{cls}.{name}", "value": _jsonable(value), "source": source}
            for cls, name, value, source in rows
        ]
        print(json.dumps(data, indent=2))
        return 0
    width = max(len(f"{cls}.{name}") for cls, name, _, _ in rows)
    for cls, name, value, source in rows:
        shown = "<set>" if "token" in name and value else repr(value)
        print(f"{cls + '.' + name:<{width}}  {shown:<40}  {source}")
    return 0


def _sessions(args: list[str]) -> int:
    from raworc_spawner.cli_sessions import main as sessions_main

    return sessions_main(args)


def _doctor(args: list[str]) -> int:
    from raworc_spawner.ops import doctor

    checks = asyncio.run(doctor(_app(args)))
    for check in checks:
        print(check.line())
    return 1 if any(check.ok is False for check in checks) else 0


def _render(args: list[str]) -> int:
    from raworc_spawner.ops import render

    options, rest = _take_options(args, ("--name", "--profile", "--id"))
    if "--name" not in options:
        print("raworc-spawner render: --name NAME is required", file=sys.stderr)
        return 2
    try:
        print(
            render(
                _app(rest),
                name=options["--name"],
                profile=options.get("--profile"),
                session_id=options.get("--id"),
            ),
            end="",
        )
    except RaworcError as e:
        print(f"raworc-spawner render: {e}", file=sys.stderr)
        return 2
    return 0


def _cleanup(args: list[str]) -> int:
    from raworc_spawner.ops import cleanup

    delete = "--delete" in args
    app = _app([a for a in args if a != "--delete"])
    try:
        findings = asyncio.run(cleanup(app, delete=delete))
    except RaworcError as e:  # an unreachable cluster, a bad kubeconfig: one line, no traceback
        print(f"raworc-spawner cleanup: {e}", file=sys.stderr)
        return 2
    for finding in findings:
        print(finding.line())
    if not findings:
        print("no orphaned resources")
    return 0


def _take_options(args: list[str], names: tuple[str, ...]) -> tuple[dict[str, str], list[str]]:
    """Split ``--name value`` / ``--name=value`` options from the remaining arguments."""
    options: dict[str, str] = {}
    rest: list[str] = []
    items = iter(args)
    for arg in items:
        key, eq, value = arg.partition("=")
        if key in names:
            options[key] = value if eq else next(items, "")
        else:
            rest.append(arg)
    return options, rest


def _version(args: list[str]) -> int:
    print(__version__)
    return 0


def _jsonable(value: object) -> object:
    try:
        json.dumps(value)
    except TypeError:
        return repr(value)
    return value


VERBS: dict[str, Callable[[list[str]], int]] = {
    "serve": _serve,
    "config": _config,
    "sessions": _sessions,
    "doctor": _doctor,
    "render": _render,
    "cleanup": _cleanup,
    "version": _version,
}

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
