"""The spawn options a hub user may choose: a profile, from the backend's profile catalog.

``user_options`` come from the spawn form (through ``options_from_form``) or straight from the
hub's REST API, so they are validated here, once, with errors that say what is allowed.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from typing import Any

from raworc_spawner.errors import ValidationError

#: The keys ``user_options`` may have.
OPTION_KEYS = ("profile",)

Profiles = Mapping[str, Mapping[str, Any]]


def render_profiles_form(profiles: Profiles) -> str:
    """HTML radio buttons, one per profile (the default checked); empty without profiles."""
    if not profiles:
        return ""
    default = next((name for name, p in profiles.items() if p.get("default")), None)
    default = default or next(iter(profiles))
    items = [_profile_choice(name, profile, name == default) for name, profile in profiles.items()]
    return (
        '<fieldset class="raworc-profiles">\n<legend>Profile</legend>\n'
        + "\n".join(items)
        + "\n</fieldset>"
    )


def _profile_choice(name: str, profile: Mapping[str, Any], checked: bool) -> str:
    value = html.escape(name, quote=True)
    description = html.escape(str(profile.get("description") or ""))
    summary = html.escape(_summary(profile))
    return (
        f'<div class="radio"><label><input type="radio" name="profile" value="{value}"'
        f"{' checked' if checked else ''}> <strong>{html.escape(name)}</strong>"
        f"{f' — {description}' if description else ''}"
        f"{f' <small>({summary})</small>' if summary else ''}</label></div>"
    )


def _summary(profile: Mapping[str, Any]) -> str:
    resources = profile.get("resources") or {}
    parts = [str(profile.get("image") or "")]
    if resources.get("cpu_limit"):
        parts.append(f"CPU {resources['cpu_limit']}")
    if resources.get("memory_limit"):
        parts.append(f"memory {resources['memory_limit']}")
    if profile.get("storage_size"):
        parts.append(f"workspace {profile['storage_size']}")
    return ", ".join(p for p in parts if p)


def options_from_form(formdata: Mapping[str, list[str]]) -> dict[str, Any]:
    """The form's fields as ``user_options`` (``{"profile": name}`` when one was chosen)."""
    chosen = [v.strip() for v in formdata.get("profile", []) if v.strip()]
    return {"profile": chosen[0]} if chosen else {}


def check_user_options(options: Mapping[str, Any], profiles: Profiles) -> str | None:
    """The profile the options choose (None: the backend's default), or ValidationError."""
    unknown = sorted(set(options) - set(OPTION_KEYS))
    if unknown:
        raise ValidationError(
            unknown[0], f"unknown server option; allowed options: {', '.join(OPTION_KEYS)}"
        )
    profile = options.get("profile")
    if profile is None or profile == "":
        return None
    if not isinstance(profile, str):
        raise ValidationError("profile", f"must be a profile name, not {type(profile).__name__}")
    if profile not in profiles:
        available = ", ".join(sorted(profiles)) or "none are configured"
        raise ValidationError("profile", f"unknown profile {profile!r}; available: {available}")
    return profile
