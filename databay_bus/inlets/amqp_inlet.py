"""AmqpInlet: take messages from a RabbitMQ (AMQP 0-9-1) queue (needs the ``amqp`` extra).

Each pull takes up to ``count`` messages (``basic.get``, no waiting) without acknowledging
them. A message is acknowledged only in :meth:`AmqpInlet.on_records_safe`, once its record
is stored by the link's queue (or taken by every outlet, without a queue); when its record
cannot be made safe it is rejected back to the queue (:meth:`AmqpInlet.on_records_failed`).
If the process dies first, the broker requeues every unacknowledged message: delivery is at
least once, and nothing is acknowledged before it is safe.

Why aio-pika (not pika): acknowledgements must be sent on the channel that received the
message, from the hook that learns the records are safe, which runs on another thread than
the pull. pika's connections may only be used from the thread that made them; aio-pika's
live on one event loop that any thread can hand work to, the model databay_bus already uses
for HttpInlet (see ``databay_bus._amqp``).
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any, Literal

from databay_bus._concurrency import _shared_background_loop
from databay_bus._lazy import require_extra
from databay_bus._validation import as_bool, positive_int, positive_seconds, text
from databay_bus._validation import url as valid_url
from databay_bus.errors import ConfigurationError, describe
from databay_bus.inlets.base import Inlet
from databay_bus.records import Record

require_extra("AmqpInlet", "amqp", "aio_pika")

from databay_bus._amqp import AmqpConnection, on_home, run_on_home, settle_all  # noqa: E402

if TYPE_CHECKING:
    import aio_pika.abc

    from databay_bus.update import Update

__all__ = ["AmqpInlet"]

_LOGGER = logging.getLogger(__name__)

#: Metadata keys every record of this inlet carries.
QUEUE_KEY, TAG_KEY, MESSAGE_ID_KEY = "amqp_queue", "amqp_delivery_tag", "amqp_message_id"
Decode = Literal["auto", "json", "text", "bytes"]


class AmqpInlet(Inlet):
    """Takes up to ``count`` messages per pull from ``queue``.

    A record's payload is the message body: with ``decode='auto'`` its JSON value when it is
    JSON, else its text (UTF-8), else the bytes; ``'json'``, ``'text'``, ``'bytes'`` force one
    (a body that does not decode is rejected to the queue and logged). Its metadata holds the
    queue (``'amqp_queue'``), the delivery tag and the message id (``'amqp_message_id'``).

    Args:
        queue: the queue to read.
        url: the broker, ``amqp://user:password@host:port/vhost``.
        count: at most this many messages per pull (also the channel's prefetch).
        declare: declare the queue (durable) at start; False expects it to exist.
        decode: how a body becomes a payload (above).
        timeout: seconds to connect.
        metadata, name: see :class:`~databay_bus.Inlet`.

    Raises:
        BrokerError: the broker cannot be reached or refuses (at start, or in a pull).
    """

    _get_home_loop = staticmethod(_shared_background_loop)

    def __init__(
        self,
        queue: str,
        url: str = "amqp://guest:guest@127.0.0.1:5672/",
        count: int = 100,
        declare: bool = True,
        decode: Decode = "auto",
        timeout: float = 10.0,
        metadata: dict[str, Any] | None = None,
        name: str | None = None,
    ) -> None:
        super().__init__(metadata=metadata, name=name)
        owner = "AmqpInlet"
        self.queue = text(queue, "queue", owner)
        self.url = valid_url(url, "url", owner, ("amqp", "amqps"))
        if decode not in ("auto", "json", "text", "bytes"):
            raise ConfigurationError(
                "AmqpInlet: decode must be 'auto', 'json', 'text' or 'bytes', got "
                f"{describe(decode)}"
            )
        self.declare = as_bool(declare, "declare", owner)
        self.decode = decode
        self.count = positive_int(count, "count", owner)
        self.timeout = positive_seconds(timeout, "timeout", owner)
        self._amqp = AmqpConnection(self, url, self.timeout, confirms=False, prefetch=self.count)
        self._queue: aio_pika.abc.AbstractQueue | None = None
        # Messages taken and not yet settled, by delivery tag, with the channel they came on.
        self._unsettled: dict[int, tuple[object, aio_pika.abc.AbstractIncomingMessage]] = {}

    def on_start(self) -> None:
        run_on_home(self._open(), self.timeout + 5)

    def on_shutdown(self) -> None:
        self._unsettled.clear()  # the broker requeues them when the connection closes
        run_on_home(self._amqp.close(), self.timeout + 5)

    async def _open(self) -> aio_pika.abc.AbstractQueue:
        generation = self._amqp.generation
        channel = await self._amqp.channel()
        if self._queue is None or self._amqp.generation is not generation:
            self._unsettled.clear()  # tags of a closed channel mean nothing any more
            try:
                self._queue = await channel.declare_queue(
                    self.queue, durable=True, passive=not self.declare
                )
            except Exception as exc:
                await self._amqp.close()
                raise self._amqp.error(f"cannot use queue {self.queue!r}", exc) from exc
        return self._queue

    async def pull(self, update: Update) -> list[Record]:
        """Take up to ``count`` messages, unacknowledged."""
        return await on_home(self._take())

    async def _take(self) -> list[Record]:
        queue = await self._open()
        channel = self._amqp.generation
        records = []
        try:
            for _ in range(self.count):
                message = await queue.get(no_ack=False, fail=False, timeout=self.timeout)
                if message is None:
                    break
                try:
                    payload = self._payload(message.body)
                except ValueError as exc:
                    _LOGGER.error("%r: message %s rejected: %s", self, message.message_id, exc)
                    await message.reject(requeue=False)
                    continue
                tag = message.delivery_tag
                assert tag is not None
                self._unsettled[tag] = (channel, message)
                records.append(
                    self.new_record(
                        payload,
                        {QUEUE_KEY: self.queue, TAG_KEY: tag, MESSAGE_ID_KEY: message.message_id},
                    )
                )
        except Exception as exc:
            await self._amqp.close()
            raise self._amqp.error("pull failed", exc) from exc
        return records

    def _payload(self, body: bytes) -> Any:
        if self.decode == "bytes":
            return body
        if self.decode in ("auto", "json"):
            try:
                return json.loads(body)
            except ValueError:
                if self.decode == "json":
                    raise ValueError(f"body is not JSON: {body[:60]!r}") from None
        try:
            return body.decode("utf-8")
        except UnicodeDecodeError:
            if self.decode == "text":
                raise ValueError(f"body is not UTF-8 text: {body[:60]!r}") from None
            return body

    async def on_records_safe(self, records: list[Record], update: Update) -> None:
        """Acknowledge the messages: their records are stored (or delivered) now."""
        await on_home(self._settle(records, ack=True))

    async def on_records_failed(
        self, records: list[Record], update: Update, error: BaseException | None
    ) -> None:
        """Reject the messages back to the queue: the broker delivers them again."""
        await on_home(self._settle(records, ack=False))

    async def _settle(self, records: list[Record], ack: bool) -> None:
        current = self._amqp.generation
        calls = []
        for record in records:
            found = self._unsettled.pop(record.metadata.get(TAG_KEY, -1), None)
            if found is None or found[0] is not current:
                continue  # its channel closed: the broker requeued it already
            message = found[1]
            calls.append(message.ack() if ack else message.reject(requeue=True))
        failures = [e for e in await settle_all(calls) if e is not None]
        if failures:
            _LOGGER.error(
                "%r: %d of %d messages could not be %s; the broker will deliver them again",
                self,
                len(failures),
                len(calls),
                "acknowledged" if ack else "rejected",
                exc_info=failures[0],
            )

    def __repr__(self) -> str:
        return f"AmqpInlet(queue={self.queue!r}, name={self.name!r})"
