"""ApsPlanner groups: links scheduled together with one interval share one APScheduler job.

Every wait is on an event or ``wait_until`` with a generous timeout; timing checks are lower
bounds (a transfer never comes before it is due), which a slow machine cannot break.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from apscheduler.events import EVENT_JOB_MISSED, JobExecutionEvent
from core_fakes import GateOutlet, ListInlet, RecordingOutlet, recording_link

from databay_bus import Link, Outlet, Record, Update
from databay_bus.planners import ApsPlanner


@pytest.fixture
def planners() -> Iterator[list[ApsPlanner]]:
    """As conftest's, but shutdown(wait=False): tests here leave transfers hung on a gate."""
    made: list[ApsPlanner] = []
    yield made
    for planner in made:
        planner.shutdown(wait=False)


def jobs(planner: ApsPlanner) -> list[Any]:
    assert planner._scheduler is not None
    return list(planner._scheduler.get_jobs())


class StampOutlet(Outlet):
    """Remembers when each push happened (``time.time()``) and signals the first one."""

    def __init__(self) -> None:
        super().__init__()
        self.stamps: list[float] = []
        self.pushed = threading.Event()

    def push(self, records: list[Record], update: Update) -> None:
        self.stamps.append(time.time())
        self.pushed.set()


def test_links_with_one_interval_share_one_job(planners: list[ApsPlanner]) -> None:
    links = [recording_link(30)[0] for _ in range(3)]
    planner = ApsPlanner(links)
    planners.append(planner)
    planner.start(block=False)
    (job,) = jobs(planner)
    assert all(link.job is job for link in links)
    assert job.trigger.interval == timedelta(seconds=30)


def test_intervals_and_immediate_flags_make_separate_groups(planners: list[ApsPlanner]) -> None:
    eager_a, _ = recording_link(30)
    eager_b, _ = recording_link(30)
    lazy, _ = recording_link(30, immediate_transfer=False)
    slower, _ = recording_link(60)
    before = datetime.now(timezone.utc)
    planner = ApsPlanner([eager_a, lazy, slower, eager_b])
    planners.append(planner)
    planner.start(block=False)
    assert len(jobs(planner)) == 3
    assert eager_a.job is eager_b.job
    assert len({id(eager_a.job), id(lazy.job), id(slower.job)}) == 3
    assert lazy.job.next_run_time >= before + timedelta(seconds=30)
    assert slower.job.trigger.interval == timedelta(seconds=60)


def test_links_added_while_running_get_their_own_group(
    planners: list[ApsPlanner], wait_until: Callable[..., None]
) -> None:
    first, first_out = recording_link(0.2)
    planner = ApsPlanner(first, threads=4)
    planners.append(planner)
    planner.start(block=False)
    assert first_out.pushed.wait(10)
    eager, eager_out = recording_link(0.2)
    lazy_out = StampOutlet()
    lazy = Link(ListInlet([1]), lazy_out, 0.2, immediate_transfer=False)
    added_at = time.time()
    planner.add_links([eager, lazy])
    # Same interval as ``first`` but a new grid: one interval after they were added.
    assert eager.job is not first.job and lazy.job is not first.job
    assert eager.job is not lazy.job  # immediate and not: two groups of this batch
    assert len(jobs(planner)) == 3
    assert eager_out.pushed.wait(10)  # immediate: at once
    assert lazy_out.pushed.wait(10)
    # Had it joined first's grid, its first tick would have come within 0.2 s of adding it.
    assert lazy_out.stamps[0] >= added_at + 0.2 - 0.001
    later, _ = recording_link(0.2)
    planner.add_links(later)
    assert later.job is not eager.job  # every add_links call anchors its own groups
    wait_until(lambda: len(first_out.batches) >= 3, message="the first group keeps running")


def test_one_add_links_call_is_one_group(planners: list[ApsPlanner]) -> None:
    planner = ApsPlanner(threads=2)
    planners.append(planner)
    planner.start(block=False)
    links = [recording_link(30)[0] for _ in range(4)]
    planner.add_links(links)
    assert len(jobs(planner)) == 1
    assert all(link.job is links[0].job for link in links)


def test_removing_links_from_a_group(
    planners: list[ApsPlanner], wait_until: Callable[..., None]
) -> None:
    kept, kept_out = recording_link(0.05)
    removed, removed_out = recording_link(0.05)
    planner = ApsPlanner([kept, removed], threads=4)
    planners.append(planner)
    planner.start(block=False)
    assert removed_out.pushed.wait(10)
    job = kept.job
    planner.remove_links(removed)
    assert removed.job is None
    assert jobs(planner) == [job]  # the group still has a link: its job stays
    wait_until(lambda: not removed_out.active, message="removed link's nodes shut down")
    count = len(removed_out.batches)
    seen = len(kept_out.batches)
    wait_until(lambda: len(kept_out.batches) >= seen + 3, message="the kept link keeps going")
    assert len(removed_out.batches) == count
    planner.remove_links(kept)
    assert jobs(planner) == []  # the group is empty: its job is gone
    assert len(planner._groups) == 0 and planner._groups.of(kept) is None


