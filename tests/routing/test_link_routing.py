"""Routers inside a link without a queue: each record reaches exactly its outlets."""

from __future__ import annotations

from typing import Any

import pytest

from databay_bus import Inlet, Link, Outlet, Record, Update
from databay_bus.errors import ConfigurationError, InvalidNodeError
from databay_bus.routing import ALL, InletRouter, MetadataRouter, PredicateRouter


class ListInlet(Inlet):
    def __init__(self, values: list[Any], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.values = values

    def pull(self, update: Update) -> list[Any]:
        return list(self.values)


class Collect(Outlet):
    def __init__(self, name: str) -> None:
        super().__init__(name=name)
        self.payloads: list[Any] = []

    def push(self, records: list[Record], update: Update) -> None:
        for record in records:
            record.metadata["seen_by"] = self.name  # a mutation other outlets must not see
            self.payloads.append(record.payload)


def test_each_record_reaches_exactly_its_outlets() -> None:
    """Two inlets, three outlets, an InletRouter with fan-out and a default."""
    a, b, c = Collect("a"), Collect("b"), Collect("c")
    prices = ListInlet([1, 2], name="prices")
    news = ListInlet(["x"], name="news")
    other = ListInlet([None], name="other")
    link = Link(
        [prices, news, other],
        [a, b, c],
        1,
        router=InletRouter({"prices": "a", "news": ["b", "c"]}, default="c"),
    )
    link.transfer()
    assert a.payloads == [1, 2]
    assert b.payloads == ["x"]
    assert c.payloads == ["x", None]


def test_copies_isolate_fanned_out_records() -> None:
    """A record sent to two outlets is a separate object in each (copy_records=True)."""
    seen: list[Record] = []

    class Keep(Collect):
        def push(self, records: list[Record], update: Update) -> None:
            super().push(records, update)
            seen.extend(records)

    link = Link(
        ListInlet([{"v": 1}]),
        [Keep("a"), Keep("b")],
        1,
        router=MetadataRouter("k", {}, default=ALL),
    )
    link.transfer()
    assert len(seen) == 2 and seen[0] is not seen[1]
    assert sorted(r.metadata["seen_by"] for r in seen) == ["a", "b"]  # lanes run concurrently


def test_dropped_records_are_counted_and_outlets_still_pushed() -> None:
    """Unrouted records are dropped and counted; outlets still get their (empty) push."""
    calls: list[int] = []

    class Count(Collect):
        def push(self, records: list[Record], update: Update) -> None:
            calls.append(len(records))

    router = PredicateRouter([(lambda r: r.payload > 5, "a")])
    link = Link(ListInlet([1, 9]), [Count("a"), Count("b")], 1, router=router)
    link.transfer()
    assert sorted(calls) == [0, 1]
    assert router.dropped == 1


def test_groupers_apply_per_outlet() -> None:
    """Groupers split each outlet's routed records into batches."""
    batches: dict[str, list[list[Any]]] = {"a": [], "b": []}

    class Batches(Collect):
        def push(self, records: list[Record], update: Update) -> None:
            batches[self.name].append([r.payload for r in records])

    def pairs(groups: list[list[Record]]) -> list[list[Record]]:
        flat = [r for g in groups for r in g]
        return [flat[i : i + 2] for i in range(0, len(flat), 2)] or [[]]

    router = PredicateRouter([(lambda r: r.payload % 2 == 0, "a")], default="b")
    link = Link(
        ListInlet([1, 2, 3, 4, 5, 6, 7]),
        [Batches("a"), Batches("b")],
        1,
        router=router,
        groupers=pairs,
    )
    link.transfer()
    assert batches == {"a": [[2, 4], [6]], "b": [[1, 3], [5, 7]]}


class TestValidation:
    def test_route_to_missing_outlet_rejected_at_construction(self) -> None:
        """A mapping naming an outlet the link lacks fails when the link is built."""
        with pytest.raises(ConfigurationError, match=r"routes\['x'\].*'nope'"):
            Link(ListInlet([1]), [Collect("a")], 1, router=MetadataRouter("k", {"x": "nope"}))

    def test_removing_a_routed_outlet_rejected(self) -> None:
        """Removing an outlet a route still names fails and leaves the link unchanged."""
        a, b = Collect("a"), Collect("b")
        link = Link(ListInlet([1]), [a, b], 1, router=MetadataRouter("k", {"x": "b"}))
        with pytest.raises(ConfigurationError, match="'b'"):
            link.remove_outlets(b)
        assert link.outlets == [a, b]
        link.remove_outlets(a)
        assert link.outlets == [b]

    def test_duplicate_names_rejected_with_router(self) -> None:
        """With a router, two outlets may not share a name."""
        with pytest.raises(InvalidNodeError, match="'same'"):
            Link(
                ListInlet([1]),
                [Collect("same"), Collect("same")],
                1,
                router=MetadataRouter("k", {}),
            )

    def test_router_must_be_a_router(self) -> None:
        """Anything but a Router instance is refused, naming the value."""
        with pytest.raises(ConfigurationError, match="'a dict'"):
            Link(ListInlet([1]), [Collect("a")], 1, router="a dict")  # type: ignore[arg-type]


def test_raising_router_loses_nothing_when_ignoring() -> None:
    """With ignore_exceptions, a record the router fails on goes to every outlet."""

    def explode(record: Record) -> bool:
        raise ValueError("bad predicate")

    a, b = Collect("a"), Collect("b")
    link = Link(
        ListInlet([1]), [a, b], 1, router=PredicateRouter([(explode, "a")]), ignore_exceptions=True
    )
    link.transfer()
    assert a.payloads == [1] and b.payloads == [1]
    strict = Link(ListInlet([1]), [Collect("a")], 1, router=PredicateRouter([(explode, "a")]))
    with pytest.raises(ValueError, match="bad predicate"):
        strict.transfer()
