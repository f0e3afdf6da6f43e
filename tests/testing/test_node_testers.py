"""InletTester and OutletTester: they pass on the built-ins and fail on broken nodes."""

from __future__ import annotations

import asyncio
import io
import subprocess
import sys
import textwrap
import unittest
from pathlib import Path
from typing import Any

import mongomock
import pytest

from databay_bus import Inlet, Outlet, Record
from databay_bus.inlets import FileInlet, FileInletMode, NullInlet, RandomIntInlet
from databay_bus.link import Update
from databay_bus.misc.inlet_tester import InletTester as DatabayPathInletTester
from databay_bus.outlets import CsvOutlet, FileOutlet, MongoOutlet, NullOutlet, PrintOutlet
from databay_bus.records import MetadataKey
from databay_bus.testing import InletTester, OutletTester


def run(case: type[unittest.TestCase]) -> unittest.TestResult:
    suite = unittest.defaultTestLoader.loadTestsFromTestCase(case)
    result = unittest.TestResult()
    suite.run(result)
    return result


def failed_tests(result: unittest.TestResult) -> set[str]:
    names = set()
    for test, _ in result.failures + result.errors:
        names.add(test.id().rsplit(".", 1)[-1].split(" ")[0])
    return names


# -- the built-ins pass --------------------------------------------------------------------------


@pytest.fixture
def lines(tmp_path: Path) -> Path:
    path = tmp_path / "lines.txt"
    path.write_text("one\ntwo\n", encoding="utf-8")
    return path


def test_builtin_inlets_pass(lines: Path) -> None:
    class Builtins(InletTester):
        def get_inlet(self) -> list[Inlet]:
            return [
                NullInlet(),
                RandomIntInlet(),
                FileInlet(lines),
                FileInlet(lines, FileInletMode.FILE),
            ]

    result = run(Builtins)
    assert result.wasSuccessful(), result.failures + result.errors
    assert result.testsRun == 4


def test_builtin_outlets_pass(tmp_path: Path) -> None:
    class Builtins(OutletTester):
        def get_outlet(self) -> list[Outlet]:
            return [
                CsvOutlet(tmp_path / "out.csv"),
                FileOutlet(tmp_path / "out.txt"),
                PrintOutlet(file=io.StringIO()),
                NullOutlet(),
                MongoOutlet(client_factory=mongomock.MongoClient),
            ]

    result = run(Builtins)
    assert result.wasSuccessful(), result.failures + result.errors
    assert result.testsRun == 6


def test_databay_import_path_still_works() -> None:
    assert DatabayPathInletTester is InletTester


# -- broken inlets fail ------------------------------------------------------------------------


class ReadsMetadata(Inlet):
    def pull(self, update: Update) -> Any:
        return [self.metadata.get("global"), self.metadata.get("global")]


class ReadsKeyTwice(Inlet):
    def pull(self, update: Update) -> Any:
        return [self.metadata["global"], self.metadata["global"]]


class NonePayload(Inlet):
    def pull(self, update: Update) -> Any:
        return [None]


class DropsGlobalMetadata(Inlet):
    def pull(self, update: Update) -> Any:
        return [Record("x", {})]


class LosesLocalMetadata(Inlet):
    def new_record(self, payload: Any, metadata: dict[str, Any] | None = None) -> Record:
        return Record(payload, dict(self.metadata))

    def pull(self, update: Update) -> Any:
        return 1


class AsyncGood(Inlet):
    async def pull(self, update: Update) -> Any:
        await asyncio.sleep(0)
        return [1, 2]


@pytest.mark.parametrize(
    ("inlet", "failing"),
    [
        (ReadsMetadata(), {"test_dont_read_metadata"}),
        (ReadsKeyTwice(), {"test_dont_read_metadata"}),
        (NonePayload(), {"test_pull"}),
        (DropsGlobalMetadata(), {"test_pull"}),
        (LosesLocalMetadata(), {"test_new_record", "test_new_record_override_global"}),
        (AsyncGood(), set()),
    ],
)
def test_inlet_tester_catches(inlet: Inlet, failing: set[str]) -> None:
    class Case(InletTester):
        def get_inlet(self) -> Inlet:
            return inlet

    assert failed_tests(run(Case)) == failing


# -- broken outlets fail ---------------------------------------------------------------------


class NeedsMetadata(Outlet):
    KEY = MetadataKey("NeedsMetadata.KEY")

    def push(self, records: list[Record], update: Update) -> None:
        for record in records:
            _ = record.metadata[self.KEY]  # no default: fails on plain records


class FailsOnEmpty(Outlet):
    def push(self, records: list[Record], update: Update) -> None:
        if not records:
            raise ValueError("nothing to push")


class Mutates(Outlet):
    def push(self, records: list[Record], update: Update) -> None:
        for record in records:
            record.payload["_id"] = 1


