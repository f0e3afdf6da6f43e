"""Cron: fire times from a cron expression in a time zone.

Evaluated with cronsim (Debian cron's semantics, including its DST rules), wrapped so that

* every result is an aware UTC datetime and all arithmetic is done in UTC;
* a sixth, leading seconds field means "these seconds of every matching minute", so the DST
  rules below hold for 6-field expressions too (cronsim applies them to 5 fields only);
* ``@hourly``-style aliases, jitter and start/end bounds exist;
* every mistake is a ``ConfigurationError`` naming the expression and the field.

DST (see docs/schedules.md): an expression with a fixed minute and a fixed hour (no ``*`` at
the start of either field) names a wall-clock time. Inside a spring-forward gap it runs once,
at the end of the gap; inside a fall-back repeat it runs once, at the first occurrence.
Expressions whose minute or hour field starts with ``*`` follow the clock: they fire at
every matching wall-clock minute that occurs, once per occurrence.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError

from databay_bus.errors import ArgumentTypeError, ConfigurationError, describe
from databay_bus.schedules.base import as_utc

__all__ = ["ALIASES", "Cron"]

UTC = timezone.utc

ALIASES = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_FIELDS = ("minute", "hour", "day-of-month", "month", "day-of-week")
_ALLOWED = {
    "second": "0-59",
    "minute": "0-59",
    "hour": "0-23",
    "day-of-month": "1-31, L, LW",
    "month": "1-12 or jan-dec",
    "day-of-week": "0-7 or sun-sat (0 and 7 are Sunday), L, #",
}
_SEARCH_YEARS = 50  # cronsim gives up after this many years without a match


def _zone(tz: Any, where: str) -> tuple[tzinfo, str]:
    """``tz`` (None, an IANA name or a tzinfo) as the tzinfo to evaluate in, and its name."""
    if tz is None:
        return UTC, "UTC"
    if isinstance(tz, str):
        try:
            zone = ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError, OSError):
            raise ConfigurationError(
                f"{where}: unknown time zone {describe(tz)} (an IANA name such as 'Europe/Berlin')"
            ) from None
        return (UTC, "UTC") if tz in ("UTC", "Etc/UTC") else (zone, tz)
    if isinstance(tz, tzinfo):
        if tz is UTC:
            return UTC, "UTC"
        name = getattr(tz, "key", None) or str(tz)
        return tz, name
    raise ArgumentTypeError(f"{where}: tz must be an IANA name or a tzinfo, got {describe(tz)}")


def _as_seconds(value: Any, what: str) -> float:
    seconds = value.total_seconds() if isinstance(value, timedelta) else value
    wrong_type = isinstance(seconds, bool) or not isinstance(seconds, (int, float))
    if wrong_type or not math.isfinite(seconds) or seconds < 0:
        error = ArgumentTypeError if wrong_type else ConfigurationError
        raise error(
            f"{what} must be a number of seconds >= 0 or a timedelta, got {describe(value)}"
        )
    return float(seconds)


def _aware(value: datetime | None, what: str) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, datetime):
        raise ArgumentTypeError(f"{what} must be a datetime, got {describe(value)}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ConfigurationError(f"{what} must be time-zone aware, got naive {value!r}")
    return value.astimezone(UTC)


class Cron:
    """A cron schedule: ``Link(inlets, outlets, Cron("0 9 * * mon-fri", tz="Europe/Berlin"))``.

    Args:
        expression: 5 fields ``minute hour day-of-month month day-of-week``, or 6 with a
            leading ``second`` field; or an alias (``@yearly``/``@annually``, ``@monthly``,
            ``@weekly``, ``@daily``/``@midnight``, ``@hourly``). Fields take ``*``, numbers,
            names (``jan``-``dec``, ``sun``-``sat``, any case), ranges ``a-b``, steps ``*/n``
            and ``a-b/n``, lists ``a,b``; cronsim's ``L``, ``LW`` and ``dow#n`` also work.
        tz: the zone the expression's wall-clock times are in: an IANA name or a tzinfo.
            Default UTC (never the host's zone: a schedule must not change with the machine).
        jitter: delay each tick by up to this many seconds (or a timedelta). The delay is
            derived from the fire time, so every process picks the same one.
        start: no fire time before this aware datetime.
        end: no fire time after this aware datetime; the schedule has ended then.

    Raises:
        ConfigurationError: a bad expression (the message names the field), an unknown time
            zone, bad jitter or bounds, or an expression that never fires.
        ArgumentTypeError: an argument of the wrong type (also a ``TypeError``).
    """

    __slots__ = (
        "_end",
        "_expanded",
        "_expression",
        "_jitter",
        "_minutes",
        "_seconds",
        "_start",
        "_tz",
        "_zone",
    )

    def __init__(
        self,
        expression: str,
        tz: str | tzinfo | None = None,
        *,
        jitter: float | timedelta = 0,
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> None:
        if not isinstance(expression, str):
            raise ArgumentTypeError(f"cron expression must be a string, got {describe(expression)}")
        self._expression = " ".join(expression.split())
        where = f"cron expression {self._expression!r}"
        self._tz, self._zone = _zone(tz, where)
        self._jitter = _as_seconds(jitter, f"{where}: jitter")
        self._start = _aware(start, f"{where}: start")
        self._end = _aware(end, f"{where}: end")
        if self._start is not None and self._end is not None and self._end < self._start:
            raise ConfigurationError(f"{where}: end {end!r} is before start {start!r}")
        self._seconds, self._minutes = self._parse(where)
        first = self.next_after(self._start or datetime.now(UTC), bounded=False)
        if first is None:
            raise ConfigurationError(
                f"{where} never fires: no matching time in the {_SEARCH_YEARS} years ahead"
            )

    def _parse(self, where: str) -> tuple[tuple[int, ...], str]:
        """Validate the expression; return its seconds and its 5-field minute expression."""
        text = self._expression
        if text.startswith("@"):
            if text.lower() not in ALIASES:
                raise ConfigurationError(
                    f"{where}: unknown alias, expected one of {', '.join(ALIASES)}"
                )
            text = ALIASES[text.lower()]
        self._expanded = text
        fields = text.split()
        if len(fields) not in (5, 6):
            raise ConfigurationError(
                f"{where}: expected 5 fields (minute hour day-of-month month day-of-week) "
                f"or 6 (second first), got {len(fields)}"
            )
        seconds: tuple[int, ...] = (0,)
        if len(fields) == 6:
            second = fields.pop(0)
            try:
                parsed = CronSim(f"{second} * * * * *", datetime(2000, 1, 1))
            except (CronSimError, ValueError, IndexError):
                raise ConfigurationError(_field_error(where, "second", second)) from None
            seconds = tuple(sorted(parsed.seconds))
        minutes = " ".join(fields)
        try:
            CronSim(minutes, datetime(2000, 1, 1))
        except (CronSimError, ValueError, IndexError) as exc:
            raise ConfigurationError(_explain(where, fields, exc)) from None
        return seconds, minutes

    # -- evaluation -------------------------------------------------------------------------

    def next_after(self, moment: datetime, *, bounded: bool = True) -> datetime | None:
        """The first fire time strictly after ``moment`` (an aware datetime), in UTC.

        None when the schedule has ended (past ``end``), or finds no match in 50 years.
        ``bounded=False`` ignores ``end`` (``start`` still applies).
        """
        after = as_utc(moment, f"{self!r}: next_after")
        if self._start is not None and after < self._start:
            after = self._start - timedelta(microseconds=1)
        fire = self._next_unbounded(after)
        if fire is None or (bounded and self._end is not None and fire > self._end):
            return None
        return fire

    def _next_unbounded(self, after: datetime) -> datetime | None:
        # Matching minutes from one minute back: a fire at second s of a minute M is after
        # ``after`` only if M > after - 60 s. Results may come out of UTC order around a
        # fall-back (cronsim walks naive wall-clock time for fixed-time expressions), so
        # each one is compared with ``after``, never assumed later.
        it = CronSim(self._minutes, (after - timedelta(seconds=60)).astimezone(self._tz))
        try:
            for minute in it:
                start = minute.astimezone(UTC)
                for second in self._seconds:
                    fire = start + timedelta(seconds=second)
                    if fire > after:
                        return fire
        except StopIteration:  # cronsim found nothing within its search horizon
            return None
        return None  # pragma: no cover - cronsim's iterator ends by StopIteration

    def iter_after(self, moment: datetime) -> Iterator[datetime]:
        """The fire times after ``moment``, in order, until the schedule ends."""
        fire = self.next_after(moment)
        while fire is not None:
            yield fire
            fire = self.next_after(fire)

    def next_times(self, count: int, after: datetime | None = None) -> list[datetime]:
        """The next ``count`` fire times after ``after`` (default: now), in UTC."""
        if isinstance(count, bool) or not isinstance(count, int):
            raise ArgumentTypeError(f"{self!r}: count must be an int >= 0, got {describe(count)}")
        if count < 0:
            raise ConfigurationError(f"{self!r}: count must be an int >= 0, got {describe(count)}")
        times: list[datetime] = []
        for fire in self.iter_after(after or datetime.now(UTC)):
            if len(times) >= count:
                break
            times.append(fire)
        return times

    def delay(self, fire: datetime) -> float:
        """The jitter of the tick scheduled at ``fire``: in ``[0, jitter)`` seconds, derived
        from the expression, zone and fire time (the same in every process)."""
        if not self._jitter:
            return 0.0
        stamp = round(fire.timestamp() * 1_000_000)
        digest = zlib.crc32(f"{self._expression}|{self._zone}|{stamp}".encode())
        return self._jitter * digest / 2**32

    # -- description ------------------------------------------------------------------------

    def explain(self) -> str:
        """The expression in English (cronsim's wording), e.g. ``At 09:00 on Monday through
        Friday``; empty if cronsim cannot word it."""
        try:
            return str(CronSim(self._expanded, datetime(2000, 1, 1)).explain())
        except Exception:  # wording is a courtesy: never fail over it
            return ""

    def local_text(self, fire: datetime) -> str:
        """``fire`` in the schedule's zone, with its offset: ``2026-12-07 09:00:00+01:00``."""
        return fire.astimezone(self._tz).isoformat(sep=" ")

    @property
    def expression(self) -> str:
        """The expression as given (whitespace normalised)."""
        return self._expression

    @property
    def tz(self) -> tzinfo:
        """The zone the expression is evaluated in."""
        return self._tz

    @property
    def tz_name(self) -> str:
        """The zone's name, e.g. ``'Europe/Berlin'`` or ``'UTC'``."""
        return self._zone

    @property
    def jitter(self) -> float:
        """The longest delay of a tick, in seconds."""
        return self._jitter

    @property
    def start(self) -> datetime | None:
        """No fire time before this (UTC), or None."""
        return self._start

    @property
    def end(self) -> datetime | None:
        """No fire time after this (UTC), or None."""
        return self._end

    def _key(self) -> tuple[Any, ...]:
        return (self._expression, self._zone, self._jitter, self._start, self._end)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Cron):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __str__(self) -> str:
        return f"cron: {self._expression} ({self._zone})"

    def __repr__(self) -> str:
        extras = "".join(
            f", {name}={value!r}"
            for name, value in (
                ("jitter", self._jitter),
                ("start", self._start),
                ("end", self._end),
            )
            if value
        )
        return f"Cron({self._expression!r}, tz={self._zone!r}{extras})"


def _field_error(where: str, field: str, token: str) -> str:
    return f"{where}: bad {field} field {token!r} (allowed: {_ALLOWED[field]})"


def _explain(where: str, fields: list[str], exc: Exception) -> str:
    """cronsim's ``Bad <field>`` as our message: the field, its text, what it allows."""
    message = str(exc)
    for index, field in enumerate(_FIELDS):
        if message == f"Bad {field}":
            token = fields[index]
            if field == "day-of-month" and _valid_day(token):
                return (
                    f"{where} never fires: day-of-month {token!r} does not occur in "
                    f"month {fields[3]!r}"
                )
            return _field_error(where, field, token)
    return f"{where}: {message}"


def _valid_day(token: str) -> bool:
    try:
        CronSim(f"0 0 {token} * *", datetime(2000, 1, 1))
    except (CronSimError, ValueError, IndexError):
        return False
    return True
