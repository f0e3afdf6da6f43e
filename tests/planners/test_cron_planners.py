"""Cron links on both planners: ticks at the Cron's times, DST on an injected clock,
missed-tick logs, no overlapping runs, immediate transfers, grouping."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime, timedelta, timezone

import pytest

from databay_bus import Cron, Link
from databay_bus.planners import ApsPlanner, SchedulePlanner
from databay_bus.planners.aps_planner import ScheduleTrigger
from databay_bus.planners.base import BasePlanner
from databay_bus.schedules import IntervalSchedule
from databay_bus.testing import FakeClock
from tests.core_fakes import ListInlet, RecordingOutlet, recording_link

UTC = timezone.utc


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def naive(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(tzinfo=None)


class TestLink:
    def test_interval_is_the_cron_and_schedule_is_shared(self) -> None:
        cron = Cron("0 9 * * mon-fri", tz="Europe/Berlin")
        link, _ = recording_link(cron)  # type: ignore[arg-type]
        assert link.interval is cron and link.schedule is cron
        assert "cron: 0 9 * * mon-fri (Europe/Berlin)" in repr(link)
        interval_link, _ = recording_link(30)
        assert interval_link.schedule == IntervalSchedule(timedelta(seconds=30))


class ClockedSchedulePlanner:
    """A SchedulePlanner on a FakeClock, and how to move it to a moment and let it tick."""

    def __init__(self, planners: list[BasePlanner], start: datetime, links: list[Link]) -> None:
        self.clock = FakeClock(start.timestamp())
        self.planner = SchedulePlanner(links, refresh_interval=0.05, clock=self.clock)
        planners.append(self.planner)

    def move_to(self, moment: datetime) -> None:
        self.clock.advance(moment.timestamp() - self.clock.time())
        self.planner._wakeup.set()


class TestSchedulePlanner:
    def test_spring_forward_gap_on_a_fake_clock(
        self, planners: list[BasePlanner], wait_until: Callable[..., None]
    ) -> None:
        spring = Cron("30 2 * * *", tz="Europe/Berlin")
        link, outlet = recording_link(spring, immediate_transfer=False)  # type: ignore[arg-type]
        run = ClockedSchedulePlanner(planners, utc(2026, 3, 28, 12), [link])
        run.planner.start(block=False)
        # Berlin's 02:30 does not exist on 2026-03-29: the tick is at 03:00 CEST = 01:00 UTC
        assert link.job.next_run == naive(utc(2026, 3, 29, 1))
        run.move_to(utc(2026, 3, 29, 1))
        wait_until(lambda: len(outlet.batches) == 1, message="the gap's tick")
        wait_until(lambda: link.job.next_run == naive(utc(2026, 3, 30, 0, 30)))  # 02:30 CEST
        assert len(outlet.batches) == 1

    def test_hourly_follows_the_clock_through_fall_back(
        self, planners: list[BasePlanner], wait_until: Callable[..., None]
    ) -> None:
        hourly, outlet = recording_link(  # type: ignore[arg-type]
            Cron("@hourly", tz="America/New_York"), immediate_transfer=False
        )
        run = ClockedSchedulePlanner(planners, utc(2026, 11, 1, 4, 0, 1), [hourly])
        run.planner.start(block=False)
        hours = [utc(2026, 11, 1, h) for h in (5, 6, 7)]  # 01:00 EDT, 01:00 EST, 02:00 EST
        for count, hour in enumerate(hours, start=1):
            wait_until(lambda h=hour: hourly.job.next_run == naive(h), message=f"due {hour}")
            run.move_to(hour)
            wait_until(lambda n=count: len(outlet.batches) == n, message=f"tick at {hour}")

    def test_fall_back_runs_a_fixed_time_once_and_logs_missed_ticks(
        self,
        planners: list[BasePlanner],
        wait_until: Callable[..., None],
        databay_logs: pytest.LogCaptureFixture,
    ) -> None:
        link, outlet = recording_link(  # type: ignore[arg-type]
            Cron("30 1 * * *", tz="America/New_York"), immediate_transfer=False
        )
        run = ClockedSchedulePlanner(planners, utc(2026, 11, 1, 0), [link])
        run.planner.start(block=False)
        run.move_to(utc(2026, 11, 1, 5, 30))  # 01:30 EDT
        wait_until(lambda: len(outlet.batches) == 1)
        # the next tick is tomorrow's, not 01:30 EST today
        wait_until(lambda: link.job.next_run == naive(utc(2026, 11, 2, 6, 30)))
        run.move_to(utc(2026, 11, 4, 7))  # the planner slept through two ticks
        wait_until(lambda: link.job.next_run == naive(utc(2026, 11, 5, 6, 30)))
        assert len(outlet.batches) == 2
        missed = [r.getMessage() for r in databay_logs.records if "missed" in r.getMessage()]
        assert len(missed) == 1 and "2 transfer(s) missed" in missed[0]

    def test_a_cron_tick_never_overlaps_the_running_transfer(
        self,
        planners: list[BasePlanner],
        wait_until: Callable[..., None],
        databay_logs: pytest.LogCaptureFixture,
    ) -> None:
        release = threading.Event()
        outlet = RecordingOutlet(on_push=lambda records, update: release.wait(10))
        link = Link(ListInlet([1]), outlet, Cron("*/5 * * * *"), immediate_transfer=False)
        run = ClockedSchedulePlanner(planners, utc(2026, 1, 1), [link])
        run.planner.start(block=False)
        run.move_to(utc(2026, 1, 1, 0, 5))
        wait_until(lambda: len(outlet.batches) == 1, message="the first transfer runs")
        run.move_to(utc(2026, 1, 1, 0, 10))
        wait_until(lambda: link.metrics.skipped == 1, message="the second tick is skipped")
        release.set()
        assert any("still running" in r.getMessage() for r in databay_logs.records)
        assert len(outlet.batches) == 1

    def test_immediate_transfer_and_end_of_schedule(
        self, planners: list[BasePlanner], wait_until: Callable[..., None]
    ) -> None:
        cron = Cron("0 12 * * *", end=utc(2026, 1, 1, 12))
        link, outlet = recording_link(cron)  # type: ignore[arg-type]
        run = ClockedSchedulePlanner(planners, utc(2026, 1, 1), [link])
        run.planner.start(block=False)
        wait_until(lambda: len(outlet.batches) == 1, message="the immediate transfer")
        run.move_to(utc(2026, 1, 1, 12))
        wait_until(lambda: len(outlet.batches) == 2, message="the last tick")
        wait_until(lambda: not run.planner._scheduler.jobs, message="the job ends with it")

    def test_equal_crons_share_a_job_intervals_keep_theirs(
        self, planners: list[BasePlanner]
    ) -> None:
        crons = [recording_link(Cron("0 9 * * *"))[0] for _ in range(3)]  # type: ignore[arg-type]
        other = recording_link(Cron("0 9 * * *", tz="Europe/Berlin"))[0]  # type: ignore[arg-type]
        intervals = [recording_link(30)[0] for _ in range(2)]
        run = ClockedSchedulePlanner(planners, utc(2026, 1, 1), [*crons, other, *intervals])
        run.planner.start(block=False)
        assert len({id(link.job) for link in crons}) == 1
        assert len({id(link.job) for link in [crons[0], other, intervals[0]]}) == 3
        assert intervals[0].job is intervals[1].job
        assert intervals[0].job.next_run == naive(utc(2026, 1, 1, 0, 0, 30))


class TestApsPlanner:
    def test_trigger_uses_our_evaluator_with_jitter(self) -> None:
        cron = Cron("30 2 * * *", tz="Europe/Berlin", jitter=60)
        trigger = ScheduleTrigger(cron)
        first = trigger.get_next_fire_time(None, utc(2026, 3, 28, 12))
        assert first is not None
        assert first - utc(2026, 3, 29, 1) == timedelta(seconds=cron.delay(utc(2026, 3, 29, 1)))
        second = trigger.get_next_fire_time(first, first)
        fire = utc(2026, 3, 30, 0, 30)
        assert second == fire + timedelta(seconds=cron.delay(fire))

    def test_runs_a_cron_link_on_its_trigger(
        self, planners: list[BasePlanner], wait_until: Callable[..., None]
    ) -> None:
        every_second = Cron("* * * * * *")
        link, outlet = recording_link(every_second, immediate_transfer=False)  # type: ignore[arg-type]
        immediate, immediate_out = recording_link(Cron("0 0 1 1 *"))  # type: ignore[arg-type]
        planner = ApsPlanner([link, immediate], threads=2)
        planners.append(planner)
        planner.start(block=False)
        job = link.job
        assert isinstance(job.trigger, ScheduleTrigger) and job.trigger.schedule is every_second
        assert job.next_run_time.microsecond == 0 and job.next_run_time.tzinfo is not None
        wait_until(lambda: len(immediate_out.batches) == 1, message="the immediate transfer")
        wait_until(lambda: len(outlet.batches) >= 2, message="two ticks, a second apart")
        assert immediate.job.next_run_time == datetime(datetime.now(UTC).year + 1, 1, 1, tzinfo=UTC)

    def test_a_schedule_past_its_end_gets_no_job(
        self, planners: list[BasePlanner], databay_logs: pytest.LogCaptureFixture
    ) -> None:
        ended = Cron("* * * * *", end=utc(2026, 1, 1))
        link, _ = recording_link(ended, immediate_transfer=False)  # type: ignore[arg-type]
        planner = ApsPlanner(link, threads=1)
        planners.append(planner)
        planner.start(block=False)
        assert link.job is None
        assert any("schedule has ended" in r.getMessage() for r in databay_logs.records)
        assert logging.WARNING in {r.levelno for r in databay_logs.records}
