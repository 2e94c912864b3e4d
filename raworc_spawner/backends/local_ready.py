"""When a local session process is ready: listening on its port, or simply still alive.

With a port (the hub's single-user server, a session's web app), *ready* means the session's
process tree accepts TCP connections on that port: one of its processes holds a listening
socket on the port (on any address: the hub binds the server where its own settings say) and a
connection to it succeeds. Without a port, ready means alive for ``ready_after_seconds``.
Either way an exit first ends the wait at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import time

import psutil

from raworc_spawner.backends.procs import SessionProcess
from raworc_spawner.loops import Backoff

#: Addresses a socket listening on every interface is bound to.
WILDCARDS = frozenset({"0.0.0.0", "::", ""})
CONNECT_TIMEOUT = 1.0


def waiting_for(proc: SessionProcess, ready_after_seconds: float) -> str:
    """What a starting process waits for, in words."""
    if proc.port:
        return f"the process to listen on {proc.host}:{proc.port}"
    return f"the process to stay up for {ready_after_seconds:g} s"


async def until_ready(proc: SessionProcess, *, ready_after_seconds: float) -> bool:
    """Wait until ``proc`` is ready; False if it exited first. Unbounded: wrap in a timeout."""
    if proc.port:
        return await _until_listening(proc, proc.port)
    remaining = ready_after_seconds - (time.monotonic() - proc.started)
    return not await proc.watcher.wait(max(0.0, remaining))


async def _until_listening(proc: SessionProcess, port: int) -> bool:
    backoff = Backoff(initial=0.02, maximum=0.25, jitter=0.0)
    while not proc.watcher.done:
        host = await asyncio.to_thread(listening_host, proc.pid, port, proc.host)
        if host is not None and await _accepts(host, port):
            return True
        if await proc.watcher.wait(backoff.next()):
            return False
    return False


def listening_host(pid: int, port: int, session_host: str) -> str | None:
    """Where to connect to reach the listener the tree led by ``pid`` has on ``port``.

    The session's own address when a process listens on every interface or on it; the bound
    address otherwise; None when no process of the tree listens on ``port``. When the tree
    cannot be inspected (another user's processes), the session's address is tried.
    """
    try:
        leader = psutil.Process(pid)
        members = [leader, *leader.children(recursive=True)]
    except psutil.NoSuchProcess:
        return None
    except psutil.AccessDenied:
        return session_host
    bound: list[str] = []
    for member in members:
        with contextlib.suppress(psutil.NoSuchProcess, psutil.ZombieProcess):
            try:
                # net_connections since psutil 6.0; connections before (the same call).
                listing = getattr(member, "net_connections", None) or member.connections
                connections = listing(kind="tcp")
            except psutil.AccessDenied:
                return session_host
            bound += [
                c.laddr.ip
                for c in connections
                if c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port == port
            ]
    if not bound:
        return None
    if session_host in bound or WILDCARDS & set(bound):
        return session_host
    return _reachable(bound[0])


def _reachable(address: str) -> str:
    """A bound IPv4-mapped IPv6 address as the IPv4 address it stands for."""
    with contextlib.suppress(ValueError):
        ip = ipaddress.ip_address(address)
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
    return address


async def _accepts(host: str, port: int) -> bool:
    """Whether a TCP connection to ``host:port`` succeeds now."""
    try:
        async with asyncio.timeout(CONNECT_TIMEOUT):
            _, writer = await asyncio.open_connection(host, port)
    except (OSError, TimeoutError):
        return False
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True
