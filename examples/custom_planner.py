"""Custom planner: a minimal scheduler of our own on top of ``BasePlanner``.

Shows: the four hooks a planner implements -- ``_schedule``, ``_unschedule``,
``_start_planner``, ``_shutdown_planner`` -- with one thread per link that calls
``self._run_transfer(link)`` every ``link.interval``. ``BasePlanner`` does the rest: node
lifecycle, immediate transfers, exception policy, ``start(block=...)``.
Run: ``python examples/custom_planner.py --transfers 3 --interval 1``
Prints the transfers of two links (``fast.0 17``, ``slow.0 'tick'``) and ``stopped``.
"""

from __future__ import annotations

import argparse
import threading
import time

from databay_bus import BasePlanner, Inlet, Link, Update
from databay_bus.inlets import RandomIntInlet
from databay_bus.outlets import PrintOutlet


class ThreadPlanner(BasePlanner):
    """Runs each link on its own daemon thread, sleeping ``interval`` between transfers."""

    # _start_planner returns at once (the default): start() returns too, as in Databay.

    def __init__(self, links: Link | list[Link] | None = None) -> None:
        self._stop = threading.Event()
        self._threads: dict[int, tuple[threading.Thread, threading.Event]] = {}
        self._started = False
        super().__init__(links)

    def _schedule(self, link: Link) -> None:
        if not self._started:
            return  # scheduled when the planner starts
        cancel = threading.Event()
        thread = threading.Thread(target=self._loop, args=(link, cancel), daemon=True)
        self._threads[id(link)] = (thread, cancel)
        link.set_job(thread)
        thread.start()

    def _unschedule(self, link: Link) -> None:
        entry = self._threads.pop(id(link), None)
        link.set_job(None)
        if entry is not None:
            entry[1].set()

    def _loop(self, link: Link, cancel: threading.Event) -> None:
        seconds = link.interval.total_seconds()
        while not cancel.wait(seconds) and not self._stop.is_set():
            self._run_transfer(link)

    def _start_planner(self) -> None:
        self._stop.clear()
        self._started = True
        for link in self.links:
            self._schedule(link)

    def _shutdown_planner(self, wait: bool = True) -> None:
        self._stop.set()
        self._started = False
        entries = list(self._threads.values())
        for link in self.links:
            self._unschedule(link)
        if wait:
            for thread, _ in entries:
                if thread is not threading.current_thread():
                    thread.join()


class TickInlet(Inlet):
    def pull(self, update: Update) -> str:
        return "tick"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--transfers", type=int, default=3)
    parser.add_argument("--interval", type=float, default=1.0)
    args = parser.parse_args(argv)

    fast = Link(RandomIntInlet(), PrintOutlet(only_payload=True), args.interval, tags="fast")
    slow = Link(TickInlet(), PrintOutlet(only_payload=True), args.interval * 2, tags="slow")
    planner = ThreadPlanner([fast, slow])
    planner.start(block=False)
    while planner.running and fast.transfer_number + 1 < args.transfers:
        time.sleep(0.01)
    planner.shutdown()
    print("stopped", flush=True)


if __name__ == "__main__":
    main()
