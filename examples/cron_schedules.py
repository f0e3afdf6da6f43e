"""Cron schedules: links that run by the calendar, in a time zone, correctly across DST.

Shows: ``Cron(expression, tz=...)`` and its next fire times; two links on Berlin wall-clock
schedules run by a ``SchedulePlanner`` on a simulated clock (``FakeClock``) through the night
clocks go forward (2026-03-29) and the night they go back (2026-10-25) — the daily 02:30 link
runs once each night (at 03:00 when 02:30 does not exist), the hourly one every real hour; then
a link on a 6-field (seconds) cron run by an ``ApsPlanner`` in real time.
Run: ``python examples/cron_schedules.py --transfers 3``
Prints the next fire times of ``30 2 * * *`` in Berlin, then one line per simulated transfer:
``daily.0 ran at 2026-03-29 03:00 CEST`` and ``hourly.N`` at 01:00 CET, 03:00, 04:00, 05:00 CEST
(spring); ``daily.0 ran at 2026-10-25 02:30 CEST`` and ``hourly.N`` at 02:00 CEST, 02:00 CET,
03:00, 04:00 CET (fall); then ``seconds.N ran at HH:MM:SS`` for each real transfer.
"""

from __future__ import annotations

import argparse
import threading
import time
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

from databay_bus import Cron, Inlet, Link, Outlet, Record, Update
from databay_bus.planners import ApsPlanner, SchedulePlanner
from databay_bus.testing import FakeClock

BERLIN = ZoneInfo("Europe/Berlin")
UTC = timezone.utc
_print_lock = threading.Lock()


def say(line: str) -> None:
    with _print_lock:
        print(line, flush=True)


class TickInlet(Inlet):
    def pull(self, update: Update) -> str:
        return str(update)


class TimeOutlet(Outlet):
    """Prints each transfer with the time of ``clock`` (a simulated or the real one)."""

    def __init__(self, clock: FakeClock | None = None, fmt: str = "%Y-%m-%d %H:%M %Z") -> None:
        super().__init__()
        self.clock = clock
        self.fmt = fmt
        self.pushes = 0

    def push(self, records: list[Record], update: Update) -> None:
        now = self.clock.time() if self.clock is not None else time.time()
        when = datetime.fromtimestamp(now, UTC).astimezone(BERLIN)
        say(f"{update} ran at {when.strftime(self.fmt)}")
        self.pushes += 1


def show_next_times() -> None:
    cron = Cron("30 2 * * *", tz="Europe/Berlin")
    say(f"{cron}: {cron.explain()}")
    for fire in cron.next_times(3, datetime(2026, 3, 28, 12, tzinfo=UTC)):
        say(f"  {cron.local_text(fire)}  = {fire:%H:%M} UTC")


def outlet_of(link: Link) -> TimeOutlet:
    outlet = link.outlets[0]
    assert isinstance(outlet, TimeOutlet)
    return outlet


def simulate_night(start: datetime, hours: int) -> None:
    """Run a daily 02:30 and an hourly Berlin link through ``hours`` simulated hours."""
    clock = FakeClock(start.timestamp())
    daily = Link(
        TickInlet(),
        TimeOutlet(clock),
        Cron("30 2 * * *", tz="Europe/Berlin"),
        tags="daily",
        immediate_transfer=False,
    )
    hourly = Link(
        TickInlet(),
        TimeOutlet(clock),
        Cron("@hourly", tz="Europe/Berlin"),
        tags="hourly",
        immediate_transfer=False,
    )
    links = [daily, hourly]
    planner = SchedulePlanner(links, refresh_interval=0.01, clock=clock)
    planner.start(block=False)
    try:
        for _ in range(hours * 4):  # quarter-hour steps; the clock stands still in between
            now = datetime.fromtimestamp(clock.time() + 15 * 60, UTC).replace(tzinfo=None)
            due = [link for link in links if link.job.next_run <= now]  # naive UTC
            goal = [outlet_of(link).pushes + 1 for link in due]
            clock.advance(15 * 60)
            deadline = time.monotonic() + 10
            # the loop wakes within refresh_interval, runs what is due and schedules its next run
            while any(outlet_of(link).pushes < n for link, n in zip(due, goal, strict=True)) or any(
                link.job.next_run <= now for link in links
            ):
                if time.monotonic() > deadline:
                    raise RuntimeError("the planner did not tick in 10 s")
                time.sleep(0.005)
    finally:
        planner.shutdown()


def run_real(transfers: int, every: int) -> None:
    """A 6-field cron (``*/every`` seconds) under ApsPlanner, for ``transfers`` transfers."""
    link = Link(
        TickInlet(),
        TimeOutlet(fmt="%H:%M:%S"),
        Cron(f"*/{every} * * * * *"),
        tags="seconds",
        immediate_transfer=False,
    )
    with ApsPlanner(link, threads=2):
        deadline = time.monotonic() + 30 + transfers * every
        while link.transfer_number + 1 < transfers and time.monotonic() < deadline:
            time.sleep(0.01)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--transfers", type=int, default=3, help="real transfers at the end")
    parser.add_argument(
        "--interval",
        type=float,
        default=1.0,
        help="seconds between the real transfers, rounded to whole seconds (at least 1)",
    )
    args = parser.parse_args(argv)
    show_next_times()
    say("-- spring forward, Berlin 2026-03-29 (02:00 -> 03:00), simulated")
    simulate_night(datetime(2026, 3, 28, 23, tzinfo=UTC), hours=4)
    say("-- fall back, Berlin 2026-10-25 (03:00 -> 02:00), simulated")
    simulate_night(datetime(2026, 10, 24, 23, tzinfo=UTC), hours=4)
    say("-- real time, every second")
    run_real(args.transfers, max(1, round(args.interval)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
