"""InletTester: contract tests for your own inlets (Databay's checks, usable when installed).

Subclass it in a test module and override :meth:`InletTester.get_inlet`::

    from databay_bus.testing import InletTester

    class TestMyInlet(InletTester):
        def get_inlet(self):
            return MyInlet(...)

pytest and unittest both collect it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from databay_bus.inlets.base import Inlet, wrap_pulled
from databay_bus.inlets.null_inlet import NullInlet
from databay_bus.records import Record
from databay_bus.testing._support import ContractTestCase, for_each, resolve
from databay_bus.update import Update

__all__ = ["InletTester", "for_each_inlet"]

#: Runs a test once per inlet returned by ``get_inlet`` (each in its own subtest), with the
#: inlet set as ``self.inlet`` and, if the test takes it, passed as its argument.
for_each_inlet: Callable[[Callable[..., None]], Callable[..., None]] = for_each("inlets", "inlet")

_GLOBAL = {"global": "global"}


class _WatchedMetadata(dict[str, Any]):
    """A metadata dict that counts how ``pull`` reads it."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.get_calls = 0
        self.item_reads: dict[str, int] = {}

    def get(self, key: str, default: Any = None) -> Any:
        self.get_calls += 1
        return super().get(key, default)

    def __getitem__(self, key: str) -> Any:
        self.item_reads[key] = self.item_reads.get(key, 0) + 1
        return super().__getitem__(key)


class InletTester(ContractTestCase):
    """Checks that inlets make records correctly and pull without reading metadata.

    Each inlet gets the global metadata ``{'global': 'global'}`` added for the tests. As in
    Databay, ``self.inlets`` holds the inlets, ``self.inlet`` the one under test (the first
    until a test decorated with :func:`for_each_inlet` moves it) and ``self.gmetadata`` the
    global metadata.
    """

    __test__ = False

    inlets: list[Inlet]
    inlet: Inlet
    gmetadata: dict[str, Any]

    def get_inlet(self) -> Inlet | list[Inlet]:
        """Return the inlet (or inlets) to test. Override this."""
        return NullInlet()

    def get_update(self) -> Update:
        """The update passed to ``pull``."""
        return Update(["InletTester"], 0)

    def setUp(self) -> None:
        inlet = self.get_inlet()
        self.inlets = list(inlet) if isinstance(inlet, list | tuple) else [inlet]
        self.inlet = self.inlets[0]
        self.gmetadata = dict(_GLOBAL)
        for each in self.inlets:
            each.metadata.update(self.gmetadata)

    @for_each_inlet
    def test_new_record(self, inlet: Inlet) -> None:
        """new_record keeps the payload and carries global and local metadata."""
        payload = {"test": 123}
        record = inlet.new_record(payload, {"local": "local"})
        self.assertIsInstance(record, Record)
        self.assertEqual(record.payload, payload)
        self.assertEqual(record.metadata.get("global"), "global")
        self.assertEqual(record.metadata.get("local"), "local")

    @for_each_inlet
    def test_new_record_override_global(self, inlet: Inlet) -> None:
        """Local metadata overrides global metadata of the same key."""
        record = inlet.new_record({"test": 123}, {"global": "overridden"})
        self.assertEqual(record.metadata.get("global"), "overridden")

    @for_each_inlet
    def test_dont_read_metadata(self, inlet: Inlet) -> None:
        """pull never calls metadata.get and reads each metadata key at most once.

        Inlets should take their configuration as constructor arguments; metadata is for
        the outlets.
        """
        watched = _WatchedMetadata(inlet.metadata)
        original = inlet._metadata
        inlet._metadata = watched
        try:
            self._pull(inlet)
        finally:
            inlet._metadata = original
        self.assertEqual(watched.get_calls, 0, f"{inlet!r}.pull called metadata.get()")
        for key, reads in watched.item_reads.items():
            self.assertLessEqual(reads, 1, f"{inlet!r}.pull read metadata[{key!r}] {reads} times")

    @for_each_inlet
    def test_pull(self, inlet: Inlet) -> None:
        """pull (between on_start and on_shutdown) gives records with payloads and metadata."""
        records = self._pull(inlet)
        self.assertIsInstance(records, list)
        for record in records:
            self.assertIsInstance(record, Record)
            self.assertIsNotNone(record.payload, f"{inlet!r} pulled a record with payload None")
            self.assertEqual(record.metadata.get("global"), "global")

    def _pull(self, inlet: Inlet) -> list[Record]:
        holder = object()
        inlet.try_start(holder)
        try:
            return wrap_pulled(inlet, resolve(inlet.pull(self.get_update())))
        finally:
            inlet.try_shutdown(holder)
