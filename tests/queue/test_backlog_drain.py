"""Backlog drain: a queued transfer goes on delivering further chunks of ``batch_size`` to an
outlet while its previous chunk was full and ``drain_budget`` is not spent (issue 19)."""

from __future__ import annotations

import logging
import threading
import weakref
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from queue_fakes import ValuesInlet

from databay_bus import Link, Outlet, Record, Update, _progress
from databay_bus.errors import ArgumentTypeError, ConfigurationError
from databay_bus.planners import SchedulePlanner
from databay_bus.queue import DeliveryState, MemoryQueue, RetryPolicy
from databay_bus.schedules import Cron
from databay_bus.testing import FakeClock

LATER = RetryPolicy(max_attempts=3, initial_delay=100, jitter=0)


class ChunkOutlet(Outlet):
    """Keeps every pushed batch's payloads; ``before(payloads)`` runs first and may raise.

    ``events`` (shared with the queue spy below) shows what happened in order."""

    def __init__(self, events: list[str], name: str = "out", before: Any = None) -> None:
        super().__init__(name=name)
        self.events = events
        self.before: Callable[[list[Any]], None] | None = before
        self.batches: list[list[Any]] = []

    def push(self, records: list[Record], update: Update) -> None:
        payloads = [r.payload for r in records]
        if self.before is not None:
            self.before(payloads)
        self.events.append(f"push {self.name} {len(payloads)}")
        self.batches.append(payloads)

    @property
    def payloads(self) -> list[Any]:
        return [p for batch in self.batches for p in batch]


class AsyncChunkOutlet(ChunkOutlet):
    async def push(self, records: list[Record], update: Update) -> None:  # type: ignore[override]
        super().push(records, update)


class SpyQueue(MemoryQueue):
    """A MemoryQueue noting each ``due`` call (and how many records it handed out)."""

    def __init__(self, events: list[str], clock: FakeClock) -> None:
        super().__init__(clock=clock)
        self.events = events

    def due(self, link: str, outlet: str, limit: int, known: Any = None) -> list[Record]:
        records = super().due(link, outlet, limit, known)
        self.events.append(f"due {outlet} {len(records)}")
        return records


def backlog(
    size: int,
    *outlets: ChunkOutlet,
    events: list[str],
    clock: FakeClock | None = None,
    interval: float | timedelta | Cron = 60,
    **options: Any,
) -> tuple[Link, SpyQueue]:
    """A queued link holding ``size`` records queued while its outlets were down."""
    queue = SpyQueue(events, clock or FakeClock())
    options.setdefault("retry", LATER)
    link = Link(
        ValuesInlet(list(range(size))), list(outlets), interval, tags="feed", queue=queue, **options
    )
    befores = [o.before for o in outlets]
    for outlet in outlets:
        outlet.before = _down
    link.transfer()  # queues everything; the failed first chunks retry later...
    queue.drop(link="feed", states=(DeliveryState.FAILED,))  # ...so drop those: all else is pending
    for outlet, before in zip(outlets, befores, strict=True):
        outlet.before = before
        outlet.batches.clear()
    events.clear()
    return link, queue


def _down(payloads: list[Any]) -> None:
    raise ConnectionError("down")


@pytest.mark.parametrize("make", [ChunkOutlet, AsyncChunkOutlet])
def test_one_transfer_drains_the_backlog_one_chunk_at_a_time(make: type[ChunkOutlet]) -> None:
    events: list[str] = []
    out = make(events)
    link, queue = backlog(25, out, events=events, batch_size=5)
    assert queue.waiting("feed") == 20  # the first chunk of 5 failed and was dropped
    link.transfer()
    assert out.payloads == list(range(5, 25))
    assert queue.waiting("feed") == 0
    # each chunk is fetched once the one before is pushed: one chunk in memory at a time
    assert events == [
        "due out 5", "push out 5", "due out 5", "push out 5",
        "due out 5", "push out 5", "due out 5", "push out 5", "due out 0",
    ]  # fmt: skip


def test_drain_budget_zero_delivers_one_chunk_per_transfer() -> None:
    events: list[str] = []
    out = ChunkOutlet(events)
    link, queue = backlog(25, out, events=events, batch_size=5, drain_budget=0)
    link.transfer()
    assert events == ["due out 5", "push out 5"]
    assert queue.waiting("feed") == 15


def test_a_partial_chunk_ends_the_drain() -> None:
    events: list[str] = []
    out = ChunkOutlet(events)
    link, _queue = backlog(17, out, events=events, batch_size=5)
    link.transfer()  # 12 wait: 5, 5, then 2 (not full: nothing more is asked for)
    assert events == ["due out 5", "push out 5", "due out 5", "push out 5", "due out 2",
                      "push out 2"]  # fmt: skip


