"""A real aiohttp server on 127.0.0.1 (plain or TLS) for HttpInlet tests, on its own thread."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import threading
from typing import Any

from aiohttp import web

__all__ = ["LocalServer"]


class LocalServer:
    """Serves a few fixed routes; ``url(path)`` gives their address; use as a context manager.

    Routes: /object, /array, /text, /empty, /status/{code}, /slow (answers when released or
    after 30 s), /echo (method, body, headers, query as JSON). ``requests`` lists the peer
    address of every request, so tests can see connections being reused.
    """

    def __init__(self, ssl_context: ssl.SSLContext | None = None) -> None:
        self._ssl = ssl_context
        self.requests: list[tuple[str, Any]] = []
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._runner: web.AppRunner | None = None
        self._release: asyncio.Event | None = None
        self.port = 0

    def __enter__(self) -> LocalServer:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    def url(self, path: str) -> str:
        scheme = "https" if self._ssl else "http"
        host = "localhost" if self._ssl else "127.0.0.1"
        return f"{scheme}://{host}:{self.port}{path}"

    async def _start(self) -> None:
        self._release = asyncio.Event()
        app = web.Application()
        app.router.add_get("/object", self._json({"name": "alpha", "value": 1}))
        app.router.add_get("/array", self._json([{"n": 1}, {"n": 2}, {"n": 3}]))
        app.router.add_get("/text", self._text("plain words"))
        app.router.add_get("/empty", self._text(""))
        app.router.add_get("/status/{code}", self._status)
        app.router.add_get("/slow", self._slow)
        app.router.add_route("*", "/echo", self._echo)
        self._runner = web.AppRunner(app, shutdown_timeout=1)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0, ssl_context=self._ssl)
        await site.start()
        server = site._server
        assert server is not None
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def _stop(self) -> None:
        assert self._release is not None and self._runner is not None
        self._release.set()
        await self._runner.cleanup()

    def _seen(self, request: web.Request) -> None:
        transport = request.transport
        peer = transport.get_extra_info("peername") if transport else None
        self.requests.append((request.path, peer))

    def _json(self, value: Any) -> Any:
        async def handler(request: web.Request) -> web.Response:
            self._seen(request)
            return web.json_response(value)

        return handler

    def _text(self, value: str) -> Any:
        async def handler(request: web.Request) -> web.Response:
            self._seen(request)
            return web.Response(text=value)

        return handler

    async def _status(self, request: web.Request) -> web.Response:
        self._seen(request)
        return web.Response(status=int(request.match_info["code"]), text="an error page")

    async def _slow(self, request: web.Request) -> web.Response:
        self._seen(request)
        assert self._release is not None
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._release.wait(), 30)
        return web.json_response({"late": True})

    async def _echo(self, request: web.Request) -> web.Response:
        self._seen(request)
        body = await request.text()
        return web.json_response(
            {
                "method": request.method,
                "body": body,
                "headers": dict(request.headers),
                "query": dict(request.query),
            }
        )
