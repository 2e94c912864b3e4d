"""Generate ``docs/configuration.md`` from the traits' help (``make docs``)."""

from __future__ import annotations

import inspect
import sys

from raworc_spawner.app import ENV_ALIASES, ENV_SETTINGS, RaworcApp, configurable_classes

HEADER = """# Configuration reference

Generated from the code by `make docs`; do not edit by hand.

Sources, lowest to highest precedence: defaults; environment variables and a `.env` file;
the config file (`raworc_config.py` in the working directory, or `--config FILE`); command-line
flags (`--Class.setting=value`, or the short aliases below). `raworc-spawner config` prints the
effective value of every setting and where it came from. Invalid values stop the server at
start-up with a message naming the setting, the value and what is allowed.
"""


def render() -> str:
    """The whole reference as Markdown."""
    app = RaworcApp()
    env_by_trait = {v: k for k, v in ENV_SETTINGS.items()}
    parts = [HEADER, _aliases(app), _env_table()]
    documented = set(configurable_classes())
    for cls in configurable_classes():
        parts.append(f"## {cls.__name__}\n\n{inspect.cleandoc(cls.__doc__ or '')}\n")
        for name, trait in sorted(cls.class_traits(config=True).items()):
            # A trait is documented under the first listed class that has it: settings-only
            # bases (e.g. ManagerSettings under SessionManager) are not listed themselves.
            inherited = trait.this_class is not cls and trait.this_class in documented
            if inherited and cls is not RaworcApp:
                continue
            if trait.this_class is None or trait.this_class.__name__ == "Application":
                continue
            env = env_by_trait.get((cls.__name__, name))
            parts.append(_trait(cls.__name__, name, trait, env))
    return "\n".join(parts)


def _aliases(app: RaworcApp) -> str:
    rows = [f"| `--{alias}` | `{target}` |" for alias, target in sorted(app.aliases.items())]
    flags = [f"| `--{flag}` | {help_} |" for flag, (_, help_) in sorted(app.flags.items())]
    return (
        "## Command-line shortcuts\n\n| option | sets |\n|---|---|\n"
        + "\n".join(rows)
        + "\n\n| flag | meaning |\n|---|---|\n"
        + "\n".join(flags)
        + "\n"
    )


def _env_table() -> str:
    rows = [f"| `{var}` | `{cls}.{name}` |" for var, (cls, name) in ENV_SETTINGS.items()]
    aliases = ", ".join(f"`{a}` (for `{b}`)" for a, b in ENV_ALIASES.items())
    return (
        "## Environment variables\n\n| variable | setting |\n|---|---|\n"
        + "\n".join(rows)
        + f"\n\nAlso accepted: {aliases}.\n"
    )


def _trait(cls_name: str, name: str, trait: object, env: str | None) -> str:
    # The running interpreter's path differs per machine: show what it stands for.
    default = trait.default_value_repr().replace(repr(sys.executable), "sys.executable")  # type: ignore[attr-defined]
    kind = type(trait).__name__
    help_text = inspect.cleandoc(trait.help or "")  # type: ignore[attr-defined]
    env_line = f"  \nEnvironment: `{env}`" if env else ""
    return f"### `{cls_name}.{name}`\n\n{kind}, default `{default}`{env_line}\n\n{help_text}\n"


if __name__ == "__main__":  # pragma: no cover
    sys.stdout.write(render())
