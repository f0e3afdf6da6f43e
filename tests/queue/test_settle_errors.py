"""A queue failing while it settles a push fails the transfer, for sync and async outlets."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pytest

from databay_bus import Inlet, Link, Outlet, Record, Update
from databay_bus.errors import QueueError
from databay_bus.queue import MemoryQueue


class BrokenAckQueue(MemoryQueue):
    def ack(self, link: str, outlet: str, ids: Iterable[str | None]) -> int:
        raise QueueError("disk full while acking")


class One(Inlet):
    def pull(self, update: Update) -> int:
        return 1


class SyncSink(Outlet):
    def __init__(self) -> None:
        super().__init__()
        self.got: list[Any] = []

    def push(self, records: list[Record], update: Update) -> None:
        self.got.extend(r.payload for r in records)


class AsyncSink(SyncSink):
    async def push(self, records: list[Record], update: Update) -> None:  # type: ignore[override]
        self.got.extend(r.payload for r in records)


@pytest.mark.parametrize("sink", [SyncSink, AsyncSink], ids=["sync", "async"])
def test_ack_failure_is_raised_and_records_stay_pending(sink: type[SyncSink]) -> None:
    """The error surfaces (it used to vanish for sync links); the record is not lost."""
    queue = BrokenAckQueue()
    outlet = sink()
    link = Link(One(), outlet, 1, tags="acks", queue=queue)
    with pytest.raises(QueueError, match="disk full"):
        link.transfer()
    assert outlet.got == [1]
    assert queue.stats().pending("acks") == 1  # delivered once, redelivered later
