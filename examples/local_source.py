"""A tiny local JSON API for the HTTP examples (not an example itself).

``LocalPriceSource`` serves ``GET /prices``: a JSON array of a few prices that change on
every request, from an aiohttp server on 127.0.0.1 running on its own thread. Use it as a
context manager; ``url`` is its address.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from aiohttp import web

SYMBOLS = ("ACME", "GLOBEX", "INITECH")


class LocalPriceSource:
    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._runner: web.AppRunner | None = None
        self._requests = 0
        self.url = ""

    def __enter__(self) -> LocalPriceSource:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_get("/prices", self._prices)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}/prices"

    async def _prices(self, request: web.Request) -> web.Response:
        self._requests += 1
        n = self._requests
        body: list[dict[str, Any]] = [
            {"symbol": s, "price": round(100 + 7 * i + 0.25 * n, 2), "request": n}
            for i, s in enumerate(SYMBOLS)
        ]
        return web.json_response(body)
