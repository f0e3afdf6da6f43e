"""Cron intervals in pipeline files: ``interval = "cron: ..."`` with ``tz``, and their errors."""

from __future__ import annotations

from datetime import timedelta

import pytest

from databay_bus import Cron
from databay_bus.config import loads
from databay_bus.errors import ConfigError

LINK = """
[[links]]
tags = ["prices"]
interval = {interval}
{tz}
inlets = ["pipeline_nodes.CountingInlet"]
outlets = [{{type = "pipeline_nodes.ListOutlet", name = "x"}}]
"""


def text(interval: str, tz: str | None = None) -> str:
    return LINK.format(interval=interval, tz="" if tz is None else f"tz = {tz}")


def problems_of(source: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        loads(source, source="test.toml", env={})
    return [f"{path}: {reason}" for path, reason in caught.value.problems]


def test_cron_interval_with_tz_builds_a_cron_link() -> None:
    pipeline = loads(text('"cron: 0 9 * * mon-fri"', '"Europe/Berlin"'), source="p.toml", env={})
    try:
        (link,) = pipeline.links
        assert link.interval == Cron("0 9 * * mon-fri", tz="Europe/Berlin")
        shown = pipeline.describe()
        assert "link 'prices' on cron: 0 9 * * mon-fri (Europe/Berlin)" in shown
        next_line = next(line for line in shown.splitlines() if "next:" in line)
        assert next_line.count("09:00:00+0") == 3  # three fire times, Berlin wall clock
    finally:
        pipeline.close()


def test_durations_keep_meaning_intervals_and_cron_defaults_to_utc() -> None:
    pipeline = loads(text('"90s"'), source="p.toml", env={})
    assert pipeline.links[0].interval == timedelta(seconds=90)
    pipeline.close()
    pipeline = loads(text('"CRON:@hourly"'), source="p.toml", env={})
    assert pipeline.links[0].interval == Cron("@hourly")
    pipeline.close()


@pytest.mark.parametrize(
    ("interval", "tz", "problem"),
    [
        ('"cron: 61 * * * *"', None,
         "links[0].interval: link 'prices': cron expression '61 * * * *': "
         "bad minute field '61' (allowed: 0-59)"),
        ('"cron: * * *"', None, "links[0].interval: link 'prices': cron expression '* * *': "
         "expected 5 fields"),
        ('"cron: 0 9 * * funday"', None, "bad day-of-week field 'funday'"),
        ('"cron: 0 0 30 2 *"', None,
         "links[0].interval: link 'prices': cron expression '0 0 30 2 *' never fires"),
        ('"cron: 0 9 * * *"', '"Europe/Berln"',
         "links[0].tz: unknown time zone 'Europe/Berln'"),
        ('"cron: 0 9 * * *"', "5", "links[0].tz: must be a time zone name"),
        ('"5s"', '"Europe/Berlin"', "links[0].tz: only applies to a cron interval"),
        ('"cron 0 9 * * *"', None,
         "links[0].interval: must be a number of seconds or a duration like '500ms', '5s', "
         "'2m', '1h', '1d' or '1h30m', or a cron schedule 'cron: EXPR', got 'cron 0 9 * * *'"),
    ],
)  # fmt: skip
def test_bad_cron_is_reported_with_its_key_path(
    interval: str, tz: str | None, problem: str
) -> None:
    problems = problems_of(text(interval, tz))
    assert len(problems) == 1 and problem in problems[0], problems
