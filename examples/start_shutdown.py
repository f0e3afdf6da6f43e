"""Start and shutdown: node lifecycle hooks and the planner's blocking and background modes.

Shows: ``on_start``/``on_shutdown`` running once per node (also when two links share it);
``planner.start(block=False)`` for embedding in an application, then ``shutdown()``; the
planner as a context manager; ``start()`` blocking until another thread shuts it down.
Run: ``python examples/start_shutdown.py --transfers 2 --interval 1``
Prints lifecycle lines in order: ``shared-inlet: on_start`` ... ``shared-inlet: on_shutdown``
for each of the three runs, with the transfers in between.
"""

from __future__ import annotations

import argparse
import threading
import time

from databay_bus import Inlet, Link, Outlet, Record, Update
from databay_bus.planners import ApsPlanner

_print_lock = threading.Lock()


def say(line: str) -> None:
    """Print from any thread without lines of concurrent pushes running together."""
    with _print_lock:
        print(line, flush=True)


class LoudInlet(Inlet):
    def on_start(self) -> None:
        say(f"{self.name}: on_start")

    def on_shutdown(self) -> None:
        say(f"{self.name}: on_shutdown")

    def pull(self, update: Update) -> str:
        return f"data of {update}"


class LoudOutlet(Outlet):
    def on_start(self) -> None:
        say(f"{self.name}: on_start")

    def on_shutdown(self) -> None:
        say(f"{self.name}: on_shutdown")

    def push(self, records: list[Record], update: Update) -> None:
        for record in records:
            say(f"{self.name}: {record.payload}")


def wait_for(links: list[Link], transfers: int, planner: ApsPlanner) -> None:
    """Wait until every link has made ``transfers`` more transfers (numbers keep counting)."""
    goal = [link.transfer_number + transfers for link in links]
    deadline = time.monotonic() + 30
    while not planner.running and time.monotonic() < deadline:  # let start() get going
        time.sleep(0.01)
    while planner.running and any(
        link.transfer_number < target for link, target in zip(links, goal, strict=True)
    ):
        time.sleep(0.01)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--transfers", type=int, default=2)
    parser.add_argument("--interval", type=float, default=1.0)
    args = parser.parse_args(argv)

    inlet = LoudInlet(name="shared-inlet")
    links = [
        Link(inlet, LoudOutlet(name="outlet-a"), args.interval, tags="a"),
        Link(inlet, LoudOutlet(name="outlet-b"), args.interval, tags="b"),
    ]

    print("-- 1. background mode", flush=True)
    planner = ApsPlanner(links)
    planner.start(block=False)
    wait_for(links, args.transfers, planner)
    planner.shutdown()

    print("-- 2. context manager (shuts down on leaving the block)", flush=True)
    with ApsPlanner(links[0]) as second:  # entering starts it in the background
        wait_for(links[:1], args.transfers, second)

    print("-- 3. blocking start, shut down from another thread", flush=True)
    third = ApsPlanner(links[1])
    stopper = threading.Thread(
        target=lambda: (wait_for(links[1:], args.transfers, third), third.shutdown())
    )
    threading.Timer(0.0, stopper.start).start()
    third.start()  # returns once the other thread has shut the planner down
    stopper.join()
    print("-- done", flush=True)


if __name__ == "__main__":
    main()
