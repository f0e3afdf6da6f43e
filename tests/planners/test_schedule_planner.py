"""SchedulePlanner: refresh interval, its private scheduler, the grid and prompt shutdown."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
import schedule
from core_fakes import ListInlet, RecordingOutlet

from databay_bus import Link
from databay_bus.errors import ConfigurationError, DatabayBusError
from databay_bus.planners import SchedulePlanner
from databay_bus.planners.schedule_planner import ScheduleIntervalError


@pytest.fixture
def planners() -> Iterator[list[SchedulePlanner]]:
    made: list[SchedulePlanner] = []
    yield made
    for planner in made:
        planner.shutdown(wait=True)


def recording_link(interval: float = 0.1, **kwargs: Any) -> tuple[Link, RecordingOutlet]:
    outlet = RecordingOutlet()
    return Link(ListInlet([1]), outlet, interval, **kwargs), outlet


class _Pool:
    """Stands in for the worker pool: records what the planner submits."""

    def __init__(self) -> None:
        self.submitted: list[Any] = []

    def submit(self, call: Any) -> None:
        self.submitted.append(call)


def test_defaults_and_repr() -> None:
    planner = SchedulePlanner()
    assert planner.threads == 30
    assert planner.refresh_interval == 1.0
    assert repr(planner) == "SchedulePlanner(threads:30, refresh_interval:1.0)"
    assert repr(SchedulePlanner(threads=2, refresh_interval=0.5)) == (
        "SchedulePlanner(threads:2, refresh_interval:0.5)"
    )


class TestRefreshInterval:
    def test_shorter_link_interval_rejected(self) -> None:
        link, _ = recording_link(0.5)
        with pytest.raises(ScheduleIntervalError) as caught:
            SchedulePlanner(link, refresh_interval=1.0)
        assert str(caught.value).endswith("Link interval: 0.5s, Refresh interval: 1.0s")
        assert isinstance(caught.value, ConfigurationError)
        assert isinstance(caught.value, DatabayBusError)

    def test_equal_interval_accepted(self) -> None:
        link, _ = recording_link(1)
        assert SchedulePlanner(link, refresh_interval=1).links == [link]

    def test_checked_for_links_added_later_all_or_nothing(self) -> None:
        planner = SchedulePlanner(refresh_interval=1.0)
        good, _ = recording_link(2)
        bad, _ = recording_link(0.2)
        with pytest.raises(ScheduleIntervalError, match=r"0\.2s"):
            planner.add_links([good, bad])
        assert planner.links == []

    @pytest.mark.parametrize("value", [0, -1, float("nan"), "1", None])
    def test_bad_refresh_interval(self, value: Any) -> None:
        with pytest.raises(ConfigurationError, match="SchedulePlanner"):
            SchedulePlanner(refresh_interval=value)

    def test_error_importable_from_errors(self) -> None:
        from databay_bus import errors

        assert errors.ScheduleIntervalError is ScheduleIntervalError


class TestOwnScheduler:
    def test_never_touches_the_global_scheduler(self, planners: list[SchedulePlanner]) -> None:
        link, outlet = recording_link(0.1)
        planner = SchedulePlanner(link, refresh_interval=0.05)
        planners.append(planner)
        planner.start(block=False)
        assert outlet.pushed.wait(10)
        assert schedule.jobs == []

    def test_two_planners_never_run_each_others_jobs(
        self, planners: list[SchedulePlanner], wait_until: Callable[..., None]
    ) -> None:
        first_link, first_out = recording_link(0.1, tags="first")
        second_link, second_out = recording_link(0.1, tags="second")
        idle_link, idle_out = recording_link(0.1, tags="idle")
        first = SchedulePlanner(first_link, refresh_interval=0.05)
        second = SchedulePlanner(second_link, refresh_interval=0.05)
        idle = SchedulePlanner(idle_link, refresh_interval=0.05)  # never started
        planners.extend([first, second, idle])
        first.start(block=False)
        second.start(block=False)
        wait_until(lambda: len(first_out.batches) >= 3 and len(second_out.batches) >= 3)
        second.shutdown()
        count = len(second_out.batches)
        wait_until(lambda: len(first_out.batches) >= 6, message="first keeps running alone")
        assert first.running and not second.running
        assert len(second_out.batches) == count
        assert idle_out.batches == []
        assert {str(u).rsplit(".", 1)[0] for u in first_out.updates} == {"first"}
        assert {str(u).rsplit(".", 1)[0] for u in second_out.updates} == {"second"}


class TestGrid:
    def test_due_times_stay_on_the_grid_when_late(
        self, planners: list[SchedulePlanner], databay_logs: pytest.LogCaptureFixture
    ) -> None:
        link, _ = recording_link(30, immediate_transfer=False)
        planner = SchedulePlanner(link, refresh_interval=1)
        planners.append(planner)
        planner.start(block=False)
        job = link.job
        start = job.next_run
        pool = _Pool()
        interval = timedelta(seconds=30)
        # run 0.7 s late: the next one is still due exactly one interval after the first
        planner._dispatch(job, pool, start + timedelta(seconds=0.7))  # type: ignore[arg-type]
        assert job.next_run == start + interval
        # 1.5 intervals late: one tick is missed (and logged), the grid is kept
        planner._dispatch(job, pool, start + interval * 2.5)  # type: ignore[arg-type]
        assert job.next_run == start + interval * 3
        planner._dispatch(job, pool, start + interval * 3)  # type: ignore[arg-type]
        assert job.next_run == start + interval * 4
        assert len(pool.submitted) == 3
        missed = [r for r in databay_logs.records if "missed" in r.getMessage()]
        assert len(missed) == 1 and missed[0].levelno == logging.WARNING
        assert "1 transfer(s) missed" in missed[0].getMessage()

    def test_real_runs_keep_the_grid(
        self, planners: list[SchedulePlanner], wait_until: Callable[..., None]
    ) -> None:
        interval = timedelta(milliseconds=100)
        link, outlet = recording_link(interval.total_seconds())
        planner = SchedulePlanner(link, refresh_interval=0.05)
        planners.append(planner)
        planner.start(block=False)
        start = link.job.next_run
        wait_until(lambda: len(outlet.batches) >= 5)
        due = link.job.next_run
        planner.shutdown()
        steps, remainder = divmod(due - start, interval)
        assert remainder == timedelta(0)  # every due time is start + k * interval, exactly
        assert steps >= 1  # (start may be read after the loop's first dispatch: no exact count)


class TestPromptShutdown:
    def test_shutdown_does_not_wait_for_a_refresh_tick(
        self, planners: list[SchedulePlanner]
    ) -> None:
        link, outlet = recording_link(30)
        planner = SchedulePlanner(link, refresh_interval=30)
        planners.append(planner)
        returned = threading.Event()
        thread = threading.Thread(target=lambda: (planner.start(), returned.set()))
        thread.start()
        assert outlet.pushed.wait(10)
        began = time.monotonic()
        planner.shutdown()
        assert returned.wait(15)
        assert time.monotonic() - began < 15  # Databay returned up to one refresh (30 s) later
        thread.join(10)

    def test_added_link_wakes_the_loop(self, planners: list[SchedulePlanner]) -> None:
        planner = SchedulePlanner(refresh_interval=30)
        planners.append(planner)
        planner.start(block=False)
        link, outlet = recording_link(30)
        planner.add_links(link)
        assert outlet.pushed.wait(10)  # not after the loop's 30 s sleep
