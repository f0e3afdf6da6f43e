"""A local aiohttp server for scenario 6: ``python -m benchmarks._http_server``.

Listens on 127.0.0.1 (a free port), prints ``PORT <n>`` on stdout once it accepts
connections, and answers ``GET /item`` with a small JSON object until it is terminated.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys

from aiohttp import web

__all__ = ["BODY", "main"]

BODY = b'{"id": 1, "name": "item", "value": 2.5, "ok": true}'


async def _item(request: web.Request) -> web.Response:
    return web.Response(body=BODY, content_type="application/json")


async def _serve() -> None:
    app = web.Application()
    app.router.add_get("/item", _item)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, backlog=1024)
    await site.start()
    port = runner.addresses[0][1]
    print(f"PORT {port}", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


def main() -> int:
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve())
    return 0


if __name__ == "__main__":
    sys.exit(main())
