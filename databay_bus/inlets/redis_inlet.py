"""RedisStreamInlet: read a Redis stream through a consumer group (needs the ``redis`` extra).

Each pull reads up to ``count`` entries for this consumer: first those it was given before
and never acknowledged (after a failed transfer or a crash), then new ones (``XREADGROUP
... >``). An entry is acknowledged (``XACK``) only in :meth:`RedisStreamInlet.on_records_safe`,
once its record is stored by the link's queue or taken by every outlet; until then it stays
in the group's pending list and is read again. Delivery is therefore at least once.
"""

from __future__ import annotations

import logging
import os
import socket
from typing import TYPE_CHECKING, Any

from databay_bus._lazy import require_extra
from databay_bus._secrets import mask_url
from databay_bus._validation import optional_text, positive_int, text
from databay_bus._validation import url as valid_url
from databay_bus.errors import BrokerError, NodeInactiveError
from databay_bus.inlets.base import Inlet
from databay_bus.records import Record

require_extra("RedisStreamInlet", "redis", "redis")

import redis  # noqa: E402 - after the check that names the extra

if TYPE_CHECKING:
    from databay_bus.update import Update

__all__ = ["RedisStreamInlet"]

_SCHEMES = ("redis", "rediss", "unix")  # what redis.Redis.from_url takes

_LOGGER = logging.getLogger(__name__)

#: Metadata keys every record of this inlet carries.
STREAM_KEY, ENTRY_KEY = "redis_stream", "redis_id"


class RedisStreamInlet(Inlet):
    """Reads entries of ``stream`` as consumer ``consumer`` of group ``group``.

    Each record's payload is the entry's fields (a dict of str), its metadata holds the
    stream (``'redis_stream'``) and the entry id (``'redis_id'``, usable for idempotent
    writes).

    Args:
        stream: the stream key.
        group: the consumer group; created (with the stream) at start if missing, reading
            from ``start_id`` (``'0'``: the whole stream, ``'$'``: only new entries).
        consumer: this reader's name in the group (default: host name and process id). Give a
            stable one so a restarted process reads its own unacknowledged entries again.
        url: the Redis server, ``redis://[user:password@]host:port/db``.
        count: at most this many entries per pull.
        metadata, name: see :class:`~databay_bus.Inlet`.
        client_options: passed to ``redis.Redis.from_url`` (timeouts, TLS).

    Raises:
        BrokerError: the server cannot be reached (at start or in a pull).
    """

    def __init__(
        self,
        stream: str,
        group: str,
        consumer: str | None = None,
        url: str = "redis://127.0.0.1:6379/0",
        count: int = 100,
        start_id: str = "0",
        metadata: dict[str, Any] | None = None,
        name: str | None = None,
        **client_options: Any,
    ) -> None:
        super().__init__(metadata=metadata, name=name)
        owner = "RedisStreamInlet"
        self.stream = text(stream, "stream", owner)
        self.group = text(group, "group", owner)
        self.url = valid_url(url, "url", owner, _SCHEMES)
        self.consumer = (
            optional_text(consumer, "consumer", owner) or f"{socket.gethostname()}-{os.getpid()}"
        )
        self.count = positive_int(count, "count", owner)
        self.start_id = text(start_id, "start_id", owner)
        self.client_options = {"socket_connect_timeout": 5.0, **client_options}
        self._client: redis.Redis | None = None

    def on_start(self) -> None:
        client = redis.Redis.from_url(self.url, decode_responses=True, **self.client_options)
        try:
            client.xgroup_create(self.stream, self.group, id=self.start_id, mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                client.close()
                raise BrokerError(f"{self!r}: cannot create group {self.group!r}: {exc}") from exc
        except redis.RedisError as exc:
            client.close()
            raise self._unreachable(exc) from exc
        self._client = client

    def on_shutdown(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            client.close()

    def pull(self, update: Update) -> list[Record]:
        """Entries given to this consumer and not acknowledged yet, then new ones."""
        client = self._client
        if client is None:
            raise NodeInactiveError(f"{self!r}: pull while not started (call on_start first)")
        try:
            entries = self._read(client, "0", self.count)  # ours, never acknowledged
            if len(entries) < self.count:
                entries += self._read(client, ">", self.count - len(entries))
        except redis.RedisError as exc:
            raise self._unreachable(exc) from exc
        gone = [entry_id for entry_id, fields in entries if not fields]
        if gone:  # deleted from the stream while pending: nothing left to store
            client.xack(self.stream, self.group, *gone)
        return [
            self.new_record(dict(fields), {STREAM_KEY: self.stream, ENTRY_KEY: entry_id})
            for entry_id, fields in entries
            if fields
        ]

    def _read(self, client: redis.Redis, start: str, count: int) -> list[tuple[str, Any]]:
        reply: Any = client.xreadgroup(self.group, self.consumer, {self.stream: start}, count=count)
        if isinstance(reply, dict):  # RESP3: {stream: [[id, fields], ...]}
            return [(entry[0], entry[1]) for entry in reply.get(self.stream, [])]
        return [(entry_id, fields) for _, batch in reply or [] for entry_id, fields in batch]

    def on_records_safe(self, records: list[Record], update: Update) -> None:
        """Acknowledge the entries: they are stored (or delivered) now."""
        ids = [record.metadata[ENTRY_KEY] for record in records if ENTRY_KEY in record.metadata]
        if ids and self._client is not None:
            self._client.xack(self.stream, self.group, *ids)

    def on_records_failed(
        self, records: list[Record], update: Update, error: BaseException | None
    ) -> None:
        """Nothing to do: unacknowledged entries are read again by the next pull."""
        _LOGGER.warning(
            "%r: %d entries not safe (%s); they stay pending and are read again",
            self,
            len(records),
            error,
        )

    def _unreachable(self, exc: Exception) -> BrokerError:
        return BrokerError(
            f"{self!r}: Redis at {mask_url(self.url)} failed: {type(exc).__name__}: {exc}"
        )

    def __repr__(self) -> str:
        return f"RedisStreamInlet(stream={self.stream!r}, group={self.group!r}, name={self.name!r})"
