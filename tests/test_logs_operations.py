"""Logs for operations: ``logs.enable()`` in one call, and JSON lines with link/transfer fields."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from core_fakes import ListInlet, RecordingOutlet

from databay_bus import Link, Update, logs
from databay_bus.logs import JsonFormatter

ROOT = Path(__file__).resolve().parents[1]


def record(msg: str, *args: object, **extra: object) -> logging.LogRecord:
    made = logging.LogRecord("databay_bus.link", logging.INFO, __file__, 1, msg, args, None)
    for key, value in extra.items():
        setattr(made, key, value)
    return made


class TestJsonFormatter:
    def test_fields_from_an_update(self) -> None:
        line = JsonFormatter().format(record("%s: outlet %r failed", Update(["a", "b"], 7), 3))
        data = json.loads(line)
        assert data["message"] == "a.b.7: outlet 3 failed"
        assert (data["link"], data["transfer"]) == ("a.b", 7)
        assert (data["level"], data["logger"]) == ("INFO", "databay_bus.link")
        assert data["time"].endswith("Z")

    def test_fields_from_nodes_and_links(self) -> None:
        outlet, inlet = RecordingOutlet(name="sink"), ListInlet([1], name="source")
        link = Link(inlet, outlet, 1, tags="prices")
        data = json.loads(JsonFormatter().format(record("%s %r %r", link, inlet, outlet)))
        assert (data["link"], data["inlet"], data["outlet"]) == ("prices", "source", "sink")
        assert "transfer" not in data  # a Link is not one transfer

    def test_extra_fields_win_and_tracebacks_are_kept(self) -> None:
        try:
            raise ValueError("bad")
        except ValueError:
            made = record("%s failed", Update(["a"], 1), link="override", records=3)
            made.exc_info = sys.exc_info()
        data = json.loads(JsonFormatter().format(made))
        assert data["link"] == "override"
        assert data["records"] == 3
        assert "ValueError: bad" in data["exc"]


class TestEnable:
    def test_rejects_unknown_level_and_format(self) -> None:
        with pytest.raises(ValueError, match="log level 'loud'"):
            logs.enable("loud")
        with pytest.raises(ValueError, match="format must be one of"):
            logs.enable("INFO", format="xml")

    def test_one_call_gives_json_progress_in_a_fresh_script(self) -> None:
        code = textwrap.dedent(
            """
            from databay_bus import Inlet, Link, Outlet, logs

            class Numbers(Inlet):
                def pull(self, update):
                    return [1, 2]

            class Sink(Outlet):
                def push(self, records, update):
                    pass

            logs.enable("DEBUG", format="json")
            Link(Numbers(), Sink(), 1, tags="nums").transfer()
            """
        )
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        result = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env
        )
        assert result.returncode == 0, result.stderr
        lines = [json.loads(line) for line in result.stderr.splitlines()]
        assert [line["message"] for line in lines] == ["nums.0 transfer", "nums.0 done"]
        assert all(line["link"] == "nums" and line["transfer"] == 0 for line in lines)
