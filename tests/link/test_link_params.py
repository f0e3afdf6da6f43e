"""Link construction: parameters, defaults, validation, deprecated names, adding/removing nodes."""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Any

import pytest
from core_fakes import ListInlet, RecordingOutlet

from databay_bus import Link, Record
from databay_bus.errors import (
    ConfigurationError,
    DatabayBusError,
    InvalidNodeError,
    MissingNodeError,
)
from databay_bus.queue import MemoryQueue


def make_link(**kwargs: Any) -> Link:
    kwargs.setdefault("interval", 1)
    inlets = kwargs.pop("inlets", ListInlet())
    return Link(inlets, kwargs.pop("outlets", RecordingOutlet()), **kwargs)


class TestDefaults:
    def test_databay_defaults(self) -> None:
        inlet, outlet = ListInlet(), RecordingOutlet()
        link = Link(inlet, outlet, timedelta(seconds=2))
        assert link.inlets == [inlet]
        assert link.outlets == [outlet]
        assert link.interval == timedelta(seconds=2)
        assert link.tags == []
        assert link.copy_records is True
        assert link.ignore_exceptions is False
        assert link.inlet_concurrency == 9999
        assert link.immediate_transfer is True
        assert link.processors == []
        assert link.groupers == []
        assert link.job is None
        assert link.queue is None
        assert link.transfer_number == -1

    def test_lists_of_nodes(self) -> None:
        inlets = [ListInlet(), ListInlet()]
        outlets = [RecordingOutlet(), RecordingOutlet()]
        link = Link(inlets, outlets, 1)
        assert link.inlets == inlets
        assert link.outlets == outlets

    def test_node_lists_are_copies(self) -> None:
        link = make_link()
        link.inlets.append(ListInlet())
        link.outlets.clear()
        assert len(link.inlets) == 1
        assert len(link.outlets) == 1

    def test_empty_links_are_allowed(self) -> None:
        link = Link([], [], 1)
        link.transfer()
        assert link.transfer_number == 0

    def test_repr_matches_databay(self) -> None:
        link = Link(ListInlet(name="in"), RecordingOutlet(name="out"), 2, tags=["a", "b"])
        assert repr(link) == (
            "Link(tags:['a', 'b'], interval:0:00:02, "
            "inlets:[ListInlet(name='in')], outlets:[RecordingOutlet(name='out')])"
        )

    def test_job_is_set_by_planners(self) -> None:
        link = make_link()
        link.set_job("job")
        assert link.job == "job"
        link.set_job(None)
        assert link.job is None


class TestInterval:
    @pytest.mark.parametrize(
        ("value", "expected"),
        [
            (2, timedelta(seconds=2)),
            (0.25, timedelta(milliseconds=250)),
            (timedelta(minutes=1), timedelta(minutes=1)),
        ],
    )
    def test_coerced_to_timedelta(self, value: Any, expected: timedelta) -> None:
        assert make_link(interval=value).interval == expected

    @pytest.mark.parametrize(
        "value",
        [0, -1, -0.5, math.nan, math.inf, -math.inf, timedelta(0), timedelta(seconds=-1)],
    )
    def test_non_positive_or_non_finite_rejected(self, value: Any) -> None:
        with pytest.raises(ConfigurationError, match="interval") as caught:
            make_link(interval=value)
        assert isinstance(caught.value, ValueError)
        assert repr(value) in str(caught.value) or str(value) in str(caught.value)

    @pytest.mark.parametrize("value", ["5", True, False, None, [1]])
    def test_wrong_type_rejected(self, value: Any) -> None:
        with pytest.raises(ConfigurationError, match="interval") as caught:
            make_link(interval=value)
        assert f"({type(value).__name__})" in str(caught.value)
        assert isinstance(caught.value, TypeError)
        assert "a timedelta, a number of seconds or a Cron" in str(caught.value)

    def test_a_cron_string_points_at_cron(self) -> None:
        with pytest.raises(ConfigurationError, match=r"Cron\('0 9 \* \* \*'\)") as caught:
            make_link(interval="cron: 0 9 * * *")
        assert "'cron: 0 9 * * *' (str)" in str(caught.value)