def test_the_drain_stops_once_its_budget_is_spent() -> None:
    clock = FakeClock()
    events: list[str] = []
    out = ChunkOutlet(events, before=lambda _p: clock.advance(1))  # a push takes 1 s
    link, queue = backlog(50, out, events=events, clock=clock, batch_size=5, drain_budget=2.5)
    link.transfer()  # chunks end at 1 s, 2 s, 3 s: no fourth chunk after 2.5 s
    assert len(out.batches) == 3
    assert queue.waiting("feed") == 45 - 15
    link.transfer()  # the next transfer goes on where it stopped
    assert out.payloads == list(range(5, 35))


@pytest.mark.parametrize(
    ("interval", "seconds_per_push", "chunks"),
    [
        (60, 10, 3),  # half the interval: 30 s
        (timedelta(minutes=1), 10, 3),
        # every 2 minutes; the fake clock starts on one: 120 s to the next fire, budget 60 s
        (Cron("*/2 * * * *"), 25, 3),
    ],
)
def test_the_default_budget_is_half_the_interval(
    interval: float | timedelta | Cron, seconds_per_push: float, chunks: int
) -> None:
    clock = FakeClock()
    assert clock.time() % 120 == 0
    events: list[str] = []
    out = ChunkOutlet(events, before=lambda _p: clock.advance(seconds_per_push))
    link, _queue = backlog(
        100,
        out,
        events=events,
        clock=clock,
        interval=interval,
        batch_size=5,
    )
    link.transfer()
    assert len(out.batches) == chunks


def test_a_failed_push_ends_the_drain() -> None:
    events: list[str] = []
    out = ChunkOutlet(events)

    def second_chunk_fails(payloads: list[Any]) -> None:
        if payloads[0] == 10:
            raise ConnectionError("down again")

    out.before = second_chunk_fails
    link, queue = backlog(30, out, events=events, batch_size=5, isolate_poison=False)
    link.transfer()
    assert events == ["due out 5", "push out 5", "due out 5"]  # no third chunk
    assert out.payloads == [5, 6, 7, 8, 9]
    assert queue.stats().outlets[0].retrying == 5  # the retry policy applies as before
    assert queue.waiting("feed") == 20


def test_a_poison_record_ends_the_drain_after_its_chunk_is_isolated() -> None:
    events: list[str] = []
    out = ChunkOutlet(events)

    def poison(payloads: list[Any]) -> None:
        if 12 in payloads:
            raise ValueError("cannot write 12")

    out.before = poison
    link, queue = backlog(30, out, events=events, batch_size=5)
    link.transfer()
    # chunk 10..14 is split and its good records go through; no chunk after it
    assert out.payloads == [5, 6, 7, 8, 9, 10, 11, 13, 14]
    assert queue.waiting("feed") == 16
    assert [e for e in events if e.startswith("due")] == ["due out 5", "due out 5"]


def test_other_outlets_are_not_affected() -> None:
    events: list[str] = []
    up, down = ChunkOutlet(events, "up"), ChunkOutlet(events, "down", before=_down)
    link, queue = backlog(25, up, down, events=events, batch_size=5)
    down.before = _down
    link.transfer()
    assert up.payloads == list(range(5, 25))  # drained
    assert [e for e in events if " down " in e] == ["due down 5"]
    stats = {s.outlet: s for s in queue.stats().outlets}
    assert (stats["down"].retrying, stats["down"].pending) == (5, 20)  # pending counts both


def test_a_planner_shutting_down_stops_the_drain(
    wait_until: Callable[..., None],
) -> None:
    events: list[str] = []
    out = ChunkOutlet(events)
    link, queue = backlog(30, out, events=events, batch_size=5)
    planner = SchedulePlanner(link, immediate_transfer=False)
    planner.start(block=False)
    stopping: list[threading.Thread] = []

    def shut_down_once(payloads: list[Any]) -> None:
        if not stopping:
            stopping.append(threading.Thread(target=planner.shutdown))
            stopping[0].start()
            wait_until(lambda: planner.state.value != "running", message="shutdown starts")

    out.before = shut_down_once
    try:
        link.transfer()  # a transfer in flight when the shutdown comes
    finally:
        for thread in stopping:
            thread.join(10)
    assert out.payloads == [5, 6, 7, 8, 9]  # the chunk in flight, then no other
    assert queue.waiting("feed") == 20  # the rest stays queued
    assert planner.state.value == "stopped"

    out.before = None
    planner.start(block=False)  # a planner starting the link lets it drain again
    try:
        link.transfer()
    finally:
        planner.shutdown()
    assert queue.waiting("feed") == 0


