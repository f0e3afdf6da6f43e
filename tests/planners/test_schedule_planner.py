"""SchedulePlanner: refresh interval, its private scheduler, the grid and prompt shutdown."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
import schedule
from core_fakes import GateOutlet, ListInlet, recording_link

from databay_bus import Link
from databay_bus.errors import ConfigurationError, DatabayBusError
from databay_bus.planners import SchedulePlanner
from databay_bus.planners.schedule_planner import ScheduleIntervalError


class _Pool:
    """Stands in for the worker pool: records what the planner submits."""

    def __init__(self) -> None:
        self.submitted: list[Any] = []

    def submit(self, call: Any, *args: Any) -> None:
        self.submitted.append((call, args))

    def shutdown(self, wait: bool = True) -> None:
        pass


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
        real_pool, pool = planner._groups.pool, _Pool()
        planner._groups.pool = pool  # type: ignore[assignment]  # the loop thread ends here
        assert real_pool is not None
        real_pool.shutdown()
        interval = timedelta(seconds=30)
        # run 0.7 s late: the next one is still due exactly one interval after the first
        planner._tick(job, start + timedelta(seconds=0.7))
        assert job.next_run == start + interval
        link.job.job_func.args[0].pending.clear()  # as if each transfer had ended at once
        # 1.5 intervals late: one tick is missed (and logged), the grid is kept
        planner._tick(job, start + interval * 2.5)
        assert job.next_run == start + interval * 3
        link.job.job_func.args[0].pending.clear()
        planner._tick(job, start + interval * 3)
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


class TestGroups:
    """Links scheduled together with one interval share one ``schedule`` job."""

    def test_one_job_per_interval_and_immediate_flag(self, planners: list[SchedulePlanner]) -> None:
        same = [recording_link(30)[0] for _ in range(3)]
        other_interval = recording_link(60)[0]
        not_immediate = recording_link(30, immediate_transfer=False)[0]
        planner = SchedulePlanner([*same, other_interval, not_immediate], refresh_interval=1)
        planners.append(planner)
        planner.start(block=False)
        assert all(link.job is same[0].job for link in same)
        assert len({id(link.job) for link in [same[0], other_interval, not_immediate]}) == 3
        assert len(planner._scheduler.jobs) == 3
        for link in same:  # immediate: tick 0 was dispatched at start
            assert link.outlets[0].pushed.wait(10)  # type: ignore[attr-defined]

    def test_removing_links_keeps_the_group_until_it_is_empty(
        self, planners: list[SchedulePlanner], wait_until: Callable[..., None]
    ) -> None:
        kept, kept_out = recording_link(0.05)
        removed, _ = recording_link(0.05)
        planner = SchedulePlanner([kept, removed], refresh_interval=0.05)
        planners.append(planner)
        planner.start(block=False)
        planner.remove_links(removed)
        assert removed.job is None and len(planner._scheduler.jobs) == 1
        seen = len(kept_out.batches)
        wait_until(lambda: len(kept_out.batches) >= seen + 3, message="kept link goes on")
        planner.remove_links(kept)
        assert planner._scheduler.jobs == [] and len(planner._groups) == 0

    def test_link_added_while_running_gets_its_own_job(
        self, planners: list[SchedulePlanner]
    ) -> None:
        first, _ = recording_link(30)
        planner = SchedulePlanner(first, refresh_interval=1)
        planners.append(planner)
        planner.start(block=False)
        late, late_out = recording_link(30)
        planner.add_links(late)
        assert late.job is not first.job and len(planner._scheduler.jobs) == 2
        assert late_out.pushed.wait(10)

    def test_tick_of_a_link_still_running_is_skipped_and_counted(
        self,
        planners: list[SchedulePlanner],
        wait_until: Callable[..., None],
        databay_logs: pytest.LogCaptureFixture,
    ) -> None:
        gate = GateOutlet()
        link = Link(ListInlet([1]), gate, 0.05)
        planner = SchedulePlanner(link, refresh_interval=0.05)
        planners.append(planner)
        planner.start(block=False)
        try:
            assert gate.entered.wait(10)
            wait_until(lambda: link.metrics.skipped >= 2, message="ticks skipped while pushing")
            assert "still running" in databay_logs.text
        finally:
            gate.release.set()
