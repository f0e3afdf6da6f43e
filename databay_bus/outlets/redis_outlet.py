"""RedisStreamOutlet: append records to a Redis stream with XADD (needs the ``redis`` extra)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from databay_bus._lazy import require_extra
from databay_bus._secrets import mask_url
from databay_bus._validation import optional_positive_int, text
from databay_bus._validation import url as valid_url
from databay_bus.errors import BrokerError, NodeInactiveError
from databay_bus.outlets.base import Outlet, Processor

require_extra("RedisStreamOutlet", "redis", "redis")

import redis  # noqa: E402 - after the check that names the extra

if TYPE_CHECKING:
    from databay_bus.records import Record
    from databay_bus.update import Update

__all__ = ["RedisStreamOutlet"]

_SCHEMES = ("redis", "rediss", "unix")  # what redis.Redis.from_url takes

#: The entry field holding ``record.id`` (queued records), for consumers that deduplicate.
ID_FIELD = "databay_id"


class RedisStreamOutlet(Outlet):
    """Adds one stream entry per record; a push is one round trip (a pipeline of XADDs).

    A dict payload becomes the entry's fields (values that are not str, int or float are
    stored as JSON); any other payload is one field ``payload`` holding its JSON. A queued
    record's id is added as field ``databay_id``: a redelivered record (at least once) is then
    recognisable downstream.

    Args:
        stream: the stream key.
        url: the Redis server, ``redis://[user:password@]host:port/db``.
        maxlen: trim the stream to about this many entries (``MAXLEN ~``); None keeps all.
        processors, name: see :class:`~databay_bus.Outlet`.
        client_options: passed to ``redis.Redis.from_url``.

    Raises:
        BrokerError: the server cannot be reached, or refuses the entries.
    """

    def __init__(
        self,
        stream: str,
        url: str = "redis://127.0.0.1:6379/0",
        maxlen: int | None = None,
        processors: Processor | Sequence[Processor] | None = None,
        name: str | None = None,
        **client_options: Any,
    ) -> None:
        super().__init__(processors=processors, name=name)
        owner = "RedisStreamOutlet"
        self.stream = text(stream, "stream", owner)
        self.url = valid_url(url, "url", owner, _SCHEMES)
        self.maxlen = optional_positive_int(maxlen, "maxlen", owner)
        self.client_options = {"socket_connect_timeout": 5.0, **client_options}
        self._client: redis.Redis | None = None

    def on_start(self) -> None:
        client = redis.Redis.from_url(self.url, decode_responses=True, **self.client_options)
        try:
            client.ping()
        except redis.RedisError as exc:
            client.close()
            raise self._failed(exc) from exc
        self._client = client

    def on_shutdown(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            client.close()

    def push(self, records: list[Record], update: Update) -> None:
        client = self._client
        if client is None:
            raise NodeInactiveError(f"{self!r}: push while not started (call on_start first)")
        if not records:
            return
        pipe = client.pipeline(transaction=False)
        for record in records:
            pipe.xadd(self.stream, _fields(record), maxlen=self.maxlen, approximate=True)
        try:
            pipe.execute()
        except redis.RedisError as exc:
            raise self._failed(exc) from exc

    def _failed(self, exc: Exception) -> BrokerError:
        return BrokerError(
            f"{self!r}: Redis at {mask_url(self.url)} failed: {type(exc).__name__}: {exc}"
        )

    def __repr__(self) -> str:
        return f"RedisStreamOutlet(stream={self.stream!r}, name={self.name!r})"


def _fields(record: Record) -> dict[Any, Any]:
    payload = record.payload
    if isinstance(payload, dict) and payload and all(isinstance(k, str) for k in payload):
        fields: dict[Any, Any] = {
            key: value
            if isinstance(value, (str, int, float)) and not isinstance(value, bool)
            else json.dumps(value)
            for key, value in payload.items()
        }
    else:
        fields = {"payload": json.dumps(payload)}
    if record.id is not None:
        fields[ID_FIELD] = record.id
    return fields
