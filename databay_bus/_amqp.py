"""What the AMQP inlet and outlet share: one aio-pika connection each, on the background loop.

aio-pika objects belong to the event loop that made them. Transfers run on whichever thread
the planner uses, so, like HttpInlet's session, each AMQP node keeps its connection on the
library's long-lived background loop (``databay_bus._concurrency``) and names that loop as its
home (``Node._get_home_loop``): a link whose async nodes are all AMQP nodes runs there whole.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Coroutine, Sequence
from typing import Any, TypeVar

from databay_bus._concurrency import _shared_background_loop
from databay_bus._lazy import require_extra
from databay_bus._secrets import mask_url
from databay_bus.errors import BrokerError

require_extra("AmqpInlet/AmqpOutlet", "amqp", "aio_pika")

import aio_pika  # noqa: E402 - after the check that names the extra
import aio_pika.abc  # noqa: E402

__all__ = ["AmqpConnection", "on_home", "run_on_home", "settle_all"]

T = TypeVar("T")


class _Connection(aio_pika.Connection):
    """aio-pika's connection, minus a close scheduled from ``__del__`` outside its loop.

    ``Connection.__del__`` creates a ``close()`` coroutine; collected on another thread (a
    connection that failed to open, dropped there), that coroutine is never awaited and
    Python warns. Such a connection has nothing open to close.
    """

    def __del__(self) -> None:
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            return
        if running is self.loop:
            super().__del__()


async def on_home(coro: Coroutine[Any, Any, T]) -> T:
    """Await ``coro`` on the background loop, from any loop."""
    home = _shared_background_loop()
    if asyncio.get_running_loop() is home:
        return await coro
    return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, home))


def run_on_home(coro: Coroutine[Any, Any, T], timeout: float) -> T:
    """Run ``coro`` on the background loop from synchronous code (on_start, on_shutdown)."""
    return asyncio.run_coroutine_threadsafe(coro, _shared_background_loop()).result(timeout)


class AmqpConnection:
    """A connection and one channel, opened on demand (again after the broker dropped them).

    Args:
        owner: the node, named in errors.
        url: ``amqp://user:password@host:port/vhost``.
        timeout: seconds to connect.
        confirms: publisher confirms on the channel (the outlet).
        prefetch: the channel's QoS prefetch count (the inlet), or None.
    """

    def __init__(
        self, owner: object, url: str, timeout: float, confirms: bool, prefetch: int | None
    ) -> None:
        self.owner, self.url, self.timeout = owner, url, timeout
        self.confirms, self.prefetch = confirms, prefetch
        self._connection: aio_pika.abc.AbstractConnection | None = None
        self._channel: aio_pika.abc.AbstractChannel | None = None

    async def channel(self) -> aio_pika.abc.AbstractChannel:
        """The open channel, connecting first if needed (on the background loop)."""
        channel = self._channel
        if channel is not None and not channel.is_closed:
            return channel
        await self.close()
        try:
            self._connection = await aio_pika.connect(
                self.url, timeout=self.timeout, connection_class=_Connection
            )
            channel = await self._connection.channel(publisher_confirms=self.confirms)
            if self.prefetch is not None:
                await channel.set_qos(prefetch_count=self.prefetch)
        except Exception as exc:
            await self.close()
            raise self.error("cannot connect", exc) from exc
        self._channel = channel
        return channel

    @property
    def generation(self) -> object:
        """Changes when a new channel is opened (delivery tags of the old one are void)."""
        return self._channel

    async def close(self) -> None:
        connection, self._connection, self._channel = self._connection, None, None
        if connection is not None and not connection.is_closed:
            with contextlib.suppress(Exception):  # already broken: nothing left to release
                await connection.close()

    def error(self, what: str, exc: BaseException) -> BrokerError:
        return BrokerError(
            f"{self.owner!r}: AMQP broker at {mask_url(self.url)}: {what}: "
            f"{type(exc).__name__}: {exc}"
        )


async def settle_all(calls: Sequence[Awaitable[Any]]) -> list[BaseException | None]:
    """Await every call; each one's exception or None."""
    results = await asyncio.gather(*calls, return_exceptions=True)
    return [r if isinstance(r, BaseException) else None for r in results]
