"""OutletTester: contract tests for your own outlets (new in databay_bus).

Subclass it and override :meth:`OutletTester.get_outlet` (and, if your outlet needs a
particular payload shape, :meth:`OutletTester.get_records`)::

    from databay_bus.testing import OutletTester

    class TestMyOutlet(OutletTester):
        def get_outlet(self):
            return MyOutlet(...)

Sync and ``async def`` pushes are both driven; pytest and unittest both collect it.
"""

from __future__ import annotations

from collections.abc import Callable

from databay_bus.outlets.base import Outlet
from databay_bus.outlets.null_outlet import NullOutlet
from databay_bus.records import MetadataKey, Record
from databay_bus.records.copying import copies
from databay_bus.testing._support import ContractTestCase, for_each, resolve
from databay_bus.update import Update

__all__ = ["OutletTester", "for_each_outlet"]

#: Runs a test once per outlet returned by ``get_outlet`` (each in its own subtest).
for_each_outlet: Callable[[Callable[..., None]], Callable[..., None]] = for_each(
    "outlets", "outlet"
)


class OutletTester(ContractTestCase):
    """Checks that outlets start, push (with and without records) and shut down correctly."""

    __test__ = False

    outlets: list[Outlet]
    outlet: Outlet

    def get_outlet(self) -> Outlet | list[Outlet]:
        """Return the outlet (or outlets) to test. Override this."""
        return NullOutlet()

    def get_records(self) -> list[Record]:
        """Records to push: dict payloads, no metadata. Override for other payload shapes."""
        return [
            Record({"name": "first", "value": 1}),
            Record({"name": "second", "value": 2}),
        ]

    def get_update(self) -> Update:
        """The update passed to ``push``."""
        return Update(["OutletTester"], 0)

    def setUp(self) -> None:
        outlet = self.get_outlet()
        self.outlets = list(outlet) if isinstance(outlet, list | tuple) else [outlet]
        self.outlet = self.outlets[0]

    @for_each_outlet
    def test_push(self, outlet: Outlet) -> None:
        """A started outlet accepts records that carry none of its metadata keys."""
        self._push(outlet, self.get_records())

    @for_each_outlet
    def test_push_no_records(self, outlet: Outlet) -> None:
        """Pushing an empty batch works (links push ``[]`` when nothing was pulled)."""
        self._push(outlet, [])

    @for_each_outlet
    def test_push_foreign_metadata(self, outlet: Outlet) -> None:
        """Metadata meant for other outlets is ignored."""
        records = self.get_records()
        for record in records:
            record.metadata.update({"OtherOutlet.KEY": "other", "__inlet__": "SomeInlet"})
        self._push(outlet, records)

    @for_each_outlet
    def test_push_keeps_records(self, outlet: Outlet) -> None:
        """push does not modify the records it is given (another outlet may share them)."""
        records = self.get_records()
        before = copies(records, 1)[0]
        self._push(outlet, records)
        self.assertEqual(records, before, f"{outlet!r}.push modified its records")

    @for_each_outlet
    def test_start_shutdown(self, outlet: Outlet) -> None:
        """on_start/on_shutdown toggle ``active``, and the outlet can be started again."""
        for _ in range(2):
            holder = object()
            self.assertTrue(outlet.try_start(holder))
            self.assertTrue(outlet.active)
            self.assertTrue(outlet.try_shutdown(holder))
            self.assertFalse(outlet.active)

    @for_each_outlet
    def test_metadata_keys(self, outlet: Outlet) -> None:
        """Declared MetadataKey attributes are non-empty and no two share a value."""
        declared: dict[str, MetadataKey] = {}
        for klass in reversed(type(outlet).__mro__):
            for attribute, value in vars(klass).items():
                if isinstance(value, MetadataKey):
                    declared[attribute] = value
        for attribute, key in declared.items():
            self.assertTrue(key, f"{type(outlet).__name__}.{attribute} is an empty MetadataKey")
        values = list(declared.values())
        self.assertEqual(len(values), len(set(values)), f"duplicate MetadataKey values: {values}")

    def _push(self, outlet: Outlet, records: list[Record]) -> None:
        holder = object()
        outlet.try_start(holder)
        try:
            resolve(outlet.push(outlet._process(records), self.get_update()))
        finally:
            outlet.try_shutdown(holder)
