"""Routing with a queue: decided once at enqueue time, stored, and kept across restarts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from databay_bus import Inlet, Link, Outlet, Record, Update
from databay_bus.queue import MemoryQueue, RetryPolicy, SqliteQueue
from databay_bus.routing import ALL, MetadataRouter
from databay_bus.testing import FakeClock


class KindInlet(Inlet):
    """Pulls the given (kind, payload) pairs once, then nothing."""

    def __init__(self, items: list[tuple[str, Any]]) -> None:
        super().__init__()
        self.items = items

    def pull(self, update: Update) -> list[Record]:
        items, self.items = self.items, []
        return [self.new_record(payload, {"kind": kind}) for kind, payload in items]


class Collect(Outlet):
    def __init__(self, name: str, fail: bool = False) -> None:
        super().__init__(name=name)
        self.fail = fail
        self.payloads: list[Any] = []

    def push(self, records: list[Record], update: Update) -> None:
        if self.fail and records:
            raise ConnectionError(f"{self.name} is down")
        self.payloads.extend(r.payload for r in records)


ROUTES = {"a": "a", "b": "b", "both": ["a", "b"]}


def test_only_routed_outlets_get_a_delivery() -> None:
    """A record routed to one outlet leaves nothing pending for the others."""
    queue = MemoryQueue()
    a, b = Collect("a"), Collect("b")
    link = Link(
        KindInlet([("a", 1), ("b", 2), ("both", 3), ("none", 4)]),
        [a, b],
        1,
        tags="routed",
        queue=queue,
        router=MetadataRouter("kind", ROUTES),
    )
    link.transfer()
    assert a.payloads == [1, 3] and b.payloads == [2, 3]
    stats = queue.stats()
    assert stats.pending("routed") == 0
    assert {s.outlet for s in stats.outlets} <= {"a", "b"}


def test_pending_routed_deliveries_survive_a_restart(tmp_path: Path) -> None:
    """After a restart with another router, pending records still go where first routed."""
    path = tmp_path / "routes.sqlite3"
    clock = FakeClock()
    first = SqliteQueue(path, clock=clock)
    a, down = Collect("a"), Collect("b", fail=True)
    link = Link(
        KindInlet([("a", 1), ("b", 2), ("both", 3)]),
        [a, down],
        1,
        tags="routed",
        queue=first,
        router=MetadataRouter("kind", ROUTES),
        retry=RetryPolicy(max_attempts=10, initial_delay=1, jitter=0),
    )
    link.transfer()
    assert a.payloads == [1, 3]
    assert down.payloads == []
    first.close()

    # A new process: b works now, and the router would send everything everywhere.
    clock.advance(60)
    second = SqliteQueue(path, clock=clock)
    a2, b2 = Collect("a"), Collect("b")
    restarted = Link(
        KindInlet([]),
        [a2, b2],
        1,
        tags="routed",
        queue=second,
        router=MetadataRouter("kind", {}, default=ALL),
    )
    restarted.transfer()
    assert b2.payloads == [2, 3]  # exactly what was routed to b, in enqueue order
    assert a2.payloads == []  # a had everything already: no redelivery
    assert second.stats().pending("routed") == 0
    second.close()
