"""Inlet and Outlet base classes: pull-result wrapping, new_record, lifecycle, validation."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from core_fakes import RecordingOutlet

from databay_bus import Inlet, Link, Outlet, Record, Update
from databay_bus.errors import ConfigurationError, DatabayBusError
from databay_bus.inlets.base import wrap_pulled
from databay_bus.outlets.base import MetadataKey
from databay_bus.records.copying import copies


class PlainInlet(Inlet):
    def __init__(self, value: Any = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.value = value

    def pull(self, update: Update) -> Any:
        return self.value


class PlainOutlet(Outlet):
    def push(self, records: list[Record], update: Update) -> None:
        pass


def pulled(value: Any, metadata: dict[str, Any] | None = None) -> list[Record]:
    """What one transfer of a link with a single inlet returning ``value`` pushes."""
    outlet = RecordingOutlet()
    Link(PlainInlet(value, metadata=metadata), outlet, 1).transfer()
    (batch,) = outlet.batches
    return batch


class TestPullWrapping:
    def test_list_gives_one_record_per_element(self) -> None:
        assert [r.payload for r in pulled([1, "a", {"k": 2}])] == [1, "a", {"k": 2}]

    @pytest.mark.parametrize("value", [5, "text", (1, 2), {"a": 1}, {1, 2}, 0.5, False])
    def test_anything_else_is_one_record(self, value: Any) -> None:
        (record,) = pulled(value)
        assert record.payload == value

    def test_none_is_one_record_with_payload_none(self) -> None:
        (record,) = pulled(None)
        assert record.payload is None

    def test_empty_list_gives_no_records(self) -> None:
        assert pulled([]) == []

    def test_nested_list_is_one_record_holding_the_inner_list(self) -> None:
        (record,) = pulled([[1, 2]])
        assert record.payload == [1, 2]

    def test_records_pass_through_untouched(self) -> None:
        record = Record("r", {"own": True})
        (result,) = pulled(record)
        assert result.metadata == {"own": True}
        (result,) = pulled([record])
        assert result.metadata == {"own": True}

    def test_mixed_list_is_wrapped_element_by_element(self) -> None:
        # Databay left raw values unwrapped when the first element was a Record.
        record = Record("r")
        result = pulled([record, 2, Record("s"), 3])
        assert all(isinstance(item, Record) for item in result)
        assert [r.payload for r in result] == ["r", 2, "s", 3]
        assert result[1].metadata == {"__inlet__": "PlainInlet()"}

    def test_the_returned_list_is_not_mutated(self) -> None:
        returned = [1, Record(2), 3]
        snapshot = list(returned)
        inlet = PlainInlet()
        records = wrap_pulled(inlet, returned)
        assert returned == snapshot
        assert records is not returned
        assert returned[0] == 1 and returned[2] == 3

    def test_same_list_can_be_returned_every_pull(self) -> None:
        inlet = PlainInlet([1, 2])
        outlet = RecordingOutlet()
        link = Link(inlet, outlet, 1)
        link.transfer()
        link.transfer()
        assert outlet.payloads == [[1, 2], [1, 2]]
        assert inlet.value == [1, 2]

    def test_async_pull_is_wrapped_the_same_way(self) -> None:
        class AsyncInlet(Inlet):
            async def pull(self, update: Update) -> Any:
                return [1, Record(2), [3]]

        outlet = RecordingOutlet()
        Link(AsyncInlet(), outlet, 1).transfer()
        assert outlet.payloads == [[1, 2, [3]]]


class TestNewRecord:
    def test_global_then_local_then_inlet_key(self) -> None:
        inlet = PlainInlet(metadata={"g": 1, "shared": "global"})
        record = inlet.new_record("p", {"shared": "local", "l": 2, "__inlet__": "user"})
        assert record.payload == "p"
        assert record.metadata == {
            "g": 1,
            "shared": "local",
            "l": 2,
            "__inlet__": "PlainInlet(metadata={'g': 1, 'shared': 'global'})",
        }
        assert inlet.metadata == {"g": 1, "shared": "global"}

    def test_inlet_key_is_str_of_the_inlet(self) -> None:
        class Named(PlainInlet):
            def __str__(self) -> str:
                return "custom"

        assert Named().new_record(1).metadata == {"__inlet__": "custom"}

    def test_records_do_not_share_metadata_dicts(self) -> None:
        inlet = PlainInlet(metadata={"g": 1})
        first, second = inlet.new_record(1), inlet.new_record(2)
        first.metadata["x"] = 1
        assert "x" not in second.metadata
        assert "x" not in inlet.metadata

    def test_records_of_one_pull_do_not_share_metadata(self) -> None:
        first, second, third = pulled([1, 2, 3], metadata={"g": 1})
        first.metadata["x"] = 1
        second.metadata = {"replaced": True}
        assert first.metadata == {"g": 1, "__inlet__": "PlainInlet(metadata={'g': 1})", "x": 1}
        assert second.metadata == {"replaced": True}
        assert third.metadata == {"g": 1, "__inlet__": "PlainInlet(metadata={'g': 1})"}
        assert first.metadata is first.metadata  # the copy is made once, then kept

    def test_copies_of_a_pull_do_not_share_metadata(self) -> None:
        records = pulled([1, 2], metadata={"g": 1})
        (copied,) = copies(records, 1)
        assert copied == records  # equality, repr and pickling see the plain metadata
        assert repr(copied[1]) == repr(records[1])
        copied[0].metadata["x"] = 1
        assert "x" not in copied[1].metadata
        assert "x" not in records[0].metadata
        assert type(copied[1].metadata) is dict

    def test_first_reads_from_many_threads_get_one_dict(self) -> None:
        records = pulled(list(range(200)))
        barrier = threading.Barrier(4)
        seen: list[list[int]] = []

        def read(key: str) -> None:
            barrier.wait()
            seen.append([id(record.metadata) for record in records])
            for record in records:
                record.metadata[key] = True

        threads = [threading.Thread(target=read, args=(f"t{i}",)) for i in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert all(ids == seen[0] for ids in seen)
        assert all({"t0", "t1", "t2", "t3"} <= record.metadata.keys() for record in records)

    def test_pulled_values_get_global_metadata(self) -> None:
        (record,) = pulled(7, metadata={"g": "v"})
        assert record.metadata["g"] == "v"
        assert "__inlet__" in record.metadata


class TestNodeBasics:
    def test_metadata_defaults_to_empty_dict(self) -> None:
        assert PlainInlet().metadata == {}

    def test_names_default_to_class_name(self) -> None:
        assert PlainInlet().name == "PlainInlet"
        assert PlainOutlet().name == "PlainOutlet"
        assert PlainInlet(name="in").name == "in"
        assert PlainOutlet(name="out").name == "out"

    def test_reprs(self) -> None:
        assert repr(PlainInlet()) == "PlainInlet()"
        assert repr(PlainInlet(metadata={"a": 1})) == "PlainInlet(metadata={'a': 1})"
        assert repr(PlainInlet(name="n")) == "PlainInlet(name='n')"
        assert repr(PlainOutlet()) == "PlainOutlet()"
        assert repr(PlainOutlet(name="o")) == "PlainOutlet(name='o')"

    def test_abstract_methods_must_be_implemented(self) -> None:
        with pytest.raises(TypeError):
            Inlet()  # type: ignore[abstract]
        with pytest.raises(TypeError):
            Outlet()  # type: ignore[abstract]

    def test_outlet_processors_accept_one_callable_or_a_list(self) -> None:
        def step(records: list[Record]) -> list[Record]:
            return records

        assert PlainOutlet(processors=step).processors == [step]
        assert PlainOutlet(processors=[step, step]).processors == [step, step]
        assert PlainOutlet().processors == []

    def test_non_callable_outlet_processor_is_rejected(self) -> None:
        with pytest.raises(ConfigurationError, match=r"processors\[1\].*'nope' \(str\)"):
            PlainOutlet(processors=[lambda r: r, "nope"])

    def test_outlet_processors_run_in_order_before_push(self) -> None:
        outlet = RecordingOutlet(
            processors=[
                lambda rs: [r for r in rs if r.payload > 1],
                lambda rs: [Record(r.payload * 10) for r in rs],
            ]
        )
        Link(PlainInlet([1, 2, 3]), outlet, 1).transfer()
        assert outlet.payloads == [[20, 30]]

    def test_metadata_key_is_exported_next_to_outlet(self) -> None:
        class CsvLike(PlainOutlet):
            CSV_FILE: MetadataKey = MetadataKey("CsvLike.CSV_FILE")

        assert CsvLike.CSV_FILE == "CsvLike.CSV_FILE"


class TestLifecycle:
    def make(self) -> tuple[PlainInlet, list[str]]:
        calls: list[str] = []

        class Tracked(PlainInlet):
            def on_start(self) -> None:
                calls.append("start")

            def on_shutdown(self) -> None:
                calls.append("shutdown")

        return Tracked(), calls

    def test_inactive_until_started(self) -> None:
        inlet, calls = self.make()
        assert inlet.active is False
        assert inlet.try_start() is True
        assert inlet.active is True
        assert inlet.try_start() is False
        assert calls == ["start"]
        assert inlet.try_shutdown() is True
        assert inlet.active is False
        assert inlet.try_shutdown() is False
        assert calls == ["start", "shutdown"]

    def test_reference_counted_by_holder(self) -> None:
        inlet, calls = self.make()
        first, second = object(), object()
        assert inlet.try_start(first) is True
        assert inlet.try_start(second) is False
        assert inlet.try_shutdown(first) is False
        assert inlet.active is True
        assert inlet.try_shutdown(second) is True
        assert calls == ["start", "shutdown"]
        assert inlet.try_start(first) is True
        assert calls == ["start", "shutdown", "start"]

    def test_equal_holders_are_still_counted_apart(self) -> None:
        # Holders with their own __eq__ (here equal, and unhashable) are kept by identity.
        inlet, calls = self.make()
        first, second = [1], [1]
        assert inlet.try_start(first) is True
        assert inlet.try_start(second) is False
        assert inlet.try_start(first) is False
        assert inlet.try_shutdown(first) is False
        assert inlet.try_shutdown(first) is False
        assert inlet.try_shutdown(second) is True
        assert calls == ["start", "shutdown"]

    def test_bulk_release_of_mixed_holders(self) -> None:
        inlet, calls = self.make()
        holders: list[Any] = [object(), [1], [1], object()]
        for holder in holders:
            inlet.try_start(holder)
        assert inlet._release(holders[:3]) is False
        assert inlet.active and calls == ["start"]
        assert inlet._release([holders[3], holders[0]]) is True
        assert calls == ["start", "shutdown"]
        assert inlet._release(holders) is False  # none of them holds it any more

    def test_failing_on_start_leaves_the_node_inactive(self) -> None:
        class Broken(PlainOutlet):
            def on_start(self) -> None:
                raise OSError("no connection")

        outlet = Broken()
        with pytest.raises(OSError, match="no connection"):
            outlet.try_start()
        assert outlet.active is False

    def test_failing_on_shutdown_still_deactivates(self) -> None:
        class Broken(PlainOutlet):
            def on_shutdown(self) -> None:
                raise OSError("close failed")

        outlet = Broken()
        outlet.try_start()
        with pytest.raises(OSError):
            outlet.try_shutdown()
        assert outlet.active is False

    def test_concurrent_starts_run_on_start_once(self) -> None:
        entered = threading.Event()
        release = threading.Event()
        starts: list[int] = []

        class Slow(PlainInlet):
            def on_start(self) -> None:
                entered.set()
                release.wait(10)
                starts.append(1)

        inlet = Slow()
        holders = [object() for _ in range(5)]
        threads = [threading.Thread(target=inlet.try_start, args=(h,)) for h in holders]
        threads[0].start()
        assert entered.wait(10)
        for thread in threads[1:]:
            thread.start()
        release.set()
        for thread in threads:
            thread.join(10)
        assert starts == [1]
        assert inlet.active

    def test_node_without_super_init_is_rejected_by_link(self) -> None:
        class Lazy(PlainInlet):
            def __init__(self) -> None:
                pass

        with pytest.raises(DatabayBusError, match="super"):
            Link(Lazy(), PlainOutlet(), 1)