class NoRestart(Outlet):
    def __init__(self) -> None:
        super().__init__()
        self.starts = 0

    def on_start(self) -> None:
        self.starts += 1
        if self.starts > 1:
            raise RuntimeError("cannot start twice")

    def push(self, records: list[Record], update: Update) -> None:
        pass


class DuplicateKeys(Outlet):
    A = MetadataKey("Same.KEY")
    B = MetadataKey("Same.KEY")

    def push(self, records: list[Record], update: Update) -> None:
        pass


class AsyncGoodOutlet(Outlet):
    def __init__(self) -> None:
        super().__init__()
        self.pushed: list[Record] = []

    async def push(self, records: list[Record], update: Update) -> None:
        await asyncio.sleep(0)
        self.pushed.extend(records)


class AsyncFailing(Outlet):
    async def push(self, records: list[Record], update: Update) -> None:
        raise RuntimeError("async failure")


@pytest.mark.parametrize(
    ("make", "failing"),
    [
        (NeedsMetadata, {"test_push", "test_push_foreign_metadata", "test_push_keeps_records"}),
        (FailsOnEmpty, {"test_push_no_records"}),
        (Mutates, {"test_push_keeps_records"}),
        (NoRestart, {"test_start_shutdown"}),
        (DuplicateKeys, {"test_metadata_keys"}),
        (AsyncGoodOutlet, set()),
        (
            AsyncFailing,
            {
                "test_push",
                "test_push_no_records",
                "test_push_foreign_metadata",
                "test_push_keeps_records",
            },
        ),
    ],
)
def test_outlet_tester_catches(make: type[Outlet], failing: set[str]) -> None:
    class Case(OutletTester):
        def get_outlet(self) -> Outlet:
            return make()

    assert failed_tests(run(Case)) == failing


# -- pytest collects a subclass ---------------------------------------------------------------


@pytest.mark.timeout(120)
def test_pytest_collects_subclasses(tmp_path: Path) -> None:
    (tmp_path / "test_mine.py").write_text(
        textwrap.dedent(
            """
            from databay_bus.inlets import RandomIntInlet
            from databay_bus.testing import InletTester, OutletTester

            class TestMyInlet(InletTester):
                def get_inlet(self):
                    return RandomIntInlet()

            class TestMyOutlet(OutletTester):
                pass
            """
        ),
        encoding="utf-8",
    )
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_mine.py"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "10 passed" in done.stdout


# -- Databay's style: self.inlet / self.gmetadata, decorators stacked with @patch ---------------


def test_databay_style_tests_see_the_node_as_self_inlet() -> None:
    """A Databay-era tester reads ``self.inlet`` and ``self.gmetadata``; ``for_each_inlet``
    sets ``self.inlet`` per inlet and passes on arguments given by an outer ``@patch``."""
    from unittest.mock import patch

    from databay_bus.misc.inlet_tester import for_each_inlet

    seen: list[tuple[str, Any]] = []

    class DatabayStyle(DatabayPathInletTester):
        def get_inlet(self) -> list[Inlet]:
            return [NullInlet(name="first"), NullInlet(name="second")]

        def test_setup_attributes(self) -> None:
            assert self.inlet is self.inlets[0]
            assert self.gmetadata == {"global": "global"}
            assert self.inlet.metadata["global"] == "global"

        @for_each_inlet
        def test_each(self) -> None:
            seen.append(("each", self.inlet.name))

        @patch("databay_bus.testing.inlet_tester.Update")
        @for_each_inlet
        def test_each_under_patch(self, update: Any) -> None:
            seen.append(("patched", (self.inlet.name, type(update).__name__)))

        @for_each_inlet
        @patch("databay_bus.testing.inlet_tester.Update")
        def test_patch_inside(self, update: Any) -> None:
            seen.append(("inside", (self.inlet.name, type(update).__name__)))

    result = run(DatabayStyle)
    assert result.wasSuccessful(), result.failures + result.errors
    assert sorted(seen) == sorted(
        [
            ("each", "first"),
            ("each", "second"),
            ("patched", ("first", "MagicMock")),
            ("patched", ("second", "MagicMock")),
            ("inside", ("first", "MagicMock")),
            ("inside", ("second", "MagicMock")),
        ]
    )


def test_our_style_still_gets_the_node_as_argument() -> None:
    from databay_bus.testing import for_each_outlet

    seen: list[str] = []

    class OurStyle(OutletTester):
        def get_outlet(self) -> list[Outlet]:
            return [NullOutlet(name="a"), NullOutlet(name="b")]

        @for_each_outlet
        def test_named(self, outlet: Outlet) -> None:
            assert outlet is self.outlet
            seen.append(outlet.name)

    result = run(OurStyle)
    assert result.wasSuccessful(), result.failures + result.errors
    assert seen == ["a", "b"]
