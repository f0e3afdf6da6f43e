"""Poison records: a failing batch is split so the good records are delivered, and only the
records that fail on their own are retried and dead-lettered, with their own error."""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any

import pytest
from queue_fakes import ValuesInlet

from databay_bus import Link, Outlet, Record, Update, _progress
from databay_bus.errors import ConfigurationError, PartialPushError
from databay_bus.queue import MemoryQueue, RetryPolicy
from databay_bus.testing import FakeClock

TWO_TRIES = RetryPolicy(max_attempts=2, initial_delay=10, jitter=0)


class StrictOutlet(Outlet):
    """Writes a batch all or nothing; a batch holding a non-int payload fails as a whole,
    naming the first bad payload. ``down`` fails every push."""

    def __init__(self, name: str = "strict", down: bool = False) -> None:
        super().__init__(name=name)
        self.down = down
        self.written: list[Any] = []
        self.pushes = 0

    def push(self, records: list[Record], update: Update) -> None:
        self.pushes += 1
        if self.down:
            raise ConnectionError("outlet unreachable")
        for record in records:
            if not isinstance(record.payload, int):
                raise TypeError(f"cannot write {record.payload!r}")
        self.written.extend(r.payload for r in records)


class AsyncStrictOutlet(StrictOutlet):
    async def push(self, records: list[Record], update: Update) -> None:  # type: ignore[override]
        super().push(records, update)


def queued(outlet: Outlet, *batches: list[Any], **options: Any) -> tuple[Link, MemoryQueue]:
    clock = FakeClock()
    queue = MemoryQueue(clock=clock)
    options.setdefault("retry", TWO_TRIES)
    link = Link(ValuesInlet(*batches), outlet, 60, tags="feed", queue=queue, **options)
    return link, queue


def advance(queue: MemoryQueue, seconds: float) -> None:
    clock = queue.clock
    assert isinstance(clock, FakeClock)
    clock.advance(seconds)


@pytest.mark.parametrize("make", [StrictOutlet, AsyncStrictOutlet])
def test_one_poison_record_among_twelve(make: type[StrictOutlet]) -> None:
    outlet = make()
    payloads: list[Any] = list(range(12))
    payloads[7] = "poison"
    link, queue = queued(outlet, payloads)
    link.transfer()
    assert sorted(outlet.written) == [p for p in payloads if p != "poison"]
    # The batch, the probe and the rest, then two pushes per halving of 11 (11 -> 6 -> 3 -> 2 -> 1).
    assert outlet.pushes <= 3 + 2 * 4
    advance(queue, 11)
    link.transfer()  # the poison record's second and last attempt
    assert Counter(outlet.written) == Counter(p for p in payloads if p != "poison")
    (letter,) = queue.dead_letters()
    assert letter.record is not None and letter.record.payload == "poison"
    assert letter.last_error is not None and "cannot write 'poison'" in letter.last_error
    assert letter.attempts == 2
    assert queue.stats().pending() == 0


def test_two_poison_records_keep_their_own_errors() -> None:
    outlet = StrictOutlet()
    payloads: list[Any] = list(range(16))
    payloads[2], payloads[13] = "bad-a", "bad-b"
    link, queue = queued(outlet, payloads, retry=RetryPolicy(max_attempts=1))
    link.transfer()
    assert sorted(outlet.written) == [p for p in payloads if isinstance(p, int)]
    errors = {d.record.payload: d.last_error for d in queue.dead_letters() if d.record}
    assert errors == {
        "bad-a": "TypeError: cannot write 'bad-a'",
        "bad-b": "TypeError: cannot write 'bad-b'",
    }


def test_an_outlet_that_is_down_costs_three_pushes() -> None:
    outlet = StrictOutlet(down=True)
    link, queue = queued(outlet, list(range(10)))
    link.transfer()
    assert outlet.pushes == 3  # the batch, the first record alone, the rest
    assert queue.stats().pending() == 10
    advance(queue, 11)
    link.transfer()  # second attempt: everything dead, nothing good was lost early
    assert len(queue.dead_letters()) == 10


