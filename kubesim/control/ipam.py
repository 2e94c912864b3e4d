"""Pod IPs from 127.10.0.0/16, so a process can bind to its pod's IP on the loopback device."""

from __future__ import annotations

SIZE = 250 * 256  # 127.10.0.1 … 127.10.255.250


class IpPool:
    """Hands out each address round-robin and never one that is still held.

    An address is held from :meth:`take` until :meth:`give`; the kubelet gives it back only
    once the pod is gone and none of its processes is left. Round-robin (as the host-local IPAM
    plugin allocates) also keeps a freed address out of use for as long as possible.
    """

    def __init__(self) -> None:
        self._held: set[int] = set()
        self._cursor = 0

    def take(self) -> str:
        """A free address; raises RuntimeError when all are held."""
        for step in range(SIZE):
            n = (self._cursor + step) % SIZE
            if n not in self._held:
                self._held.add(n)
                self._cursor = (n + 1) % SIZE
                return f"127.10.{n // 250}.{n % 250 + 1}"
        raise RuntimeError("kubesim: every pod IP in 127.10.0.0/16 is in use")

    def give(self, ip: str) -> None:
        """The address is free again."""
        third, fourth = (int(p) for p in ip.split(".")[2:])
        self._held.discard(third * 250 + fourth - 1)

    def held(self, ip: str) -> bool:
        third, fourth = (int(p) for p in ip.split(".")[2:])
        return third * 250 + fourth - 1 in self._held
