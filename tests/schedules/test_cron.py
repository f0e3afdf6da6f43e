"""Cron: grammar, errors, bounds, jitter, and the DST rules on Berlin and New York dates."""

from __future__ import annotations

import itertools
import re
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from databay_bus import Cron
from databay_bus.errors import ArgumentTypeError, ConfigurationError, DatabayBusError
from databay_bus.schedules import IntervalSchedule, Schedule

UTC = timezone.utc
BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def local(times: list[datetime], zone: ZoneInfo) -> list[str]:
    """Fire times as local wall-clock text with the offset, to read DST cases at a glance."""
    return [t.astimezone(zone).strftime("%m-%d %H:%M:%S%z") for t in times]


class TestGrammar:
    @pytest.mark.parametrize(
        ("expression", "after", "expected"),
        [
            ("0 9 * * mon-fri", utc(2026, 3, 6, 10), [utc(2026, 3, 9, 9), utc(2026, 3, 10, 9)]),
            ("15 * * * *", utc(2026, 1, 1, 0, 15),
             [utc(2026, 1, 1, 1, 15), utc(2026, 1, 1, 2, 15)]),
            ("0 0 1 * *", utc(2026, 1, 15), [utc(2026, 2, 1), utc(2026, 3, 1)]),
            ("*/20 8-9 * * *", utc(2026, 1, 1, 8, 41),
             [utc(2026, 1, 1, 9), utc(2026, 1, 1, 9, 20)]),
            ("0 12 1,15 jan,JUL *", utc(2026, 1, 2), [utc(2026, 1, 15, 12), utc(2026, 7, 1, 12)]),
            ("@hourly", utc(2026, 1, 1, 0, 30), [utc(2026, 1, 1, 1), utc(2026, 1, 1, 2)]),
            ("@daily", utc(2026, 1, 1, 0, 0), [utc(2026, 1, 2), utc(2026, 1, 3)]),
            ("@weekly", utc(2026, 1, 1), [utc(2026, 1, 4), utc(2026, 1, 11)]),  # Sundays
            ("@monthly", utc(2026, 1, 1), [utc(2026, 2, 1), utc(2026, 3, 1)]),
            ("@yearly", utc(2026, 1, 1), [utc(2027, 1, 1), utc(2028, 1, 1)]),
            ("0 0 29 2 *", utc(2026, 1, 1), [utc(2028, 2, 29), utc(2032, 2, 29)]),
            # 6 fields: the leading field is the seconds of every matching minute
            ("*/20 * * * * *", utc(2026, 1, 1, 0, 0, 50),
             [utc(2026, 1, 1, 0, 1), utc(2026, 1, 1, 0, 1, 20)]),
            ("30 0 12 * * *", utc(2026, 1, 1, 12, 0, 30),
             [utc(2026, 1, 2, 12, 0, 30), utc(2026, 1, 3, 12, 0, 30)]),
        ],
    )  # fmt: skip
    def test_next_times(self, expression: str, after: datetime, expected: list[datetime]) -> None:
        assert Cron(expression).next_times(2, after) == expected

    def test_next_after_is_strictly_after_and_in_utc(self) -> None:
        cron = Cron("0 9 * * *", tz="Europe/Berlin")
        fire = cron.next_after(utc(2026, 1, 5, 8))
        assert fire == utc(2026, 1, 6, 8) and fire.tzinfo is UTC
        assert cron.next_after(utc(2026, 1, 5, 7, 59, 59, 999999)) == utc(2026, 1, 5, 8)
        assert cron.next_after(datetime(2026, 1, 5, 9, tzinfo=BERLIN)) == utc(2026, 1, 6, 8)

    def test_naive_datetime_is_refused(self) -> None:
        with pytest.raises(ValueError, match="aware"):
            Cron("* * * * *").next_after(datetime(2026, 1, 1))

    def test_default_zone_is_utc_and_zones_may_be_tzinfo(self) -> None:
        assert Cron("0 9 * * *").tz_name == "UTC"
        assert Cron("0 9 * * *", tz=BERLIN) == Cron("0 9 * * *", tz="Europe/Berlin")
        assert Cron("0 9 * * *", tz=BERLIN) != Cron("0 9 * * *")
        assert str(Cron("0  9 * * *", "Europe/Berlin")) == "cron: 0 9 * * * (Europe/Berlin)"

    def test_iter_after_and_bounds(self) -> None:
        cron = Cron("0 12 * * *", start=utc(2026, 5, 1), end=utc(2026, 5, 3, 12))
        assert cron.next_times(5, utc(2020, 1, 1)) == [utc(2026, 5, d, 12) for d in (1, 2, 3)]
        assert cron.next_after(utc(2026, 5, 3, 12)) is None
        assert cron.next_after(utc(2026, 5, 3, 12), bounded=False) == utc(2026, 5, 4, 12)

    def test_jitter_is_bounded_and_the_same_everywhere(self) -> None:
        cron = Cron("* * * * *", jitter=30)
        fires = cron.next_times(50, utc(2026, 1, 1))
        delays = [cron.delay(fire) for fire in fires]
        assert all(0 <= d < 30 for d in delays) and len(set(delays)) > 40
        assert delays == [Cron("* * * * *", jitter=timedelta(seconds=30)).delay(f) for f in fires]
        assert Cron("* * * * *").delay(fires[0]) == 0.0

    def test_both_schedules_follow_the_protocol(self) -> None:
        assert isinstance(Cron("* * * * *"), Schedule)
        assert isinstance(IntervalSchedule(timedelta(seconds=1)), Schedule)


