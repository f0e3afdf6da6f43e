"""The persistent record queue between pull and push (see docs/queue.md).

``SqliteQueue(path)`` is the durable embedded queue, ``MemoryQueue()`` the same semantics
without durability, ``PostgresQueue(dsn)`` a queue several processes and hosts share (see
docs/scaling.md); all implement :class:`RecordQueue`. Pass one to ``Link(queue=...)``.
``PostgresQueue`` is imported on first use, so ``import databay_bus`` never loads psycopg.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from databay_bus._lazy import lazy_attributes
from databay_bus.queue.base import (
    DeadLetter,
    DeliveredRecord,
    DeliveryState,
    FailResult,
    OutletStats,
    QueueStats,
    RecordQueue,
    WaitingRecord,
)
from databay_bus.queue.memory import MemoryQueue
from databay_bus.queue.retry import RetryPolicy
from databay_bus.queue.sqlite import SqliteQueue

if TYPE_CHECKING:
    from databay_bus.queue.postgres import PostgresQueue

__all__ = [
    "DeadLetter",
    "DeliveredRecord",
    "DeliveryState",
    "FailResult",
    "MemoryQueue",
    "OutletStats",
    "PostgresQueue",
    "QueueStats",
    "RecordQueue",
    "RetryPolicy",
    "SqliteQueue",
    "WaitingRecord",
]

__getattr__, __dir__ = lazy_attributes(globals(), {"PostgresQueue": "databay_bus.queue.postgres"})
