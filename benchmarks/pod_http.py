"""Tiny HTTP servers on kubesim's pod IPs: ``python -m benchmarks.pod_http --count N --port P``.

Answers every request on ``127.10.x.y:P`` (the first ``N`` pod IPs a fresh kubesim hands out)
with ``200 ok``, so requests proxied to a session pod get an answer. Prints ``ready`` once
listening, then serves until SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys

from benchmarks.cluster import pod_ip

RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nok"


async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while await reader.readuntil(b"\r\n\r\n"):
            writer.write(RESPONSE)
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
        pass
    finally:
        writer.close()


async def serve(count: int, port: int) -> None:
    servers = [await asyncio.start_server(answer, pod_ip(n), port) for n in range(count)]
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    print("ready", flush=True)
    await stop.wait()
    for server in servers:
        server.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.pod_http")
    parser.add_argument("--count", type=int, default=64)
    parser.add_argument("--port", type=int, default=8890)
    args = parser.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args.count, args.port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
