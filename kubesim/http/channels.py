"""The remote-command channel protocol that ``exec`` speaks over a WebSocket.

Sources: k8s.io/apimachinery ``pkg/util/httpstream/wsstream/conn.go`` (framing, negotiation,
the v5 close signal), ``pkg/util/remotecommand/constants.go`` (protocol names, stream ids,
``NonZeroExitCode``/``ExitCode``), and the kubelet's ``cri/streaming/remotecommand`` (the
first empty message, the Status written on the error channel).

Every WebSocket message carries one channel: its first byte is the channel id (0 stdin, 1
stdout, 2 stderr, 3 error, 4 resize), the rest is the data. The ``base64.`` protocols send text
messages instead, with the id as an ASCII digit and base64 data. ``v5.channel.k8s.io`` adds one
message the client sends, ``[255, id]``: "stream ``id`` is closed" (kubectl sends it for stdin
at end of input). From ``v4`` on, the error channel carries a JSON ``metav1.Status`` (success
too); before ``v4`` it carries only the text of a failure.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

Obj = dict[str, Any]

STREAM_CLOSE = 255
"""The v5 close signal: a message ``[255, stream id]`` from the client."""


class Channel(IntEnum):
    """The stream ids of ``exec`` and ``attach``."""

    STDIN = 0
    STDOUT = 1
    STDERR = 2
    ERROR = 3
    RESIZE = 4


@dataclass(frozen=True)
class Protocol:
    """One negotiable subprotocol: its name, its version (1, 4 or 5) and its encoding."""

    name: str
    version: int
    base64: bool = False

    @property
    def status_as_json(self) -> bool:
        """Whether the error channel carries a JSON Status (v4 and later) or plain text."""
        return self.version >= 4


PROTOCOLS = {
    p.name: p
    for p in (
        Protocol("v5.channel.k8s.io", 5),
        Protocol("v4.channel.k8s.io", 4),
        Protocol("v4.base64.channel.k8s.io", 4, base64=True),
        Protocol("channel.k8s.io", 1),
        Protocol("base64.channel.k8s.io", 1, base64=True),
    )
}
NO_PROTOCOL = Protocol("", 1)
"""What a client that offers no subprotocol gets: binary frames, text errors (as the kubelet)."""


def negotiate(offered: list[str]) -> Protocol | None:
    """The first offered protocol this server speaks (the client's order wins, as in wsstream).

    No protocol offered at all means :data:`NO_PROTOCOL`; None means nothing offered is
    supported.
    """
    if not offered:
        return NO_PROTOCOL
    return next((PROTOCOLS[name] for name in offered if name in PROTOCOLS), None)


def offered_protocols(header: str) -> list[str]:
    """The names in a ``Sec-WebSocket-Protocol`` header, in order."""
    return [name.strip() for name in header.split(",") if name.strip()]


def encode(protocol: Protocol, channel: Channel, data: bytes) -> bytes | str:
    """One outgoing message: bytes for binary protocols, text for the base64 ones."""
    if protocol.base64:
        return chr(ord("0") + channel) + base64.b64encode(data).decode("ascii")
    return bytes([channel]) + data


@dataclass(frozen=True)
class Frame:
    """One incoming message: data for ``channel``, or (``closed``) the end of that stream."""

    channel: int
    data: bytes = b""
    closed: bool = False


def decode(protocol: Protocol, message: bytes | str) -> Frame | None:
    """Parse one incoming message; None for an empty one (wsstream skips those).

    Raises ValueError for a malformed close signal or base64 payload.
    """
    if not message:
        return None
    if protocol.base64:
        text = message if isinstance(message, str) else message.decode("ascii")
        return Frame(ord(text[0]) - ord("0"), base64.b64decode(text[1:], validate=True))
    raw = message.encode() if isinstance(message, str) else message
    if protocol.version >= 5 and raw[0] == STREAM_CLOSE:
        if len(raw) != 2:
            raise ValueError(f"a stream close signal carries one stream id, got {len(raw) - 1}")
        return Frame(raw[1], closed=True)
    return Frame(raw[0], raw[1:])


# -- the Status written on the error channel -------------------------------------------------


def success_status() -> Obj:
    """The Status of a command that exited 0 (``json.Marshal`` of metav1.Status, empty fields
    omitted)."""
    return {"metadata": {}, "status": "Success"}


def exit_code_status(argv: list[str], code: int) -> Obj:
    """The Status of a command that exited ``code`` != 0; clients read the code from its cause.

    The message is the kubelet's around containerd's error (``error executing command [argv],
    exit code N``); Go prints a string slice as ``[a b c]``.
    """
    why = f"error executing command [{' '.join(argv)}], exit code {code}"
    return {
        "metadata": {},
        "status": "Failure",
        "message": f"command terminated with non-zero exit code: {why}",
        "reason": "NonZeroExitCode",
        "details": {"causes": [{"reason": "ExitCode", "message": str(code)}]},
    }


def internal_error_status(why: str) -> Obj:
    """The Status of a command that could not be run at all (``apierrors.NewInternalError``)."""
    cause = f"error executing command in container: {why}"
    return {
        "metadata": {},
        "status": "Failure",
        "message": f"Internal error occurred: {cause}",
        "reason": "InternalError",
        "details": {"causes": [{"message": cause}]},
        "code": 500,
    }


def status_payload(protocol: Protocol, status: Obj) -> bytes | None:
    """What goes on the error channel for ``status``; None when nothing does (v1 success)."""
    if protocol.status_as_json:
        return json.dumps(status, separators=(",", ":")).encode()
    if status.get("status") == "Success":
        return None
    return str(status.get("message", "")).encode()


def resize(data: bytes) -> tuple[int, int] | None:
    """``(columns, rows)`` from a resize message (``{"Width": w, "Height": h}``); None if bad."""
    try:
        size = json.loads(data)
        return int(size["Width"]), int(size["Height"])
    except (ValueError, KeyError, TypeError):
        return None
