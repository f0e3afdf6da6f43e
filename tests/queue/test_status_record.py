"""PipelineStatus: one typed shape for a running pipeline's status (issue 15 item 5)."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from queue_fakes import CountingInlet, FlakyOutlet, ListOutlet

from databay_bus import Link
from databay_bus.planners import ApsPlanner
from databay_bus.queue import SqliteQueue
from databay_bus.queue.base import OutletStats, QueueStats
from databay_bus.queue.maintenance import QueueMaintenance
from databay_bus.status import LinkStatus, OutletStatus, PipelineStatus, planner_status


def test_round_trip_through_json_ignores_unknown_keys() -> None:
    status = PipelineStatus(
        "pid 1 on h",
        "ApsPlanner",
        "running",
        100.0,
        (LinkStatus("a.b", ("a", "b"), failing=("out",), outlets=(OutletStatus("out", 1),)),),
    )
    data = json.loads(status.to_json())
    data["new_field"] = 1
    data["links"][0]["also_new"] = [1]
    assert PipelineStatus.from_dict(data) == status
    assert not status.is_stale(100.0 + 3 * status.interval) and status.is_stale(10_000.0)


def test_a_running_planner_records_its_status_in_its_queue(
    tmp_path: Path, wait_until: Callable[..., None]
) -> None:
    """Readable beside the running process with a read-only queue; the last record, written
    as the planner stops, says it is no longer running."""
    queue = SqliteQueue(tmp_path / "q.db")
    outlet = FlakyOutlet(1.0, 0, name="flaky")  # always fails: waits for a retry
    link = Link(CountingInlet(2), [ListOutlet("good"), outlet], 3600, tags="prices", queue=queue)
    planner = ApsPlanner([link], threads=2)
    reader = SqliteQueue(tmp_path / "q.db", read_only=True)
    try:
        planner.start(block=False)

        def transferred() -> bool:
            texts = reader.recorded_status()
            return (
                bool(texts)
                and PipelineStatus.from_dict(json.loads(texts[0])).links[0].transfers > 0
            )

        wait_until(lambda: link.metrics.transfers >= 1)
        planner._maintenance.record_status()  # type: ignore[union-attr]  # not wait 5 s
        wait_until(transferred)
        (text,) = reader.recorded_status()
        status = PipelineStatus.from_dict(json.loads(text)).with_queue_counts(reader.stats())
        (entry,) = status.links
        assert (status.state, entry.id, entry.transfers, entry.records_pulled) == (
            "running",
            "prices",
            1,
            2,
        )
        assert entry.next_transfer_at is not None and entry.last_transfer_at is not None
        assert entry.next_transfer_at > entry.last_transfer_at
        assert [o.name for o in entry.outlets] == ["good", "flaky"]
        assert entry.failing == ("flaky",) and entry.state == "failing"
        assert (entry.outlets[1].pending, entry.outlets[1].retrying) == (2, 2)
    finally:
        planner.shutdown()
    (last,) = reader.recorded_status()
    assert PipelineStatus.from_dict(json.loads(last)).state != "running"
    reader.close()
    queue.close()


def test_the_last_record_into_a_closed_queue_is_not_a_warning(
    tmp_path: Path, databay_logs: Any
) -> None:
    """As a planner stops, its queue may be closed already: the last record fails quietly."""
    from databay_bus.queue.maintenance import QueueMaintenance
    from databay_bus.status import planner_status

    queue = SqliteQueue(tmp_path / "q.db")
    link = Link(CountingInlet(1), ListOutlet("out"), 3600, tags="t", queue=queue)
    planner = ApsPlanner([link], threads=1)
    maintenance = QueueMaintenance(lambda: [link], status=lambda: planner_status(planner))
    maintenance.record_status()
    with SqliteQueue(tmp_path / "q.db", read_only=True) as reader:
        assert len(reader.recorded_status()) == 1
    queue.close()
    maintenance.record_status(final=True)
    logged = [r for r in databay_logs.records if r.name == "databay_bus.queue.maintenance"]
    assert logged and all(r.levelname == "DEBUG" for r in logged)
    maintenance.record_status()  # not the last one: a closed queue is worth a warning
    assert databay_logs.records[-1].levelname == "WARNING"


def test_to_json_is_as_dict_encoded() -> None:
    """to_json encodes the status objects as it goes; the text is as_dict's."""
    status = PipelineStatus(
        "p",
        "A",
        "running",
        1.5,
        (
            LinkStatus("a", ("x",), failing=("t",), outlets=(OutletStatus("o", 1, 2, 3, 4, 5),)),
            LinkStatus("b", last_error=Path("odd")),  # type: ignore[arg-type]  # default=str
        ),
        source="s",
    )
    assert status.to_json() == json.dumps(status.as_dict(), separators=(",", ":"), default=str)


def test_queue_counts_are_summed_per_link_and_outlet() -> None:
    rows = [
        OutletStats("a", "o1", 2, 1, 0, 3, None),
        OutletStats("a", "o2", 1, 0, 0, 0, None),
        OutletStats("a", "o1", 1, 1, 0, 0, None),  # a second row of the same pair adds up
        OutletStats("b", "o1", 5, 0, 0, 0, None),
    ]
    links = (
        LinkStatus("a", outlets=(OutletStatus("o1"), OutletStatus("gone"))),
        LinkStatus("c", outlets=(OutletStatus("o1"),)),
    )
    counted = PipelineStatus("p", "A", "running", 1.0, links).with_queue_counts(
        QueueStats(tuple(rows), 9)
    )
    a, c = counted.links
    assert (a.pending, a.dead) == (4, 3)
    assert [(o.pending, o.retrying, o.dead) for o in a.outlets] == [(3, 2, 3), (0, 0, 0)]
    assert c == links[1]  # not in the queue: left as recorded


def test_a_big_planners_status_is_recorded_less_often_and_says_so(tmp_path: Path) -> None:
    """A status taking more than 5 % of a core to make is recorded less often, and the
    record's interval (by which readers judge staleness) says how often."""
    queue = SqliteQueue(tmp_path / "q.db")
    link = Link(CountingInlet(1), ListOutlet("out"), 3600, tags="t", queue=queue)
    planner = ApsPlanner([link], threads=1)
    made: list[PipelineStatus] = []

    def status() -> PipelineStatus:
        made.append(planner_status(planner))
        return made[-1]

    cpu = itertools.count()  # each read of the CPU clock: one second later
    maintenance = QueueMaintenance(lambda: [link], status=status, cpu_time=lambda: next(cpu))
    maintenance.run_once(now=0.0)
    with SqliteQueue(tmp_path / "q.db", read_only=True) as reader:
        (text,) = reader.recorded_status()
    # building took 1 s, so 2 s with encoding: 5 % of 40 s
    assert PipelineStatus.from_dict(json.loads(text)).interval == 40.0
    maintenance.run_once(now=39.0)
    assert len(made) == 1
    maintenance.run_once(now=40.0)
    assert len(made) == 2
    queue.close()