class TestBadInput:
    @pytest.mark.parametrize(
        ("expression", "tz", "message"),
        [
            ("61 * * * *", None, "cron expression '61 * * * *': bad minute field '61'"),
            ("* * *", None, "cron expression '* * *': expected 5 fields"),
            ("0 9 * * funday", None, "bad day-of-week field 'funday'"),
            ("0 25 * * *", None, "bad hour field '25'"),
            ("0 0 0 * *", None, "bad day-of-month field '0'"),
            ("0 0 * 13 *", None, "bad month field '13'"),
            ("*/0 * * * *", None, "bad minute field '*/0'"),
            ("x 0 9 * * *", None, "bad second field 'x'"),
            ("@often", None, "'@often': unknown alias"),
            ("0 0 30 2 *", None, "'0 0 30 2 *' never fires: day-of-month '30' does not occur"),
            ("0 0 31 4,6 *", None, "never fires"),
            ("* * * * *", "Europe/Berln", "'* * * * *': unknown time zone 'Europe/Berln'"),
            ("* * * * *", 5, "tz must be an IANA name or a tzinfo"),
        ],
    )
    def test_configuration_error_names_expression_and_field(
        self, expression: str, tz: object, message: str
    ) -> None:
        with pytest.raises(ConfigurationError, match=re.escape(message)):
            Cron(expression, tz=tz)  # type: ignore[arg-type]

    def test_bad_options(self) -> None:
        with pytest.raises(ConfigurationError, match="jitter must be"):
            Cron("* * * * *", jitter=-1)
        with pytest.raises(ConfigurationError, match="start must be time-zone aware"):
            Cron("* * * * *", start=datetime(2026, 1, 1))
        with pytest.raises(ConfigurationError, match=r"end .* is before start"):
            Cron("* * * * *", start=utc(2026, 1, 2), end=utc(2026, 1, 1))
        with pytest.raises(ConfigurationError, match="must be a string"):
            Cron(5)  # type: ignore[arg-type]


    @pytest.mark.parametrize(
        ("arguments", "message"),
        [
            ({"expression": b"* * * * *"}, "cron expression must be a string, got b'* * * * *'"),
            ({"expression": "* * * * *", "tz": 5}, "tz must be an IANA name or a tzinfo, got 5"),
            ({"expression": "* * * * *", "jitter": "5"}, "jitter must be a number of seconds"),
            ({"expression": "* * * * *", "jitter": True}, "jitter must be a number of seconds"),
            ({"expression": "* * * * *", "start": "2026-01-01"}, "start must be a datetime"),
            ({"expression": "* * * * *", "end": 1.5}, "end must be a datetime, got 1.5"),
        ],
    )
    def test_a_wrong_type_is_also_a_type_error(
        self, arguments: dict[str, object], message: str
    ) -> None:
        with pytest.raises(ArgumentTypeError, match=re.escape(message)) as caught:
            Cron(**arguments)  # type: ignore[arg-type]
        assert isinstance(caught.value, TypeError) and isinstance(caught.value, ValueError)

    def test_evaluation_refuses_bad_arguments_with_named_errors(self) -> None:
        cron = Cron("0 9 * * *")
        with pytest.raises(ConfigurationError, match=r"Cron\('0 9 \* \* \*'.*naive"):
            cron.next_after(datetime(2026, 1, 1))
        with pytest.raises(ArgumentTypeError, match="needs a datetime, got '2026' \\(str\\)"):
            cron.next_after("2026")  # type: ignore[arg-type]
        for count in ("3", True, 2.0):
            with pytest.raises(ArgumentTypeError, match="count must be an int >= 0"):
                cron.next_times(count)  # type: ignore[arg-type]
        with pytest.raises(ConfigurationError, match=r"count must be an int >= 0, got -1 \(int\)"):
            cron.next_times(-1)
        with pytest.raises(ArgumentTypeError, match="needs a datetime"):
            cron.next_times(2, "2026-01-01")  # type: ignore[arg-type]
        assert cron.next_times(0) == []
        with pytest.raises(DatabayBusError, match="naive"):
            IntervalSchedule(timedelta(seconds=1)).next_after(datetime(2026, 1, 1))