def test_purge_removes_every_group_job(planners: list[ApsPlanner]) -> None:
    links = [recording_link(30)[0] for _ in range(3)] + [recording_link(60)[0]]
    planner = ApsPlanner(links)
    planners.append(planner)
    planner.start(block=False)
    assert len(jobs(planner)) == 2
    planner.purge()
    assert jobs(planner) == []
    assert all(link.job is None for link in links)


def test_tick_of_a_queued_link_is_skipped_warned_and_counted(
    planners: list[ApsPlanner],
    wait_until: Callable[..., None],
    databay_logs: pytest.LogCaptureFixture,
) -> None:
    """One worker: the gated link holds it, so the other link's transfer waits in the queue;
    the next tick skips that link instead of queueing a second transfer of it."""
    gate = GateOutlet()
    blocker = Link(ListInlet([1]), gate, 0.05, tags="blocker")
    waiting, waiting_out = recording_link(0.05, tags="waiting")
    planner = ApsPlanner([blocker, waiting], threads=1)
    planners.append(planner)
    planner.start(block=False)
    assert gate.entered.wait(10)
    wait_until(lambda: waiting.metrics.skipped >= 2, message="skipped ticks of the queued link")
    assert waiting_out.batches == []  # queued behind the blocker, never run twice
    assert blocker.metrics.skipped >= 2  # the running one is skipped too
    gate.release.set()
    assert waiting_out.pushed.wait(10)
    warnings = [
        r.getMessage()
        for r in databay_logs.records
        if r.levelno == logging.WARNING and r.getMessage().startswith("waiting: ")
    ]
    assert warnings and "skipped" in warnings[0]


def test_tick_queued_when_its_link_is_removed_is_dropped(
    planners: list[ApsPlanner], wait_until: Callable[..., None]
) -> None:
    gate = GateOutlet()
    blocker = Link(ListInlet([1]), gate, 30)
    queued, queued_out = recording_link(30)
    planner = ApsPlanner([blocker, queued], threads=1)
    planners.append(planner)
    planner.start(block=False)
    assert gate.entered.wait(10)
    group = planner._groups.of(queued)
    wait_until(lambda: len(group.pending) == 2, message="the second transfer is queued")
    planner.remove_links(queued)
    gate.release.set()
    wait_until(lambda: not group.pending, message="the worker went through its queue")
    assert queued_out.batches == []  # removed before its turn: not transferred after removal


@pytest.mark.parametrize("wait", [True, False])
def test_shutdown_drops_queued_ticks_and_waits_only_for_running_ones(
    wait: bool, wait_until: Callable[..., None]
) -> None:
    gate = GateOutlet()
    blocker = Link(ListInlet([1]), gate, 30)
    queued, queued_out = recording_link(30)
    planner = ApsPlanner([blocker, queued], threads=1)
    planner.start(block=False)
    assert gate.entered.wait(10)
    group = planner._groups.of(queued)
    wait_until(lambda: len(group.pending) == 2, message="the second transfer is queued")
    stopper = threading.Thread(target=planner.shutdown, kwargs={"wait": wait})
    stopper.start()
    if wait:
        stopper.join(0.2)
        assert stopper.is_alive(), "shutdown(wait=True) returned while a transfer ran"
    else:
        stopper.join(10)
        assert not stopper.is_alive(), "shutdown(wait=False) waited for a hung transfer"
    gate.release.set()
    stopper.join(10)
    assert not stopper.is_alive()
    assert planner.wait(10)
    assert gate.finished.wait(10)
    wait_until(lambda: not group.pending, message="the worker went through its queue")
    assert queued_out.batches == []
    assert not queued_out.active


def test_restart_while_a_transfer_of_the_last_run_still_hangs(
    planners: list[ApsPlanner], wait_until: Callable[..., None]
) -> None:
    """After shutdown(wait=False) the hung transfer keeps its link busy, but the link that was
    queued behind it in the old pool transfers in the next run."""
    gate = GateOutlet()
    hung = Link(ListInlet([1]), gate, 0.05, tags="hung")
    other, other_out = recording_link(0.05)
    planner = ApsPlanner([hung, other], threads=1)
    planners.append(planner)
    planner.start(block=False)
    try:
        assert gate.entered.wait(10)
        group = planner._groups.of(other)
        wait_until(lambda: len(group.pending) == 2, message="the second transfer is queued")
        planner.shutdown(wait=False)
        planner.start(block=False)
        assert other_out.pushed.wait(10)
        wait_until(lambda: hung.metrics.skipped >= 1, message="the hung link's ticks skipped")
        assert other_out.batches and not gate.finished.is_set()
    finally:
        gate.release.set()


