"""AmqpOutlet: publish records to RabbitMQ with publisher confirms (needs the ``amqp`` extra).

A push publishes every record of the batch as a persistent message and returns only once the
broker confirmed each one (publisher confirms): a confirmed message is the broker's to keep.
A message the broker refuses (``basic.nack``) or cannot route (``mandatory``) fails the push,
so a queued link retries it. Like AmqpInlet, the connection lives on the library's background
event loop (``databay_bus._amqp``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING

from databay_bus._concurrency import _shared_background_loop
from databay_bus._lazy import require_extra
from databay_bus._validation import optional_text, positive_seconds, text
from databay_bus._validation import url as valid_url
from databay_bus.errors import PayloadError, describe
from databay_bus.outlets.base import Outlet, Processor

require_extra("AmqpOutlet", "amqp", "aio_pika")

import aio_pika  # noqa: E402 - after the check that names the extra

from databay_bus._amqp import AmqpConnection, on_home, run_on_home, settle_all  # noqa: E402

if TYPE_CHECKING:
    from databay_bus.records import Record
    from databay_bus.update import Update

__all__ = ["AmqpOutlet"]


class AmqpOutlet(Outlet):
    """Publishes each record's payload, as JSON, to ``exchange`` with ``routing_key``.

    Messages are persistent, ``application/json``, and carry the record's id (queued
    records) as ``message_id``, so consumers can drop a redelivered duplicate.

    Args:
        routing_key: the routing key; with the default exchange (``''``), the queue name.
        exchange: the exchange to publish to (it must exist); ``''`` is the default exchange.
        url: the broker, ``amqp://user:password@host:port/vhost``.
        declare_queue: declare this durable queue at start (handy with the default exchange).
        timeout: seconds to connect, and to wait for the confirms of one push.
        processors, name: see :class:`~databay_bus.Outlet`.

    Raises:
        BrokerError: the broker cannot be reached, refuses or cannot route a message.
        PayloadError: a payload JSON cannot represent (before anything is published).
    """

    _get_home_loop = staticmethod(_shared_background_loop)

    def __init__(
        self,
        routing_key: str,
        exchange: str = "",
        url: str = "amqp://guest:guest@127.0.0.1:5672/",
        declare_queue: str | None = None,
        timeout: float = 10.0,
        processors: Processor | Sequence[Processor] | None = None,
        name: str | None = None,
    ) -> None:
        super().__init__(processors=processors, name=name)
        owner = "AmqpOutlet"
        self.routing_key = text(routing_key, "routing_key", owner, empty=True)
        self.exchange = text(exchange, "exchange", owner, empty=True)
        self.url = valid_url(url, "url", owner, ("amqp", "amqps"))
        self.declare_queue = optional_text(declare_queue, "declare_queue", owner)
        self.timeout = positive_seconds(timeout, "timeout", owner)
        self._amqp = AmqpConnection(self, url, self.timeout, confirms=True, prefetch=None)

    def on_start(self) -> None:
        run_on_home(self._exchange(), self.timeout + 5)

    def on_shutdown(self) -> None:
        run_on_home(self._amqp.close(), self.timeout + 5)

    async def _exchange(self) -> aio_pika.abc.AbstractExchange:
        channel = await self._amqp.channel()
        try:
            if self.declare_queue:
                await channel.declare_queue(self.declare_queue, durable=True)
            if not self.exchange:
                return channel.default_exchange
            return await channel.get_exchange(self.exchange, ensure=True)
        except Exception as exc:
            await self._amqp.close()
            raise self._amqp.error(f"cannot use exchange {self.exchange!r}", exc) from exc

    async def push(self, records: list[Record], update: Update) -> None:
        """Publish the batch; returns once the broker confirmed every message."""
        messages = [self._message(record) for record in records]
        if messages:
            await on_home(self._publish(messages))

    def _message(self, record: Record) -> aio_pika.Message:
        try:
            body = json.dumps(record.payload, allow_nan=False).encode("utf-8")
        except (TypeError, ValueError) as exc:
            raise PayloadError(
                f"{self!r}: a payload must be JSON to publish, got {describe(record.payload)}"
            ) from exc
        return aio_pika.Message(
            body,
            content_type="application/json",
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            message_id=record.id,
        )

    async def _publish(self, messages: list[aio_pika.Message]) -> None:
        exchange = await self._exchange()
        calls = [
            exchange.publish(m, self.routing_key, mandatory=True, timeout=self.timeout)
            for m in messages
        ]
        failures = [e for e in await settle_all(calls) if e is not None]
        if failures:
            await self._amqp.close()
            raise self._amqp.error(
                f"{len(failures)} of {len(messages)} messages not confirmed", failures[0]
            ) from failures[0]

    def __repr__(self) -> str:
        return f"AmqpOutlet(routing_key={self.routing_key!r}, name={self.name!r})"
