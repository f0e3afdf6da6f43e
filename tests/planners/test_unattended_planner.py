"""A planner left running: repeated failures logged as streaks, links whose nodes could not
start retried at each tick, and a shutdown bounded by a timeout (issue 15, items 3 and 4)."""

from __future__ import annotations

import logging
import threading
from typing import Any

import pytest
from core_fakes import GateOutlet, ListInlet, ManualPlanner, RecordingOutlet

from databay_bus import Link, Outlet, Update
from databay_bus._streaks import FailureStreaks, Repeats
from databay_bus.errors import ArgumentTypeError, ConfigurationError
from databay_bus.planners import PlannerState
from databay_bus.planners.base import _LOGGER as PLANNER_LOGGER
from databay_bus.testing import FakeClock


class Switch:
    """A pull that fails while ``broken`` is set."""

    def __init__(self) -> None:
        self.broken = True

    def __call__(self, update: Update) -> list[int]:
        if self.broken:
            raise ConnectionError("source down")
        return [update.transfer_number]


def planner_records(logs: pytest.LogCaptureFixture, level: int) -> list[logging.LogRecord]:
    return [r for r in logs.records if r.name == PLANNER_LOGGER.name and r.levelno == level]


class TestFailureStreaks:
    def test_one_traceback_then_a_line_a_minute_then_recovery(
        self, databay_logs: pytest.LogCaptureFixture
    ) -> None:
        clock = FakeClock()
        streaks = FailureStreaks(logging.getLogger("databay_bus.test"), every=60, clock=clock)
        assert streaks.failed("k", "source", ConnectionError("down")) is True
        for _ in range(5):
            clock.advance(10)
            assert streaks.failed("k", "source", ConnectionError("down")) is False
        clock.advance(11)  # 61 s after the first line
        streaks.failed("k", "source", ConnectionError("still down"))
        assert streaks.failing("k") == 7
        clock.advance(5)
        assert streaks.succeeded("k", "source") == 7
        assert streaks.succeeded("k", "source") == 0  # no streak any more: nothing logged
        lines = [
            (r.levelname, r.getMessage(), r.exc_info is not None) for r in databay_logs.records
        ]
        assert lines == [
            ("ERROR", "source failed: ConnectionError: down", True),
            (
                "WARNING",
                "source still failing: 7 failures in 61 s, latest ConnectionError: still down",
                False,
            ),
            ("WARNING", "source back after 7 failures (failing for 66 s)", False),
        ]

    def test_another_error_type_shows_its_traceback(
        self, databay_logs: pytest.LogCaptureFixture
    ) -> None:
        streaks = FailureStreaks(logging.getLogger("databay_bus.test"), clock=FakeClock())
        streaks.failed("k", "source", ConnectionError("down"))
        streaks.failed("k", "source", ValueError("bad json"))
        tracebacks = [r for r in databay_logs.records if r.exc_info is not None]
        assert [r.getMessage() for r in tracebacks] == [
            "source failed: ConnectionError: down",
            "source failed: ValueError: bad json",
        ]


class TestRepeatedTransferFailures:
    def test_streak_of_an_ignored_failing_link(
        self, databay_logs: pytest.LogCaptureFixture
    ) -> None:
        switch = Switch()
        link = Link(ListInlet(switch), RecordingOutlet(), 60, tags="prices")
        planner = ManualPlanner(link, ignore_exceptions=True, immediate_transfer=False)
        clock = FakeClock()
        planner._streaks = FailureStreaks(PLANNER_LOGGER, clock=clock)
        with planner:
            for _ in range(4):
                planner.tick(link)
            clock.advance(61)
            planner.tick(link)
            switch.broken = False
            planner.tick(link)
        errors = planner_records(databay_logs, logging.ERROR)
        assert len(errors) == 1 and errors[0].exc_info is not None
        assert "raised when executing" in errors[0].getMessage()  # Databay's phrase
        warnings = [r.getMessage() for r in planner_records(databay_logs, logging.WARNING)]
        assert warnings == [
            "prices: transfer still failing: 5 failures in 61 s, latest ConnectionError: "
            "source down",
            "prices: transfer back after 5 failures (failing for 61 s)",
        ]


