"""``$(VAR)`` expansion in env values, commands and args, as the kubelet does it.

The rules are those of Kubernetes' ``third_party/forked/golang/expansion`` (used by the kubelet's
``makeEnvironmentVariables`` and ``ExpandContainerCommandAndArgs``):

- ``$(NAME)`` is replaced by the value of ``NAME`` when it is defined; otherwise it stays as
  written (``$(NOPE)`` stays ``$(NOPE)``). The name is everything up to the next ``)``.
- ``$$`` is an escaped ``$``: ``$$(A)`` becomes the literal ``$(A)`` and is not expanded.
- A ``$`` followed by anything else (``$A``, ``$1``), a ``$`` at the end, and an unclosed
  ``$(`` are kept as they are.

>>> expand("$(A)-x $$(A) $(NOPE) $$ $", {"A": "hello"})
'hello-x $(A) $(NOPE) $ $'
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

OPERATOR, OPENER, CLOSER = "$", "(", ")"


def lookup_in(*contexts: Mapping[str, str]) -> Callable[[str], str]:
    """A mapping that tries each context in turn and rewraps unknown names as ``$(NAME)``."""

    def mapping(name: str) -> str:
        for context in contexts:
            if name in context:
                return context[name]
        return f"{OPERATOR}{OPENER}{name}{CLOSER}"

    return mapping


def expand(text: str, env: Mapping[str, str] | Callable[[str], str]) -> str:
    """``text`` with every ``$(NAME)`` reference expanded from ``env`` (a dict or a mapping)."""
    mapping = env if callable(env) else lookup_in(env)
    out: list[str] = []
    checkpoint = cursor = 0
    while cursor < len(text):
        if text[cursor] == OPERATOR and cursor + 1 < len(text):
            out.append(text[checkpoint:cursor])
            read, is_name, advance = _read_reference(text[cursor + 1 :])
            out.append(mapping(read) if is_name else read)
            cursor += advance
            checkpoint = cursor + 1
        cursor += 1
    out.append(text[checkpoint:])
    return "".join(out)


def _read_reference(rest: str) -> tuple[str, bool, int]:
    """What follows a ``$``: (text or name, whether it is a name, characters consumed)."""
    if rest[0] == OPERATOR:
        return OPERATOR, False, 1
    if rest[0] == OPENER:
        closer = rest.find(CLOSER, 1)
        if closer >= 0:
            return rest[1:closer], True, closer + 1
        return OPERATOR + OPENER, False, 1
    return OPERATOR + rest[0], False, 1
