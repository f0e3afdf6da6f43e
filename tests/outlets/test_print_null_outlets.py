"""PrintOutlet's four formats and NullOutlet; databay_bus.outlets exports every built-in."""

from __future__ import annotations

import io

import pytest

import databay_bus.outlets as outlets
from databay_bus import Record
from databay_bus.link import Update
from databay_bus.outlets import NullOutlet, PrintOutlet

UPDATE = Update(["demo"], 4)


@pytest.mark.parametrize(
    ("only_payload", "skip_update", "expected"),
    [
        (False, False, "demo.4 Record(payload={'a': 1}, metadata={'m': 2})\n"),
        (True, False, "demo.4 {'a': 1}\n"),
        (False, True, "Record(payload={'a': 1}, metadata={'m': 2})\n"),
        (True, True, "{'a': 1}\n"),
    ],
)
def test_print_formats(only_payload: bool, skip_update: bool, expected: str) -> None:
    stream = io.StringIO()
    outlet = PrintOutlet(only_payload, skip_update, file=stream)
    outlet.push([Record({"a": 1}, {"m": 2})], UPDATE)
    assert stream.getvalue() == expected


def test_print_to_stdout_by_default(capsys: pytest.CaptureFixture[str]) -> None:
    PrintOutlet(only_payload=True).push([Record(1), Record(2)], UPDATE)
    PrintOutlet().push([], UPDATE)
    assert capsys.readouterr().out == "demo.4 1\ndemo.4 2\n"


def test_print_push_is_synchronous() -> None:
    assert not PrintOutlet()._push_is_async


def test_null_outlet_accepts_anything() -> None:
    assert NullOutlet().push([Record(object())], UPDATE) is None


def test_every_builtin_exported() -> None:
    names = ("CsvOutlet", "FileOutlet", "MongoOutlet", "NullOutlet", "Outlet", "PrintOutlet")
    for name in names:
        assert name in outlets.__all__
        assert getattr(outlets, name).__name__ == name
    assert "MongoOutlet" in dir(outlets)