class BrokenStart(Outlet):
    """An outlet whose on_start fails while ``broken``."""

    def __init__(self) -> None:
        super().__init__()
        self.broken = True
        self.pushed: list[Any] = []

    def on_start(self) -> None:
        if self.broken:
            raise ConnectionError("database unreachable")

    def push(self, records: list[Any], update: Update) -> None:
        self.pushed.extend(r.payload for r in records)


class TestNodeThatFailedToStart:
    def test_one_traceback_skipped_ticks_then_started(
        self, databay_logs: pytest.LogCaptureFixture
    ) -> None:
        outlet = BrokenStart()
        link = Link(ListInlet([1]), outlet, 60, tags="sink")
        planner = ManualPlanner(link, ignore_exceptions=True, immediate_transfer=False)
        planner.start()
        try:
            assert planner.running  # ignoring exceptions: the planner still runs
            for _ in range(3):
                planner.tick(link)
            assert outlet.pushed == []
            assert link.metrics.skipped == 3
            outlet.broken = False
            planner.tick(link)
            assert outlet.pushed == [1]
            assert outlet.active
        finally:
            planner.shutdown()
        assert not outlet.active
        texts = [r.getMessage() for r in databay_logs.records if r.exc_info is not None]
        assert texts == ["sink: on_start failed: ConnectionError: database unreachable"]
        messages = databay_logs.text
        assert "NodeInactiveError" not in messages
        assert "sink: on_start back after 4 failures" in messages

    def test_unignored_on_start_failure_still_aborts(self) -> None:
        outlet = BrokenStart()
        planner = ManualPlanner(Link(ListInlet([1]), outlet, 60))
        planner.start()
        assert planner.state is PlannerState.STOPPED
        assert planner.started_scheduler == 0


class TestBoundedShutdown:
    def test_timeout_returns_while_an_outlet_hangs(
        self, databay_logs: pytest.LogCaptureFixture
    ) -> None:
        outlet = GateOutlet()
        link = Link(ListInlet([1]), outlet, 60, tags="hung")
        planner = ManualPlanner(link, immediate_transfer=False)
        planner.start()
        worker = threading.Thread(target=planner.tick, args=(link,), daemon=True)
        worker.start()
        assert outlet.entered.wait(10)
        planner.shutdown(wait=True, timeout=0.05)
        assert planner.state is PlannerState.STOPPED
        assert planner.stopped_scheduler == [False]  # the scheduler was not waited for
        assert "shutdown timed out after 0.05 s; still transferring: hung" in databay_logs.text
        assert outlet.active  # its nodes are shut down when the transfer ends
        outlet.release.set()
        worker.join(10)
        assert not outlet.active

    def test_timeout_not_reached_is_a_normal_shutdown(
        self, databay_logs: pytest.LogCaptureFixture
    ) -> None:
        link = Link(ListInlet([1]), RecordingOutlet(), 60)
        planner = ManualPlanner(link)
        planner.start()
        planner.shutdown(timeout=30)
        assert planner.state is PlannerState.STOPPED
        assert "timed out" not in databay_logs.text

    @pytest.mark.parametrize(
        ("kwargs", "error", "message"),
        [
            ({"timeout": -1}, ConfigurationError, "timeout must be finite seconds >= 0"),
            ({"timeout": float("nan")}, ConfigurationError, "timeout must be finite seconds"),
            ({"timeout": "30"}, ArgumentTypeError, "timeout must be finite seconds >= 0"),
            ({"wait": "yes"}, ArgumentTypeError, "wait must be True or False, got 'yes'"),
        ],
    )
    def test_bad_arguments_are_refused_before_anything_stops(
        self, kwargs: dict[str, Any], error: type[Exception], message: str
    ) -> None:
        planner = ManualPlanner(Link(ListInlet([1]), RecordingOutlet(), 60))
        planner.start()
        with pytest.raises(error, match=f"ManualPlanner.*{message}"):
            planner.shutdown(**kwargs)
        assert planner.state is PlannerState.RUNNING
        planner.shutdown()

    def test_shutdown_timeout_is_checked_when_set(self) -> None:
        planner = ManualPlanner()
        with pytest.raises(ArgumentTypeError, match="shutdown_timeout must be finite seconds"):
            planner.shutdown_timeout = "30"  # type: ignore[assignment]
        with pytest.raises(ConfigurationError, match="shutdown_timeout must be finite seconds"):
            planner.shutdown_timeout = -5
        planner.shutdown_timeout = 2
        assert planner.shutdown_timeout == 2.0

    def test_context_manager_uses_shutdown_timeout(self) -> None:
        outlet = GateOutlet()
        link = Link(ListInlet([1]), outlet, 60)
        planner = ManualPlanner(link, immediate_transfer=False)
        planner.shutdown_timeout = 0.05
        worker: threading.Thread | None = None
        with planner:
            worker = threading.Thread(target=planner.tick, args=(link,), daemon=True)
            worker.start()
            assert outlet.entered.wait(10)
        assert planner.state is PlannerState.STOPPED  # left the block with the outlet hung
        outlet.release.set()
        worker.join(10)


