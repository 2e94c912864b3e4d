"""A tiny web app a test session runs: hello, echo (streamed), a chunked stream, a WebSocket."""

import asyncio
import os
import sys

import tornado.web
import tornado.websocket


class Hello(tornado.web.RequestHandler):
    def get(self) -> None:
        self.write(f"hello from {os.environ['SESSION_ID']} in {os.getcwd()}")


@tornado.web.stream_request_body
class Echo(tornado.web.RequestHandler):
    def prepare(self) -> None:
        self.size = 0

    def data_received(self, chunk: bytes) -> None:
        self.size += len(chunk)

    def post(self) -> None:
        self.write({"received": self.size, "cookie": self.request.headers.get("Cookie", "")})


class Stream(tornado.web.RequestHandler):
    async def get(self) -> None:
        for i in range(5):
            self.write(f"line {i}\n")
            await self.flush()
            await asyncio.sleep(0.01)


class Headers(tornado.web.RequestHandler):
    def get(self) -> None:
        self.write(dict(self.request.headers))


class Echoes(tornado.websocket.WebSocketHandler):
    def on_message(self, message: str | bytes) -> None:
        self.write_message(f"echo: {message}")


async def main() -> None:
    app = tornado.web.Application(
        [
            ("/hello", Hello),
            ("/echo", Echo),
            ("/stream", Stream),
            ("/headers", Headers),
            ("/ws", Echoes),
        ]
    )
    host = os.environ.get("SESSION_HOST") or os.environ.get("KUBESIM_POD_IP") or "127.0.0.1"
    app.listen(int(sys.argv[1]), host, max_body_size=64 * 1024 * 1024)
    await asyncio.Event().wait()


asyncio.run(main())
