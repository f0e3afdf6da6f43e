"""``databay-bus schedule``: next fire times of an expression, and its errors (in process)."""

from __future__ import annotations

import pytest

from databay_bus.cli import main


def test_prints_next_fire_times_in_the_zone_and_utc(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        ["schedule", "30 2 * * *", "--tz", "Europe/Berlin", "--from", "2026-03-28T12:00",
         "--next", "2"]
    )  # fmt: skip
    out = capsys.readouterr().out.splitlines()
    assert code == 0
    assert out == [
        "cron: 30 2 * * * (Europe/Berlin)",
        "At 02:30 every day",
        "next 2 after 2026-03-28 12:00:00+01:00:",
        "  Sun 2026-03-29 03:00:00+02:00  (2026-03-29 01:00:00 UTC)",  # the gap's end
        "  Mon 2026-03-30 02:30:00+02:00  (2026-03-30 00:30:00 UTC)",
    ]


def test_words_may_be_given_unquoted_and_utc_by_default(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["schedule", "cron:", "@hourly", "--from", "2026-01-01T00:30Z", "--next", "1"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "cron: @hourly (UTC)"
    assert out[-1] == "  Thu 2026-01-01 01:00:00+00:00"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["61 * * * *"], "cron expression '61 * * * *': bad minute field '61'"),
        (["0 0 30 2 *"], "never fires"),
        (["* * * * *", "--tz", "Mars/Olympus"], "unknown time zone 'Mars/Olympus'"),
        (["* * * * *", "--from", "soon"], "--from must be an ISO 8601 time"),
    ],
)
def test_bad_input_is_a_usage_error(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["schedule", *args]) == 2
    assert message in capsys.readouterr().err


def test_a_rare_schedule_is_found_years_ahead(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schedule", "0 0 29 2 *", "--from", "2026-01-01", "--next", "1"]) == 0
    assert "2028-02-29 00:00:00+00:00" in capsys.readouterr().out


def test_fire_times_are_printed_as_they_are_found(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A large --next starts printing at once (and stops at a closed pipe), not after N look-ups."""
    from databay_bus.schedules import Cron

    calls = []
    lookup = Cron.next_after

    def counting(self: Cron, moment: object, **kwargs: object) -> object:
        calls.append(moment)
        return lookup(self, moment, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Cron, "next_after", counting)
    printed_after: list[int] = []
    real_print = print

    def spy(*args: object, **kwargs: object) -> None:
        if args and str(args[0]).startswith("  "):
            printed_after.append(len(calls))
        real_print(*args, **kwargs)  # type: ignore[call-overload]

    monkeypatch.setattr("builtins.print", spy)
    assert main(["schedule", "* * * * *", "--from", "2026-01-01T00:00Z", "--next", "50"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[2] == "next 50 after 2026-01-01 00:00:00+00:00:"
    assert len(lines) == 53 and lines[-1] == "  Thu 2026-01-01 00:50:00+00:00"
    assert printed_after[0] <= 3  # the construction's own look-up, then the first fire time