class FlakyOutlet(Outlet):
    def __init__(self) -> None:
        super().__init__(name="flaky")
        self.broken = True

    def push(self, records: list[Any], update: Update) -> None:
        if self.broken:
            raise ConnectionError("sink unreachable")


def test_an_ignored_node_failing_again_and_again_is_one_streak(
    databay_logs: pytest.LogCaptureFixture,
) -> None:
    outlet = FlakyOutlet()
    link = Link(ListInlet([1]), outlet, 60, tags="sink", ignore_exceptions=True)
    for _ in range(3):
        link.transfer()
    outlet.broken = False
    link.transfer()
    link.transfer()
    tracebacks = [r for r in databay_logs.records if r.exc_info is not None]
    assert len(tracebacks) == 1
    assert 'Outlet exception: "sink unreachable"' in tracebacks[0].getMessage()
    recovered = [r.getMessage() for r in databay_logs.records if "back after" in r.getMessage()]
    assert len(recovered) == 1
    assert recovered[0].startswith("sink: outlet ")
    assert "back after 3 failures (failing for " in recovered[0]


def test_ticks_skipped_behind_a_hung_transfer_are_a_line_a_minute(
    databay_logs: pytest.LogCaptureFixture,
) -> None:
    outlet = GateOutlet()
    link = Link(ListInlet([1]), outlet, 60, tags="stuck")
    planner = ManualPlanner(link, immediate_transfer=False)
    clock = FakeClock()
    planner._skips = Repeats(PLANNER_LOGGER, clock=clock)
    planner.start()
    worker = threading.Thread(target=planner.tick, args=(link,), daemon=True)
    try:
        worker.start()
        assert outlet.entered.wait(10)
        for _ in range(5):
            planner.tick(link)
        clock.advance(61)
        planner.tick(link)
        assert link.metrics.skipped == 6
    finally:
        outlet.release.set()
        worker.join(10)
        planner.shutdown()
    skips = [r.getMessage() for r in databay_logs.records if "transfer skipped" in r.getMessage()]
    assert skips == [
        "stuck: transfer skipped, the previous transfer of this link is still running",
        "stuck: transfer skipped, the previous transfer of this link is still running "
        "(4 more like it in the last 61 s)",
    ]


def test_a_later_waiting_shutdown_waits_for_what_an_earlier_one_left_running() -> None:
    """shutdown(wait=False) (as a planner does after an error) leaves a transfer running; a
    shutdown(wait=True) afterwards (e.g. before closing the queues) waits for it."""
    outlet = GateOutlet()
    link = Link(ListInlet([1]), outlet, 60, tags="late")
    planner = ManualPlanner(link, immediate_transfer=False)
    planner.start()
    worker = threading.Thread(target=planner.tick, args=(link,), daemon=True)
    worker.start()
    assert outlet.entered.wait(10)
    planner.shutdown(wait=False)
    assert planner.state is PlannerState.STOPPED
    done = threading.Event()
    waiter = threading.Thread(target=lambda: (planner.shutdown(wait=True), done.set()))
    waiter.start()
    assert not done.wait(0.05)  # still waiting for the transfer in the outlet
    outlet.release.set()
    assert done.wait(10)
    waiter.join(10)
    worker.join(10)
    assert outlet.payloads == [[1]]