class TestTags:
    def test_string_becomes_one_tag(self) -> None:
        assert make_link(tags="prices").tags == ["prices"]

    def test_list_and_tuple(self) -> None:
        tags = ["a", "b"]
        link = make_link(tags=tags)
        tags.append("c")
        assert link.tags == ["a", "b"]
        assert make_link(tags=("x",)).tags == ["x"]

    def test_tags_property_is_a_copy(self) -> None:
        link = make_link(tags=["a"])
        link.tags.append("b")
        assert link.tags == ["a"]

    @pytest.mark.parametrize("value", [1, ["a", 2], {"a"}, b"bytes"])
    def test_bad_tags_rejected(self, value: Any) -> None:
        with pytest.raises(ConfigurationError, match="tags") as caught:
            make_link(tags=value)
        assert f"({type(value).__name__})" in str(caught.value)


class TestDeprecatedNames:
    def test_name_becomes_a_tag(self) -> None:
        with pytest.warns(DeprecationWarning, match="name"):
            link = make_link(name="legacy")
        assert link.tags == ["legacy"]
        with pytest.warns(DeprecationWarning, match="name"):
            assert link.name == "legacy"

    def test_name_property_without_tags(self) -> None:
        link = make_link()
        with pytest.warns(DeprecationWarning):
            assert link.name == ""

    @pytest.mark.parametrize("value", [True, False])
    def test_catch_exceptions_maps_to_ignore_exceptions(self, value: bool) -> None:
        with pytest.warns(DeprecationWarning, match="catch_exceptions"):
            link = make_link(catch_exceptions=value, ignore_exceptions=not value)
        assert link.ignore_exceptions is value

    def test_no_warning_without_deprecated_arguments(self) -> None:
        # warnings are errors in this suite: constructing a plain link must not warn.
        make_link(tags="t", ignore_exceptions=True)


class TestCallables:
    def test_single_callable_or_list(self) -> None:
        def step(records: list[Record]) -> list[Record]:
            return records

        def group(batches: list[list[Record]]) -> list[list[Record]]:
            return batches

        link = make_link(processors=step, groupers=group)
        assert link.processors == [step]
        assert link.groupers == [group]
        link = make_link(processors=[step, step], groupers=[group])
        assert link.processors == [step, step]

    @pytest.mark.parametrize("what", ["processors", "groupers"])
    def test_non_callables_rejected(self, what: str) -> None:
        with pytest.raises(ConfigurationError, match=rf"{what}\[1\].*42 \(int\)"):
            make_link(**{what: [lambda x: x, 42]})

    @pytest.mark.parametrize("value", [0, -1, 1.5, "2", True])
    def test_bad_inlet_concurrency(self, value: Any) -> None:
        with pytest.raises(ConfigurationError, match="inlet_concurrency"):
            make_link(inlet_concurrency=value)