def test_switched_off_fails_the_batch_whole() -> None:
    outlet = StrictOutlet()
    link, queue = queued(outlet, [1, "poison", 3], isolate_poison=False)
    link.transfer()
    assert outlet.pushes == 1 and outlet.written == []
    assert queue.stats().pending() == 3


def test_extra_pushes_are_bounded_per_transfer() -> None:
    outlet = StrictOutlet()
    payloads: list[Any] = [f"bad-{i}" if i % 2 else i for i in range(64)]
    link, _queue = queued(outlet, payloads, max_isolation_pushes=6)
    link.transfer()
    assert outlet.pushes <= 1 + 6


def test_bad_options_are_refused() -> None:
    with pytest.raises(ConfigurationError, match="isolate_poison must be True or False"):
        queued(StrictOutlet(), [1], isolate_poison="yes")
    with pytest.raises(ConfigurationError, match="max_isolation_pushes"):
        queued(StrictOutlet(), [1], max_isolation_pushes=0)


class ReportingOutlet(Outlet):
    """Writes the ints, reports the rest with PartialPushError, each with its own error."""

    def __init__(self) -> None:
        super().__init__(name="reporting")
        self.written: list[Any] = []
        self.pushes = 0

    def push(self, records: list[Record], update: Update) -> None:
        self.pushes += 1
        bad = [(r, ValueError(f"no room for {r.payload}")) for r in records if r.payload < 0]
        self.written.extend(r.payload for r in records if r.payload >= 0)
        if bad:
            raise PartialPushError(f"{len(bad)} record(s) refused", bad)


def test_partial_push_error_acks_the_rest() -> None:
    outlet = ReportingOutlet()
    link, queue = queued(outlet, [1, -2, 3, -4], retry=RetryPolicy(max_attempts=1))
    link.transfer()
    assert outlet.pushes == 1  # no splitting: the outlet said which ones failed
    assert outlet.written == [1, 3]
    errors = {d.record.payload: d.last_error for d in queue.dead_letters() if d.record}
    assert errors == {-2: "ValueError: no room for -2", -4: "ValueError: no room for -4"}
    assert queue.stats().pending() == 0


def test_partial_push_error_without_a_queue_fails_the_push() -> None:
    link = Link(ValuesInlet([1, -2]), ReportingOutlet(), 60)
    with pytest.raises(PartialPushError, match="1 record"):
        link.transfer()


def test_a_long_drain_reports_progress(
    monkeypatch: pytest.MonkeyPatch, databay_logs: pytest.LogCaptureFixture
) -> None:
    clock = FakeClock()
    monkeypatch.setattr(_progress, "CLOCK", clock)

    class Slow(StrictOutlet):
        def push(self, records: list[Record], update: Update) -> None:
            clock.advance(2)  # each batch takes two (fake) seconds
            super().push(records, update)

    pairs = lambda batches: [b[i : i + 2] for b in batches for i in range(0, len(b), 2)]  # noqa: E731
    link, _queue = queued(
        Slow(), list(range(30)), groupers=[pairs], batch_size=20, drain_budget=0
    )
    link.transfer()
    lines = [
        r.getMessage()
        for r in databay_logs.records
        if r.levelno == logging.INFO and "delivered so far" in r.getMessage()
    ]
    assert lines == [  # every 5 (fake) seconds, never after the last batch
        "feed.0: outlet strict: 6 records delivered so far (1/s), 14 more in this transfer, "
        "24 waiting in the queue in all",
        "feed.0: outlet strict: 12 records delivered so far (1/s), 8 more in this transfer, "
        "18 waiting in the queue in all",
        "feed.0: outlet strict: 18 records delivered so far (1/s), 2 more in this transfer, "
        "12 waiting in the queue in all",
    ]
