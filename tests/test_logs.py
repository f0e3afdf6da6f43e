"""The databay_bus logger tree, Databay's line format, and no global side effects at import.

What a fresh interpreter prints is checked in subprocesses, so the test process's own logging
configuration (pytest's capture handlers) cannot hide or fake anything.
"""

from __future__ import annotations

import logging
import re
import subprocess
import sys
import textwrap

import pytest
from core_fakes import FailingInlet, ListInlet, ManualPlanner, RecordingOutlet

from databay_bus import Link, logs
from databay_bus.logs import ISO8601Formatter

LINE = re.compile(
    r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}"
    r"\|(?P<level>[DIWEC])\| (?P<message>.*) \((?P<name>[\w.]+)\)$"
)


def run_python(code: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result


class TestDefaultHandler:
    def test_databay_line_format_at_warning(self) -> None:
        result = run_python(
            """
            import logging
            import databay_bus
            logging.getLogger("databay_bus.link").info("not shown")
            logging.getLogger("databay_bus.link").warning("shown %s", 1)
            logging.getLogger("databay_bus.planners.base").error("also shown")
            """
        )
        lines = result.stderr.splitlines()
        assert len(lines) == 2, result.stderr
        first, second = (LINE.match(line) for line in lines)
        assert first is not None and second is not None, lines
        assert first.group("level", "message", "name") == ("W", "shown 1", "databay_bus.link")
        assert second.group("level", "name") == ("E", "databay_bus.planners.base")
        assert result.stdout == ""

    def test_debug_when_the_level_is_raised(self) -> None:
        result = run_python(
            """
            import logging
            from databay_bus import Inlet, Link, Outlet
            class I(Inlet):
                def pull(self, update): return 1
            class O(Outlet):
                def push(self, records, update): pass
            logging.getLogger("databay_bus").setLevel(logging.DEBUG)
            Link(I(), O(), 1, tags="http_to_mongo").transfer()
            """
        )
        messages = [LINE.match(line) for line in result.stderr.splitlines()]
        assert all(messages), result.stderr
        found = [(m.group("level"), m.group("message"), m.group("name")) for m in messages if m]
        assert ("D", "http_to_mongo.0 transfer", "databay_bus.link") in found
        assert ("D", "http_to_mongo.0 done", "databay_bus.link") in found

    def test_silent_once_the_application_configures_logging(self) -> None:
        result = run_python(
            """
            import logging
            import databay_bus
            logging.basicConfig(format="APP %(name)s %(message)s")
            logging.getLogger("databay_bus.link").warning("once")
            """
        )
        assert result.stderr.splitlines() == ["APP databay_bus.link once"]

    def test_configuring_logging_before_import_also_prints_once(self) -> None:
        result = run_python(
            """
            import logging
            logging.basicConfig(format="APP %(message)s")
            import databay_bus
            logging.getLogger("databay_bus").warning("once")
            """
        )
        assert result.stderr.splitlines() == ["APP once"]

    def test_remove_and_install_again(self) -> None:
        result = run_python(
            """
            import logging
            from databay_bus import logs
            logs.remove_default_handler()
            logging.getLogger("databay_bus").warning("hidden")
            logs.install_default_handler()
            logs.install_default_handler()
            logging.getLogger("databay_bus").warning("visible")
            """
        )
        # without any handler Python's own last-resort handler prints the bare message
        hidden, visible = result.stderr.splitlines()
        assert hidden == "hidden"
        assert LINE.match(visible) and visible.endswith("| visible (databay_bus)")

    def test_logger_settings(self) -> None:
        logger = logging.getLogger(logs.LOGGER_NAME)
        assert logs.LOGGER_NAME == "databay_bus"
        handlers = [h for h in logger.handlers if isinstance(h.formatter, ISO8601Formatter)]
        assert len(handlers) == 1


class TestNoSideEffects:
    def test_import_changes_nothing_global(self) -> None:
        result = run_python(
            """
            import asyncio, logging, sys, warnings
            before = (
                list(sys.path),
                list(logging.getLogger().handlers),
                logging.getLogger().level,
                [logging.getLogger(n).level for n in ("apscheduler", "apscheduler.executors",
                                                      "apscheduler.scheduler", "schedule")],
                list(warnings.filters),
                type(asyncio.get_event_loop_policy()),
                asyncio.run,
            )
            import databay_bus, databay_bus.planners, databay_bus.inlets, databay_bus.outlets
            after = (
                list(sys.path),
                list(logging.getLogger().handlers),
                logging.getLogger().level,
                [logging.getLogger(n).level for n in ("apscheduler", "apscheduler.executors",
                                                      "apscheduler.scheduler", "schedule")],
                list(warnings.filters),
                type(asyncio.get_event_loop_policy()),
                asyncio.run,
            )
            assert before == after, (before, after)
            import importlib.util
            for name in ("link", "config", "errors", "record"):
                assert importlib.util.find_spec(name) is None, name
            assert logging.getLogger("databay_bus").propagate is True
            print("clean")
            """
        )
        assert result.stdout.strip() == "clean"


class TestLoggerTree:
    def test_transfer_and_planner_messages(self, databay_logs: pytest.LogCaptureFixture) -> None:
        link = Link(ListInlet([1]), RecordingOutlet(), 1, tags="t")
        with ManualPlanner(link):
            pass
        by_logger = {(r.name, r.getMessage()) for r in databay_logs.records}
        assert ("databay_bus.link", "t.0 transfer") in by_logger
        assert ("databay_bus.link", "t.0 done") in by_logger
        assert ("databay_bus.planners.base", f"Added link: {link}") in by_logger
        names = {r.name for r in databay_logs.records}
        assert all(name.startswith("databay_bus.") for name in names)
        messages = [r.getMessage() for r in databay_logs.records]
        assert any(m.startswith("Starting ManualPlanner") for m in messages)
        assert any(m.startswith("Shutting down ManualPlanner") for m in messages)

    def test_failures_keep_their_traceback(self, databay_logs: pytest.LogCaptureFixture) -> None:
        Link(FailingInlet(), RecordingOutlet(), 1, ignore_exceptions=True).transfer()
        (record,) = [r for r in databay_logs.records if r.levelno >= logging.ERROR]
        assert record.exc_info is not None
        assert record.name == "databay_bus.link"


class TestFormatter:
    def make_record(self, created: float) -> logging.LogRecord:
        record = logging.LogRecord("databay_bus.x", logging.INFO, __file__, 1, "hi", None, None)
        record.created = created
        return record

    def test_pretty_and_iso(self) -> None:
        formatter = ISO8601Formatter()
        record = self.make_record(1_700_000_000.25)
        pretty = formatter.formatTime(record)
        assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.250", pretty)
        formatter.set_pretty(False)
        iso = formatter.formatTime(record)
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.250[+-]\d{4}", iso)

    def test_precision_and_datefmt(self) -> None:
        record = self.make_record(1_700_000_000.123456)
        assert re.search(r"\.123456$", ISO8601Formatter(millis_precision=6).formatTime(record))
        assert re.search(r":\d\d$", ISO8601Formatter(millis_precision=0).formatTime(record))
        assert ISO8601Formatter().formatTime(record, "%Y").isdigit()

    def test_full_line(self) -> None:
        line = ISO8601Formatter().format(self.make_record(1_700_000_000.5))
        match = LINE.match(line)
        assert match is not None
        assert match.group("level", "message", "name") == ("I", "hi", "databay_bus.x")

    def test_databay_import_path(self) -> None:
        from databay_bus.misc.logs import ISO8601Formatter as Legacy

        assert Legacy is ISO8601Formatter


class _StartFails(RecordingOutlet):
    def on_start(self) -> None:
        raise RuntimeError("cannot open")


class _ShutdownFails(RecordingOutlet):
    def on_shutdown(self) -> None:
        raise RuntimeError("cannot close")


class _InletStartFails(ListInlet):
    def on_start(self) -> None:
        raise RuntimeError("cannot connect")


def test_ignored_failures_carry_databay_phrases(caplog: pytest.LogCaptureFixture) -> None:
    """Each log line of an ignored failure keeps our wording and ends with Databay's phrase
    (``Processor exception: "..."`` ...), which users grep for."""

    def bad_processor(records: list[object]) -> list[object]:
        raise ValueError("bad processor")

    def bad_grouper(batches: list[object]) -> list[object]:
        raise ValueError("bad grouper")

    from core_fakes import FailingOutlet

    link = Link(
        [FailingInlet(ValueError("bad inlet")), _InletStartFails([1])],
        [FailingOutlet(ValueError("bad outlet")), _StartFails(), _ShutdownFails()],
        1,
        tags="phrases",
        ignore_exceptions=True,
        processors=bad_processor,
        groupers=bad_grouper,
    )
    from databay_bus.processors import Buffer

    def bad_controller(records: list[object]) -> bool:
        raise ValueError("bad controller")

    with caplog.at_level(logging.ERROR, logger="databay_bus"):
        link.on_start()
        link.transfer()
        link.on_shutdown()
        Buffer(custom_controllers=[bad_controller])([])
    text = caplog.text
    for phrase in (
        'Inlet exception: "bad inlet"',
        'Processor exception: "bad processor"',
        'Grouper exception: "bad grouper"',
        'Outlet exception: "bad outlet"',
        'on_start inlet exception: "cannot connect"',
        'on_start outlet exception: "cannot open"',
        'on_shutdown outlet exception: "cannot close"',
        'Exception while running controller: "bad controller"',
    ):
        assert phrase in text, phrase
    assert "phrases.0: processor" in text  # and ours: the update, the stage, what happened