def test_pause_and_resume_a_group(
    planners: list[ApsPlanner], wait_until: Callable[..., None]
) -> None:
    pairs = [recording_link(0.05) for _ in range(3)]
    planner = ApsPlanner([link for link, _ in pairs], threads=3)
    planners.append(planner)
    planner.start(block=False)
    wait_until(lambda: all(out.batches for _, out in pairs), message="first transfers")
    planner.pause()
    planner.resume()
    seen = [len(out.batches) for _, out in pairs]
    wait_until(
        lambda: all(len(out.batches) >= n + 2 for (_, out), n in zip(pairs, seen, strict=True)),
        message="every link of the group transfers after resume",
    )


def test_restart_after_shutdown_builds_the_groups_again(
    planners: list[ApsPlanner], wait_until: Callable[..., None]
) -> None:
    pairs = [recording_link(0.05) for _ in range(2)]
    links = [link for link, _ in pairs]
    planner = ApsPlanner(links, threads=2)
    planners.append(planner)
    planner.start(block=False)
    wait_until(lambda: all(out.batches for _, out in pairs))
    first_job = links[0].job
    planner.shutdown()
    assert all(link.job is None for link in links)
    assert len(planner._groups) == 0 and all(planner._groups.of(k) is None for k in links)
    seen = [len(out.batches) for _, out in pairs]
    planner.start(block=False)
    assert links[0].job is links[1].job is not first_job
    assert jobs(planner) == [links[0].job]
    wait_until(
        lambda: all(len(out.batches) >= n + 2 for (_, out), n in zip(pairs, seen, strict=True)),
        message="both links transfer after the restart",
    )


def test_a_thousand_links_all_transfer(
    planners: list[ApsPlanner], wait_until: Callable[..., None]
) -> None:
    """One group of 1,000 links: every one of them is handed to the workers."""
    outlet = RecordingOutlet()
    inlet = ListInlet([1])
    links = [Link(inlet, outlet, 0.1, tags=f"link{n}") for n in range(1000)]
    planner = ApsPlanner(links, immediate_transfer=False)
    planners.append(planner)
    planner.start(block=False)
    assert len(jobs(planner)) == 1
    expected = {f"link{n}" for n in range(1000)}

    def pushed() -> set[str]:
        return {update.tags[0] for update in list(outlet.updates)}

    wait_until(lambda: pushed() == expected, timeout=60, message="every link pushed once")


def test_missed_tick_names_a_few_links_of_the_group(
    planners: list[ApsPlanner], databay_logs: pytest.LogCaptureFixture
) -> None:
    links = [recording_link(30, tags=f"l{n}")[0] for n in range(5)]
    planner = ApsPlanner(links)
    planners.append(planner)
    planner.start(block=False)
    due = datetime(2030, 1, 1, tzinfo=timezone.utc)
    planner._on_job_event(JobExecutionEvent(EVENT_JOB_MISSED, links[0].job.id, "default", due))
    (message,) = [r.getMessage() for r in databay_logs.records if "missed" in r.getMessage()]
    assert message == f"l0, l1, l2 and 2 more link(s): transfer due at {due} was missed"


def test_ticks_missed_while_paused_are_reported(
    planners: list[ApsPlanner],
    wait_until: Callable[..., None],
    databay_logs: pytest.LogCaptureFixture,
) -> None:
    """APScheduler reports ticks older than misfire_grace_time (1 s) through the inline
    executor's events; the planner logs them naming the group."""
    link, outlet = recording_link(0.2, tags="paused")
    planner = ApsPlanner(link, job_defaults_override={"misfire_grace_time": 1})
    planners.append(planner)
    planner.start(block=False)
    assert outlet.pushed.wait(10)
    planner.pause()
    paused_at = time.monotonic()
    while time.monotonic() < paused_at + 1.5:  # let some ticks fall out of the grace time
        time.sleep(0.05)
    planner.resume()
    wait_until(
        lambda: any("paused: transfer due at" in r.getMessage() for r in databay_logs.records),
        message="a missed-tick WARNING naming the link",
    )


def test_immediate_first_transfers_are_dispatched_at_start(planners: list[ApsPlanner]) -> None:
    """Tick 0 of an immediate group goes to the workers at start; the scheduler's job
    starts with tick 1, so the first transfer does not wait for its thread to start."""
    links = [recording_link(3600)[0] for _ in range(3)]
    before = datetime.now(timezone.utc)
    planner = ApsPlanner(links)
    planners.append(planner)
    planner.start(block=False)
    for link in links:
        assert link.outlets[0].pushed.wait(10)  # type: ignore[attr-defined]
    (job,) = jobs(planner)
    assert job.next_run_time >= before + timedelta(seconds=3600)
