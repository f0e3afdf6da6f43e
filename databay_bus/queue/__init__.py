"""The persistent record queue between pull and push (see docs/queue.md).

``SqliteQueue(path)`` is the durable embedded queue, ``MemoryQueue()`` the same semantics
without durability; both implement :class:`RecordQueue`. Pass one to ``Link(queue=...)``.
"""

from __future__ import annotations

from databay_bus.queue.base import (
    DeadLetter,
    DeliveryState,
    FailResult,
    OutletStats,
    QueueStats,
    RecordQueue,
)
from databay_bus.queue.memory import MemoryQueue
from databay_bus.queue.retry import RetryPolicy
from databay_bus.queue.sqlite import SqliteQueue

__all__ = [
    "DeadLetter",
    "DeliveryState",
    "FailResult",
    "MemoryQueue",
    "OutletStats",
    "QueueStats",
    "RecordQueue",
    "RetryPolicy",
    "SqliteQueue",
]
