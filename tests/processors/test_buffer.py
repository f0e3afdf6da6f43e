"""Buffer: Databay's thresholds and controllers, the fixes, thread safety; time from FakeClock."""

from __future__ import annotations

import logging
import threading
from datetime import timedelta

import pytest

from databay_bus import Link, Outlet, Record
from databay_bus.errors import ConfigurationError
from databay_bus.inlets.base import Inlet
from databay_bus.link import Update
from databay_bus.processors import Buffer
from databay_bus.testing import FakeClock


def recs(*payloads: object) -> list[Record]:
    return [Record(p) for p in payloads]


def payloads(records: list[Record]) -> list[object]:
    return [r.payload for r in records]


def test_count_threshold_releases_when_exceeded() -> None:
    buffer = Buffer(count_threshold=3)
    assert buffer(recs(1, 2)) == []
    assert buffer(recs(3)) == []
    assert payloads(buffer(recs(4))) == [1, 2, 3, 4]  # more than 3, as in Databay
    assert buffer.records == [] and buffer(recs(5)) == []


def test_time_threshold_counts_from_oldest_record() -> None:
    clock = FakeClock()
    buffer = Buffer(time_threshold=10, clock=clock)
    clock.advance(100)  # time before any record does not count
    assert buffer(recs(1)) == []
    clock.advance(6)
    assert buffer(recs(2)) == []
    clock.advance(4)
    assert buffer([]) == []  # exactly 10 s: not more than the threshold
    clock.advance(0.5)
    assert payloads(buffer([])) == [1, 2]
    assert buffer.time_start is None


def test_time_threshold_accepts_timedelta() -> None:
    clock = FakeClock()
    buffer = Buffer(time_threshold=timedelta(minutes=1), clock=clock)
    buffer(recs(1))
    clock.advance(61)
    assert payloads(buffer([])) == [1]


def test_empty_buffer_never_releases_on_time() -> None:
    clock = FakeClock()
    buffer = Buffer(time_threshold=1, clock=clock)
    clock.advance(5)
    assert buffer([]) == [] and buffer.time_start is None


def test_or_mode_first_passing_controller_wins_in_order() -> None:
    seen: list[str] = []

    def custom(name: str, result: bool):  # type: ignore[no-untyped-def]
        def controller(records: list[Record]) -> bool:
            seen.append(name)
            return result

        return controller

    buffer = Buffer(count_threshold=0, custom_controllers=[custom("a", False), custom("b", True)])
    assert payloads(buffer(recs(1))) == [1]
    assert seen == ["a", "b"]
    assert buffer.get_controllers()[:2] == buffer.custom_controllers
    assert len(buffer.get_controllers()) == 3


def test_and_mode_needs_every_controller() -> None:
    clock = FakeClock()
    buffer = Buffer(count_threshold=1, time_threshold=5, conjugate_controllers=True, clock=clock)
    assert buffer(recs(1, 2)) == []  # count passes, time does not
    clock.advance(6)
    assert payloads(buffer([])) == [1, 2]


def test_and_mode_time_runs_even_while_other_controllers_fail() -> None:
    # Databay started the time controller only once the count controller passed.
    clock = FakeClock()
    buffer = Buffer(count_threshold=1, time_threshold=5, conjugate_controllers=True, clock=clock)
    buffer(recs(1))
    clock.advance(6)
    assert payloads(buffer(recs(2))) == [1, 2]


def test_custom_controller_sees_all_stored_records() -> None:
    buffer = Buffer(custom_controllers=lambda records: sum(r.payload for r in records) >= 10)
    assert buffer(recs(4)) == []
    assert payloads(buffer(recs(6))) == [4, 6]


@pytest.mark.parametrize("conjugate", [False, True])
def test_raising_controller_never_releases(
    conjugate: bool, databay_logs: pytest.LogCaptureFixture
) -> None:
    def broken(records: list[Record]) -> bool:
        raise RuntimeError("controller bug")

    buffer = Buffer(custom_controllers=[broken, lambda r: True], conjugate_controllers=conjugate)
    result = buffer(recs(1))
    assert result == ([] if conjugate else recs(1))
    errors = [r for r in databay_logs.records if r.levelno == logging.ERROR]
    assert errors and errors[0].exc_info is not None
    assert "controller bug" in str(errors[0].exc_info[1])


def test_flush_releases_and_clears() -> None:
    buffer = Buffer(count_threshold=100)
    buffer(recs(1))
    buffer.flush = True
    assert payloads(buffer(recs(2))) == [1, 2]
    assert buffer.flush is False


def test_no_controllers_only_flush_releases() -> None:
    for conjugate in (False, True):
        buffer = Buffer(conjugate_controllers=conjugate)
        assert buffer(recs(1)) == []
        buffer.flush = True
        assert payloads(buffer([])) == [1]


def test_reset_and_on_reset() -> None:
    calls: list[int] = []
    buffer = Buffer(count_threshold=1, on_reset=lambda: calls.append(1))
    buffer(recs(1))
    buffer.reset()
    assert buffer.records == [] and calls == [1]
    buffer(recs(1, 2))  # a release resets too
    assert calls == [1, 1]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"count_threshold": -1},
        {"count_threshold": 1.5},
        {"count_threshold": True},
        {"time_threshold": -2},
        {"time_threshold": "5"},
        {"custom_controllers": [5]},
        {"on_reset": "x"},
    ],
)
def test_bad_arguments(kwargs: dict[str, object]) -> None:
    with pytest.raises(ConfigurationError):
        Buffer(**kwargs)  # type: ignore[arg-type]


def test_concurrent_calls_lose_and_duplicate_nothing() -> None:
    buffer = Buffer(count_threshold=9)
    released: list[Record] = []
    lock = threading.Lock()
    start = threading.Barrier(8)

    def feed(worker: int) -> None:
        start.wait(10)
        for i in range(500):
            out = buffer(recs((worker, i)))
            with lock:
                released.extend(out)

    threads = [threading.Thread(target=feed, args=(w,)) for w in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    buffer.flush = True
    released.extend(buffer([]))
    assert sorted(payloads(released)) == sorted((w, i) for w in range(8) for i in range(500))  # type: ignore[type-var]


class Counter(Inlet):
    def pull(self, update: Update) -> int:
        return update.transfer_number


class Collect(Outlet):
    def __init__(self) -> None:
        super().__init__()
        self.batches: list[list[object]] = []

    def push(self, records: list[Record], update: Update) -> None:
        self.batches.append(payloads(records))


def test_as_link_and_outlet_processor() -> None:
    link_outlet, outlet_buffered = Collect(), Collect()
    outlet_buffered.processors = [Buffer(count_threshold=2)]
    link = Link(Counter(), [link_outlet], interval=1, processors=Buffer(count_threshold=1))
    other = Link(Counter(), [outlet_buffered], interval=1)
    for _ in range(4):
        link.transfer()
        other.transfer()
    assert [b for b in link_outlet.batches if b] == [[0, 1], [2, 3]]
    assert [b for b in outlet_buffered.batches if b] == [[0, 1, 2]]
