"""Each scheduled tick of a link pulled once across processes: the planner's tick hook."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

from databay_bus import Link
from databay_bus.planners._ticks import current_tick
from databay_bus.queue import MemoryQueue, PostgresQueue, RecordQueue
from tests.core_fakes import ManualPlanner
from tests.queue.queue_fakes import CountingInlet, ListOutlet

UTC = timezone.utc


class EverySeven:
    """A schedule with only ``next_after``: fire times 3 + 7k seconds after the epoch."""

    def next_after(self, moment: datetime) -> datetime:
        seconds = moment.timestamp()
        k = (seconds - 3) // 7 + 1
        return datetime.fromtimestamp(3 + 7 * k, UTC)


class TestCurrentTick:
    def test_interval_links_share_the_epoch_grid(self) -> None:
        link = Link(CountingInlet(), ListOutlet(), 10, tags="t")
        assert current_tick(link, 1234.5) == 1230.0
        assert current_tick(link, 1230.0) == 1230.0
        assert current_tick(link, 1239.999) == 1230.0

    def test_a_schedule_with_next_after_only(self) -> None:
        holder: Any = type("L", (), {"schedule": EverySeven()})()
        assert current_tick(holder, 24.0) == 24.0
        assert current_tick(holder, 30.9) == 24.0
        assert current_tick(holder, 31.0) == 31.0

    def test_a_grid_schedule_and_a_direct_answer(self) -> None:
        grid: Any = type(
            "G",
            (),
            {
                "interval": timedelta(seconds=5),
                "anchor": datetime.fromtimestamp(1, UTC),
                "next_after": lambda self, m: m,
            },
        )()
        assert current_tick(type("L", (), {"schedule": grid})(), 13.0) == 11.0
        direct: Any = type(
            "D",
            (),
            {
                "next_after": lambda self, m: m,
                "last_at_or_before": lambda self, m: datetime.fromtimestamp(100, UTC),
            },
        )()
        assert current_tick(type("L", (), {"schedule": direct})(), 150.0) == 100.0


class RefusingQueue(MemoryQueue):
    """A MemoryQueue on which every tick belongs to another process."""

    def claim_tick(self, link: str, tick: float) -> bool:
        return False


class TestDeliveryHook:
    def test_a_tick_claimed_elsewhere_delivers_without_pulling(self) -> None:
        queue = RefusingQueue()
        inlet, outlet = CountingInlet(2), ListOutlet()
        link = Link(inlet, outlet, 10, tags="t", queue=queue)
        queue.enqueue("t", link_records(7), [["ListOutlet"]])
        link._delivery.announce_tick(100.0)  # type: ignore[attr-defined]
        link.transfer()
        assert inlet.pulls == 0 and outlet.payloads == [7]
        assert link._delivery.metrics()["ticks_elsewhere"] == 1  # type: ignore[attr-defined]
        link.transfer()  # by hand: no tick, always pulls
        assert inlet.pulls == 1 and outlet.payloads == [7, 0, 1]

    def test_one_process_queues_claim_every_tick(self) -> None:
        queue: RecordQueue = MemoryQueue()
        assert queue.claim_tick("t", 1.0) and queue.claim_tick("t", 1.0)


def link_records(*payloads: object) -> list[Any]:
    from databay_bus import Record

    return [Record(p, {"__inlet__": "x"}) for p in payloads]


class TestAcrossNodes:
    def test_two_planners_on_one_schema_pull_a_tick_once(
        self, make_postgres: Callable[..., PostgresQueue]
    ) -> None:
        """Two planners (as two processes) fire the same tick: one pulls, both deliver."""
        nodes = []
        for _ in range(2):
            queue = make_postgres(clock=None)
            inlet, outlet = CountingInlet(3), ListOutlet(name="out")
            # An interval of 10**6 s: both calls fall in one tick (a boundary every 11 days).
            link = Link(
                inlet, outlet, 10**6, tags="shared", queue=queue, batch_size=2, drain_budget=0
            )
            nodes.append((ManualPlanner(link), link, inlet, outlet))
        for planner, link, _, _ in nodes:
            planner._run_transfer(link)
        assert sorted(inlet.pulls for _, _, inlet, _ in nodes) == [0, 1]
        # batch_size 2, no drain: the puller pushes two, the other process (delivering only)
        # the third
        assert [outlet.payloads for _, _, _, outlet in nodes] == [[0, 1], [2]]
        (puller,) = [link for _, link, inlet, _ in nodes if inlet.pulls]
        assert puller._delivery.claimed_tick is not None  # type: ignore[attr-defined]