class TestDaylightSaving:
    """Spring forward: Berlin 2026-03-29 02:00 -> 03:00, New York 2026-03-08 02:00 -> 03:00.
    Fall back: Berlin 2026-10-25 03:00 -> 02:00, New York 2026-11-01 02:00 -> 01:00."""

    @pytest.mark.parametrize(
        ("zone", "day"), [(BERLIN, utc(2026, 3, 28, 12)), (NEW_YORK, utc(2026, 3, 7, 12))]
    )
    def test_time_in_the_gap_runs_once_at_its_end(self, zone: ZoneInfo, day: datetime) -> None:
        times = Cron("30 2 * * *", tz=zone).next_times(3, day)
        date = day.astimezone(zone).day + 1
        assert [t.astimezone(zone).replace(tzinfo=None) for t in times] == [
            datetime(2026, 3, date, 3, 0),  # 02:30 does not exist: the gap's end
            datetime(2026, 3, date + 1, 2, 30),
            datetime(2026, 3, date + 2, 2, 30),
        ]
        # and with seconds: the same minute, its seconds kept
        fire = Cron("15 30 2 * * *", tz=zone).next_after(day)
        assert fire is not None and fire.astimezone(zone).strftime("%H:%M:%S") == "03:00:15"

    def test_several_times_in_the_gap_run_once(self) -> None:
        times = Cron("0,30 2 * * *", tz=BERLIN).next_times(2, utc(2026, 3, 28, 12))
        assert local(times, BERLIN) == ["03-29 03:00:00+0200", "03-30 02:00:00+0200"]

    @pytest.mark.parametrize(
        ("zone", "expression", "after", "expected"),
        [
            (BERLIN, "30 2 * * *", utc(2026, 10, 24, 12),
             ["10-25 02:30:00+0200", "10-26 02:30:00+0100"]),
            (NEW_YORK, "30 1 * * *", utc(2026, 10, 31, 12),
             ["11-01 01:30:00-0400", "11-02 01:30:00-0500"]),
            # asked from inside the repeated hour, after the first occurrence: not again
            (NEW_YORK, "30 1 * * *", utc(2026, 11, 1, 6, 10),
             ["11-02 01:30:00-0500", "11-03 01:30:00-0500"]),
            (BERLIN, "15 30 2 * * *", utc(2026, 10, 24, 12),
             ["10-25 02:30:15+0200", "10-26 02:30:15+0100"]),
        ],
    )  # fmt: skip
    def test_time_in_the_repeat_runs_once(
        self, zone: ZoneInfo, expression: str, after: datetime, expected: list[str]
    ) -> None:
        assert local(Cron(expression, tz=zone).next_times(2, after), zone) == expected

    @pytest.mark.parametrize(
        ("zone", "after", "expected"),
        [
            (BERLIN, utc(2026, 3, 29, 0, 30),  # 01:30 CET, then 02:xx never happens
             ["03-29 01:30:00+0100", "03-29 03:00:00+0200", "03-29 03:30:00+0200"]),
            (BERLIN, utc(2026, 10, 25, 0, 30),  # 02:30 CEST, then 02:00 and 02:30 again, CET
             ["10-25 02:30:00+0200", "10-25 02:00:00+0100", "10-25 02:30:00+0100"]),
            (NEW_YORK, utc(2026, 11, 1, 5, 30),  # 01:30 EDT, then 01:00 and 01:30 again, EST
             ["11-01 01:30:00-0400", "11-01 01:00:00-0500", "11-01 01:30:00-0500"]),
        ],
    )  # fmt: skip
    def test_half_hourly_follows_the_clock(
        self, zone: ZoneInfo, after: datetime, expected: list[str]
    ) -> None:
        times = Cron("*/30 * * * *", tz=zone).next_times(3, after - timedelta(seconds=1))
        assert local(times, zone) == expected
        assert [b - a for a, b in itertools.pairwise(times)] == [timedelta(minutes=30)] * 2

    @pytest.mark.parametrize(
        ("zone", "start"), [(BERLIN, utc(2026, 10, 24, 22)), (NEW_YORK, utc(2026, 3, 8, 3))]
    )
    def test_hourly_runs_every_real_hour(self, zone: ZoneInfo, start: datetime) -> None:
        times = Cron("@hourly", tz=zone).next_times(8, start)
        assert [b - a for a, b in itertools.pairwise(times)] == [timedelta(hours=1)] * 7
        assert all(t.minute == 0 for t in times)


class TestIntervalSchedule:
    def test_epoch_grid_in_exact_microseconds(self) -> None:
        every = IntervalSchedule(timedelta(seconds=30))
        assert every.next_after(utc(2026, 1, 1)) == utc(2026, 1, 1, 0, 0, 30)
        assert every.next_after(utc(2026, 1, 1, 0, 0, 29, 999999)) == utc(2026, 1, 1, 0, 0, 30)
        assert every.delay(utc(2026, 1, 1)) == 0.0

    def test_anchor_and_bad_input(self) -> None:
        anchored = IntervalSchedule(timedelta(minutes=7), anchor=utc(2026, 1, 1, 0, 1))
        assert anchored.next_after(utc(2026, 1, 1, 0, 8)) == utc(2026, 1, 1, 0, 15)
        with pytest.raises(ValueError, match="positive"):
            IntervalSchedule(timedelta(0))
        with pytest.raises(ValueError, match="aware"):
            anchored.next_after(datetime(2026, 1, 1))
