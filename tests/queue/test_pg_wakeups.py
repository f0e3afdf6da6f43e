"""Wake-ups of PostgresQueue: LISTEN/NOTIFY, the poll fallback, poll-only mode, planners."""

from __future__ import annotations

import threading
from collections.abc import Callable

from databay_bus import Link, Record
from databay_bus.planners import ApsPlanner
from databay_bus.queue import PostgresQueue
from tests.queue.queue_fakes import CountingInlet, ListOutlet


def recs(*payloads: object) -> list[Record]:
    return [Record(p, {"__inlet__": "I"}) for p in payloads]


class Seen:
    """A watch callback that remembers the links it was called with."""

    def __init__(self) -> None:
        self.links: list[str] = []
        self.event = threading.Event()

    def __call__(self, link: str) -> None:
        self.links.append(link)
        self.event.set()


def test_listen_wakes_on_another_process_enqueue(
    make_postgres: Callable[..., PostgresQueue],
) -> None:
    watcher = make_postgres(clock=None, poll_interval=600)  # no poll within the test
    other = make_postgres(clock=None)
    seen = Seen()
    unwatch = watcher.watch(seen)
    watcher.enqueue("mine", recs(0), [["a"]])  # its own enqueue wakes nobody here
    other.enqueue("L", recs(1), [["a"]])
    assert seen.event.wait(20)
    assert seen.links == ["L"]
    unwatch()
    seen.event.clear()
    other.enqueue("L", recs(2), [["a"]])
    assert not seen.event.wait(0.5)


def test_poll_only_mode_finds_due_unclaimed_records(
    make_postgres: Callable[..., PostgresQueue],
) -> None:
    """For poolers that break LISTEN: polling finds due work (also retries coming due)."""
    watcher = make_postgres(clock=None, wakeups="poll", poll_interval=0.1)
    other = make_postgres(clock=None, wakeups="poll")
    seen = Seen()
    watcher.watch(seen)
    other.enqueue("L", recs(1), [["a"]])
    assert seen.event.wait(20)
    assert set(seen.links) == {"L"}


def test_a_running_planner_delivers_records_another_process_stored(
    make_postgres: Callable[..., PostgresQueue], wait_until: Callable[..., None]
) -> None:
    """Between its ticks (an hour apart), a planner is woken and pushes without pulling."""
    queue = make_postgres(clock=None)
    inlet, outlet = CountingInlet(), ListOutlet(name="out")
    link = Link(inlet, outlet, 3600, tags="shared", queue=queue, immediate_transfer=False)
    planner = ApsPlanner(link)
    planner.start(block=False)
    try:
        make_postgres(clock=None).enqueue("shared", recs("x", "y"), [["out"]] * 2)
        wait_until(lambda: outlet.payloads == ["x", "y"], timeout=20)
        assert inlet.pulls == 0
    finally:
        planner.shutdown()
