"""``databay-bus schedule EXPR [--tz TZ] [--next N] [--from ISO]``: a cron expression's next
fire times, to check an expression before putting it in a pipeline file."""

from __future__ import annotations

import argparse
import itertools
from datetime import datetime, timezone

from databay_bus.cli._common import EXIT_OK, EXIT_USAGE, CommandFailure, positive_int
from databay_bus.errors import ConfigurationError

__all__ = ["ORDER", "register"]

ORDER = 25
_PREFIX = "cron:"


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``schedule`` command."""
    schedule = commands.add_parser(
        "schedule",
        help="print a cron expression's next fire times",
        description="Print the next fire times of a cron expression (5 fields, 6 with seconds "
        "first, or an alias such as @daily), in its time zone and in UTC. Quote the "
        "expression: '0 9 * * mon-fri'. See docs/schedules.md.",
    )
    schedule.add_argument(
        "expression", metavar="EXPR", nargs="+", help="the cron expression ('cron:' optional)"
    )
    schedule.add_argument("--tz", help="IANA time zone of the expression (default UTC)")
    schedule.add_argument(
        "--next", type=positive_int, default=5, metavar="N", help="how many (default 5)"
    )
    schedule.add_argument(
        "--from",
        dest="start",
        metavar="ISO",
        help="list fire times after this ISO 8601 time (default now; without an offset it is "
        "read in --tz)",
    )
    schedule.set_defaults(handler=_schedule)


def _schedule(args: argparse.Namespace) -> int:
    from databay_bus.schedules import Cron

    text = " ".join(args.expression).strip()
    if text.lower().startswith(_PREFIX):
        text = text[len(_PREFIX) :].strip()
    try:
        cron = Cron(text, tz=args.tz)
    except ConfigurationError as exc:
        raise CommandFailure(str(exc), EXIT_USAGE) from None
    after = _start(args.start, cron.tz) if args.start else datetime.now(timezone.utc)
    print(cron)
    explained = cron.explain()
    if explained:
        print(explained)
    print(f"next {args.next} after {cron.local_text(after.replace(microsecond=0))}:")
    # Printed as found: a large --next shows its first lines at once and stops at `| head`.
    printed = 0
    for fire in itertools.islice(cron.iter_after(after), args.next):
        weekday = fire.astimezone(cron.tz).strftime("%a")
        utc = fire.strftime("%Y-%m-%d %H:%M:%S")
        print(
            f"  {weekday} {cron.local_text(fire)}"
            + ("" if cron.tz_name == "UTC" else f"  ({utc} UTC)"),
            flush=True,
        )
        printed += 1
    if printed < args.next:
        print("  (the schedule has no more fire times)")
    return EXIT_OK


def _start(text: str, zone: object) -> datetime:
    """``--from``: ISO 8601; a trailing ``Z`` is UTC; no offset means the schedule's zone."""
    try:
        moment = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith("Z") else text)
    except ValueError:
        raise CommandFailure(
            f"--from must be an ISO 8601 time such as 2026-03-29T01:30 or "
            f"2026-03-29T01:30+01:00, got {text!r}",
            EXIT_USAGE,
        ) from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=zone)  # type: ignore[arg-type]
