"""planner.metrics(): values after known transfers, per link and per outlet, queue depths."""

from __future__ import annotations

import json

from core_fakes import FailingOutlet, ListInlet, ManualPlanner, RecordingOutlet

from databay_bus import Link
from databay_bus.queue import MemoryQueue, RetryPolicy
from databay_bus.testing import FakeClock


def test_metrics_count_transfers_records_and_outlets() -> None:
    planner = ManualPlanner(immediate_transfer=False, ignore_exceptions=True)
    link = Link(
        [ListInlet([1, 2, 3]), ListInlet([4])],
        [RecordingOutlet(name="all"), RecordingOutlet(name="some", processors=[lambda r: r[:1]])],
        interval=1,
        tags=["prices", "eu"],
    )
    planner.add_links(link)
    for _ in range(3):
        planner.tick(link)
    metrics = planner.metrics()
    assert metrics["planner"] == "ManualPlanner"
    assert metrics["state"] == "stopped"
    (entry,) = metrics["links"]
    assert entry["tags"] == ["prices", "eu"]
    assert entry["transfers"] == 3
    assert entry["failures"] == 0
    assert entry["records_pulled"] == 12
    assert entry["records_pushed"] == 12 + 3  # 'all' takes 4 per transfer, 'some' 1
    assert entry["outlets"] == {
        "all": {"pushed": 12, "failures": 0},
        "some": {"pushed": 3, "failures": 0},
    }
    assert isinstance(entry["last_duration"], float) and entry["last_duration"] >= 0
    assert isinstance(entry["last_transfer_at"], float)
    assert "queue" not in entry
    json.dumps(metrics)  # plain data only


def test_failures_are_counted_per_transfer_and_per_outlet() -> None:
    planner = ManualPlanner(immediate_transfer=False, ignore_exceptions=True)
    link = Link(
        ListInlet([1, 2]),
        [RecordingOutlet(name="good"), FailingOutlet(name="bad")],
        interval=1,
        tags="failing",
    )
    planner.add_links(link)
    planner.tick(link)
    planner.tick(link)
    (entry,) = planner.metrics()["links"]
    assert entry["transfers"] == 2
    assert entry["failures"] == 2
    assert entry["records_pulled"] == 4
    assert entry["outlets"]["good"] == {"pushed": 4, "failures": 0}
    assert entry["outlets"]["bad"] == {"pushed": 0, "failures": 4}


def test_metrics_of_several_links_keep_their_order() -> None:
    planner = ManualPlanner(immediate_transfer=False)
    first = Link(ListInlet([1]), RecordingOutlet(), interval=1, tags="first")
    second = Link(ListInlet([1, 2]), RecordingOutlet(), interval=1, tags="second")
    planner.add_links([first, second])
    planner.tick(second)
    links = planner.metrics()["links"]
    assert [e["tags"] for e in links] == [["first"], ["second"]]
    assert [e["transfers"] for e in links] == [0, 1]
    assert links[0]["last_duration"] is None


def test_queued_link_reports_pending_dead_and_oldest_pending_age() -> None:
    clock = FakeClock()
    queue = MemoryQueue(clock=clock)
    planner = ManualPlanner(immediate_transfer=False, ignore_exceptions=True)
    link = Link(
        ListInlet([1, 2, 3]),
        [RecordingOutlet(name="ok"), FailingOutlet(name="down")],
        interval=1,
        tags="queued",
        queue=queue,
        retry=RetryPolicy(max_attempts=2, initial_delay=100, jitter=0),
    )
    planner.add_links(link)
    planner.tick(link)  # 3 records: 'ok' takes them, 'down' fails once (retry in 100 s)
    clock.advance(30)
    entry = planner.metrics()["links"][0]["queue"]
    assert entry["key"] == "queued"
    assert entry["pending"] == 3
    assert entry["dead"] == 0
    assert entry["oldest_pending_age"] == 30
    assert entry["outlets"]["down"] == {"pending": 3, "retrying": 3, "dead": 0}
    assert entry["outlets"]["ok"] == {"pending": 0, "retrying": 0, "dead": 0}
    clock.advance(100)
    planner.tick(link)  # second failure: 'down' gives up on the three, three new are pending
    entry = planner.metrics()["links"][0]["queue"]
    assert entry["dead"] == 3
    assert entry["outlets"]["down"]["dead"] == 3
    json.dumps(planner.metrics())