def test_a_wake_up_between_ticks_delivers_one_chunk() -> None:
    events: list[str] = []
    out = ChunkOutlet(events)
    link, queue = backlog(25, out, events=events, batch_size=5)
    link._delivery.announce_tick(None, pull=False)  # type: ignore[attr-defined]
    link.transfer()
    assert events == ["due out 5", "push out 5"]
    link.transfer()  # a tick drains
    assert queue.waiting("feed") == 0


def test_progress_lines_and_the_summary_with_a_fake_clock(
    monkeypatch: pytest.MonkeyPatch, databay_logs: pytest.LogCaptureFixture
) -> None:
    clock = FakeClock()
    monkeypatch.setattr(_progress, "CLOCK", clock)
    events: list[str] = []
    out = ChunkOutlet(events, before=lambda _p: clock.advance(2))  # 2 s per chunk of 4
    link, _queue = backlog(24, out, events=events, clock=clock, batch_size=4)
    databay_logs.clear()
    link.transfer()
    lines = [
        r.getMessage()
        for r in databay_logs.records
        if r.levelno == logging.INFO and "delivered" in r.getMessage()
    ]
    assert lines == [  # after 1 (fake) second, then every 5, then how the drain ended
        "feed.1: outlet out: 4 records delivered so far (2/s), draining the backlog: "
        "16 waiting in the queue in all",
        "feed.1: outlet out: 16 records delivered so far (2/s), draining the backlog: "
        "4 waiting in the queue in all",
        "feed.1: outlet out: backlog drain ended (caught up): 20 records delivered in 10.0 s "
        "(2/s, 5 chunks), 0 waiting in the queue in all",
    ]


def test_a_short_drain_ends_with_a_debug_line_only(
    databay_logs: pytest.LogCaptureFixture,
) -> None:
    events: list[str] = []
    out = ChunkOutlet(events)
    link, _queue = backlog(20, out, events=events, batch_size=5)
    databay_logs.clear()
    link.transfer()  # the fake clock stands still: 0 s
    ended = [r for r in databay_logs.records if "backlog drain ended" in r.getMessage()]
    assert [r.levelno for r in ended] == [logging.DEBUG]
    assert "15 records delivered in 0.0 s" in ended[0].getMessage()


@pytest.mark.parametrize(
    ("value", "error", "shown"),
    [
        (-1, ConfigurationError, "-1 (int)"),
        (float("inf"), ConfigurationError, "inf (float)"),
        ("30s", ArgumentTypeError, "'30s' (str)"),
        (True, ArgumentTypeError, "True (bool)"),
    ],
)
def test_drain_budget_is_validated(value: Any, error: type[Exception], shown: str) -> None:
    with pytest.raises(error, match=r"Link\(tags:\['feed'\].*drain_budget must be .*, got ") as e:
        Link(ValuesInlet(), ChunkOutlet([]), 60, tags="feed", queue=MemoryQueue(),
             drain_budget=value)  # fmt: skip
    assert str(e.value).endswith(shown)


def test_drain_budget_takes_seconds_or_a_timedelta() -> None:
    link = Link(ValuesInlet(), ChunkOutlet([]), 60, tags="feed", queue=MemoryQueue(),
                drain_budget=timedelta(seconds=90))  # fmt: skip
    assert link._delivery.drain_budget == 90  # type: ignore[attr-defined]


def test_removing_the_link_from_its_planner_stops_the_drain() -> None:
    events: list[str] = []
    out = ChunkOutlet(events)
    link, queue = backlog(30, out, events=events, batch_size=5)
    planner = SchedulePlanner(link, immediate_transfer=False)
    planner.start(block=False)
    try:
        out.before = lambda _p: planner.remove_links(link) if planner.links else None
        link.transfer()
    finally:
        planner.shutdown()
    assert out.payloads == [5, 6, 7, 8, 9]
    assert queue.waiting("feed") == 20


def test_chunks_already_pushed_are_not_kept() -> None:
    class Batch(list):  # type: ignore[type-arg]
        """A batch that can be watched with a weak reference."""

    made: list[weakref.ref[Batch]] = []
    alive_at_push: list[int] = []

    def watched(batches: list[list[Record]]) -> list[list[Record]]:
        out = [Batch(batch) for batch in batches]
        made.extend(weakref.ref(batch) for batch in out)
        return out

    events: list[str] = []
    out = ChunkOutlet(events, before=lambda _p: alive_at_push.append(
        sum(ref() is not None for ref in made)))  # fmt: skip
    link, queue = backlog(40, out, events=events, batch_size=5, groupers=[watched])
    made.clear()  # the outage's batch (its error may keep it) is not the drain's business
    link.transfer()
    assert queue.waiting("feed") == 0 and len(made) == 7
    assert alive_at_push == [1] * 7  # only the chunk being pushed is held