class TestNodes:
    @pytest.mark.parametrize("bad", [object(), "inlet", None, RecordingOutlet()])
    def test_non_inlet_rejected(self, bad: Any) -> None:
        with pytest.raises(InvalidNodeError, match="Inlet") as caught:
            Link([ListInlet(), bad], RecordingOutlet(), 1)
        assert isinstance(caught.value, TypeError)  # Databay raised TypeError
        assert isinstance(caught.value, RuntimeError)  # and InvalidNodeError(RuntimeError)
        assert r"inlets[1]" in str(caught.value)
        assert type(bad).__name__ in str(caught.value)

    @pytest.mark.parametrize("bad", [object(), 3, ListInlet()])
    def test_non_outlet_rejected(self, bad: Any) -> None:
        with pytest.raises(InvalidNodeError, match=r"outlets\[0\].*Outlet"):
            Link(ListInlet(), bad, 1)

    def test_add_inlets_and_outlets(self) -> None:
        link = make_link()
        more_in, more_out = ListInlet(), [RecordingOutlet(), RecordingOutlet()]
        link.add_inlets(more_in)
        link.add_outlets(more_out)
        assert link.inlets[-1] is more_in
        assert link.outlets[-2:] == more_out

    def test_already_present_rejected(self) -> None:
        inlet, outlet = ListInlet(), RecordingOutlet()
        link = Link(inlet, outlet, 1)
        with pytest.raises(InvalidNodeError, match="already"):
            link.add_inlets(inlet)
        with pytest.raises(InvalidNodeError, match="already"):
            link.add_outlets([outlet])

    def test_duplicates_in_one_call_rejected_atomically(self) -> None:
        link = make_link()
        fresh, twice = ListInlet(), ListInlet()
        with pytest.raises(InvalidNodeError, match=r"inlets\[2\].*already"):
            link.add_inlets([fresh, twice, twice])
        assert fresh not in link.inlets and twice not in link.inlets
        assert len(link.inlets) == 1

    def test_duplicate_in_constructor_rejected(self) -> None:
        inlet = ListInlet()
        with pytest.raises(InvalidNodeError):
            Link([inlet, inlet], RecordingOutlet(), 1)

    def test_bad_item_in_add_is_atomic(self) -> None:
        link = make_link()
        with pytest.raises(InvalidNodeError):
            link.add_outlets([RecordingOutlet(), "not an outlet"])  # type: ignore[list-item]
        assert len(link.outlets) == 1

    def test_remove_nodes(self) -> None:
        inlets = [ListInlet(), ListInlet(), ListInlet()]
        outlets = [RecordingOutlet(), RecordingOutlet()]
        link = Link(inlets, outlets, 1)
        link.remove_inlets([inlets[0], inlets[2]])
        link.remove_outlets(outlets[1])
        assert link.inlets == [inlets[1]]
        assert link.outlets == [outlets[0]]

    def test_remove_missing_is_atomic(self) -> None:
        inlets = [ListInlet(), ListInlet()]
        link = Link(inlets, RecordingOutlet(), 1)
        stranger = ListInlet(name="stranger")
        with pytest.raises(MissingNodeError, match=r"inlets\[1\].*stranger.*not in the link") as e:
            link.remove_inlets([inlets[0], stranger])
        assert link.inlets == inlets
        assert isinstance(e.value, InvalidNodeError)  # Databay's name still catches it
        assert isinstance(e.value, LookupError)
        with pytest.raises(MissingNodeError):
            link.remove_outlets(RecordingOutlet())

    def test_errors_name_the_link(self) -> None:
        link = make_link(tags="named")
        with pytest.raises(DatabayBusError, match="named"):
            link.add_inlets(1)  # type: ignore[arg-type]


def test_users_may_set_attributes_of_their_own() -> None:
    """As on Databay's links (``link.owner = ...``); slots keep the built-in ones compact."""
    link = Link(ListInlet([1]), RecordingOutlet(), 1)
    link.owner = "team-a"  # type: ignore[attr-defined]
    assert link.owner == "team-a"  # type: ignore[attr-defined]


def test_a_given_outlet_name_must_be_unique_without_a_queue() -> None:
    """Names identify outlets in metrics, events and routes: a given name used twice is
    refused at once, also when added later, and the link is left unchanged."""
    with pytest.raises(InvalidNodeError, match=r"outlets\[1\].*'store'"):
        Link(ListInlet([1]), [RecordingOutlet(name="store"), RecordingOutlet(name="store")], 1)
    with pytest.raises(InvalidNodeError, match="'RecordingOutlet'"):
        Link(ListInlet([1]), [RecordingOutlet(), RecordingOutlet(name="RecordingOutlet")], 1)
    link = Link(ListInlet([1]), RecordingOutlet(name="store"), 1)
    with pytest.raises(InvalidNodeError, match="'store'"):
        link.add_outlets(RecordingOutlet(name="store"))
    assert len(link.outlets) == 1


def test_two_outlets_with_their_default_class_name_are_accepted() -> None:
    """Databay code puts two outlets of one class in a link (two CsvOutlets, two files)."""
    first, second = RecordingOutlet(), RecordingOutlet()
    link = Link(ListInlet([1]), [first, second], 1)
    link.transfer()
    assert first.payloads == second.payloads == [[1]]


class TestQueueOptions:
    def test_queue_options_without_a_queue_say_so(self) -> None:
        with pytest.raises(
            ConfigurationError, match=r"isolate_poison: only for a queued link; pass queue="
        ) as caught:
            make_link(isolate_poison=True)
        assert "got None" not in str(caught.value)

    def test_wrong_types_are_type_errors(self) -> None:
        from databay_bus.errors import ArgumentTypeError

        with pytest.raises(ArgumentTypeError, match=r"queue must be a .*RecordQueue, got 'q.db'"):
            make_link(queue="q.db")
        with pytest.raises(ArgumentTypeError, match="isolate_poison must be True or False"):
            make_link(queue=MemoryQueue(), isolate_poison="no")
