"""Pull retries: a failing source is retried with backoff, counted, logged once per failure
streak, and never fails the transfer or stops the planner."""

from __future__ import annotations

import logging
import re
from typing import Any

import pytest
from core_fakes import ListInlet, ManualPlanner, RecordingOutlet

from databay_bus import Inlet, Link, Update
from databay_bus.errors import ArgumentTypeError, ConfigurationError
from databay_bus.observers import Event, PullFailed
from databay_bus.queue import MemoryQueue, RetryPolicy
from databay_bus.testing import FakeClock


class Source(Inlet):
    """Fails its next ``down`` pulls, then returns ``[n]`` (n = how many pulls succeeded)."""

    def __init__(self, down: int, name: str = "source") -> None:
        super().__init__(name=name)
        self.down = down
        self.calls = 0
        self.served = 0

    def pull(self, update: Update) -> list[int]:
        self.calls += 1
        if self.down:
            self.down -= 1
            raise ConnectionError("source unreachable")
        self.served += 1
        return [self.served]


class AsyncSource(Source):
    async def pull(self, update: Update) -> list[int]:  # type: ignore[override]
        return super().pull(update)


def link_with(
    inlets: Any, interval: float = 60, outlet: RecordingOutlet | None = None, **options: Any
) -> tuple[Link, RecordingOutlet, FakeClock, list[float]]:
    outlet = outlet or RecordingOutlet()
    link = Link(inlets, outlet, interval, tags="feed", **options)
    clock, slept = FakeClock(), []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        clock.advance(seconds)

    assert link._pulls is not None
    link._pulls.use_clock(clock, sleep)
    return link, outlet, clock, slept


POLICY = RetryPolicy(max_attempts=5, initial_delay=1, multiplier=2, jitter=0)


@pytest.mark.parametrize("make", [Source, AsyncSource])
def test_retried_within_the_transfer(
    make: type[Source], databay_logs: pytest.LogCaptureFixture
) -> None:
    source = make(down=2)
    link, outlet, _clock, slept = link_with(source, pull_retry=POLICY)
    link.transfer()
    assert outlet.payloads == [[1]]
    assert slept == [1, 2]
    assert link._pulls is not None
    assert link._pulls.metrics() == {"pull_failures": 2, "pull_retries": 2, "pull_skips": 0}
    tracebacks = [r for r in databay_logs.records if r.exc_info is not None]
    assert [r.getMessage() for r in tracebacks] == [
        "feed.0: inlet source failed: ConnectionError: source unreachable"
    ]
    assert "feed.0: inlet source back after 2 failures" in databay_logs.text


def test_backoff_longer_than_the_budget_waits_for_a_later_tick() -> None:
    source = Source(down=1)
    slow = RetryPolicy(initial_delay=10, jitter=0)
    link, outlet, clock, slept = link_with(source, interval=1, pull_retry=slow)
    link.transfer()  # fails; a 10 s wait does not fit in half of a 1 s interval
    assert (source.calls, slept, outlet.payloads) == (1, [], [[]])
    clock.advance(1)
    link.transfer()  # still backing off: the inlet is not pulled
    assert source.calls == 1
    clock.advance(9)
    link.transfer()
    assert source.calls == 2 and outlet.payloads[-1] == [1]
    assert link._pulls is not None and link._pulls.metrics()["pull_skips"] == 1


def test_max_attempts_bounds_the_tries_of_one_transfer() -> None:
    source = Source(down=10)
    link, _outlet, _clock, _slept = link_with(
        source, pull_retry=RetryPolicy(max_attempts=3, initial_delay=1, jitter=0)
    )
    link.transfer()
    assert source.calls == 3


def test_per_inlet_policy_and_others_fail_as_before() -> None:
    guarded, plain = Source(down=1, name="guarded"), Source(down=1, name="plain")
    link, _outlet, _clock, _slept = link_with([guarded, plain], inlet_retry={"guarded": POLICY})
    with pytest.raises(ConnectionError):  # the plain inlet fails the transfer, as in Databay
        link.transfer()
    assert guarded.served == 1


def test_events_for_observers() -> None:
    seen: list[Event] = []
    link, _outlet, _clock, _slept = link_with(Source(down=1), pull_retry=POLICY)
    link.add_listener(seen.append)
    link.transfer()
    (failed,) = [e for e in seen if isinstance(e, PullFailed)]
    assert (failed.inlet, failed.failures, failed.retrying) == ("source", 1, True)
    assert isinstance(failed.exception, ConnectionError)


def test_a_queued_backlog_is_still_delivered_while_the_source_is_down() -> None:
    queue_clock = FakeClock()
    pushes: list[int] = []

    def down_once(records: list[Any], update: Update) -> None:
        pushes.append(update.transfer_number)
        if len(pushes) == 1:
            raise ConnectionError("outlet down")

    source = Source(down=0)
    link, outlet, _clock, _slept = link_with(
        source,
        outlet=RecordingOutlet(on_push=down_once),
        queue=MemoryQueue(clock=queue_clock),
        pull_retry=RetryPolicy(max_attempts=1),
    )
    link.transfer()  # pulled [1]; the push failed, the record waits in the queue
    source.down = 5
    queue_clock.advance(5)
    link.transfer()  # the pull fails (handled), the backlog is delivered all the same
    assert outlet.payloads == [[1], [1]]
    assert pushes == [0, 1]


def test_the_planner_keeps_running(databay_logs: pytest.LogCaptureFixture) -> None:
    source = Source(down=100)
    link, _outlet, clock, _slept = link_with(source, pull_retry=RetryPolicy(max_attempts=1))
    planner = ManualPlanner(link)  # not ignoring exceptions: an error would stop it
    planner.start()
    try:
        for _ in range(5):
            clock.advance(400)
            planner.tick(link)
        assert planner.running
    finally:
        planner.shutdown()
    assert not [r for r in databay_logs.records if r.levelno >= logging.ERROR][1:]


def test_bad_policies_are_refused() -> None:
    with pytest.raises(ConfigurationError, match="pull_retry must be a RetryPolicy"):
        Link(ListInlet([1]), RecordingOutlet(), 1, pull_retry=3)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="inlet_retry must be a dict of inlet name"):
        Link(ListInlet([1]), RecordingOutlet(), 1, inlet_retry={"a": 3})  # type: ignore[dict-item]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"pull_retry": "yes"}, "pull_retry must be a RetryPolicy or None, got 'yes' (str)"),
        ({"inlet_retry": [RetryPolicy()]}, "inlet_retry must be a dict of inlet name"),
        ({"inlet_retry": {5: RetryPolicy()}}, "inlet_retry must be a dict of inlet name"),
        ({"inlet_retry": {"a": 3}}, "got 'a' (str): 3 (int)"),
    ],
)
def test_a_wrong_type_is_a_type_error(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ArgumentTypeError, match=re.escape(message)):
        Link(ListInlet([1], name="a"), RecordingOutlet(), 1, **kwargs)


def test_a_policy_for_an_inlet_the_link_lacks_is_refused() -> None:
    """A typo in inlet_retry would silently leave the inlet without its policy."""
    with pytest.raises(ConfigurationError, match=r"inlet_retry names 'feeed' \(str\).*'feed'"):
        Link(ListInlet([1], name="feed"), RecordingOutlet(), 1, inlet_retry={"feeed": POLICY})
