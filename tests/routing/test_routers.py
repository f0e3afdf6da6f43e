"""Routers on their own: which outlet names each record gets."""

from __future__ import annotations

import logging

import pytest

from databay_bus.errors import ConfigurationError
from databay_bus.records import Record
from databay_bus.routing import (
    ALL,
    InletRouter,
    MetadataRouter,
    PredicateRouter,
    Router,
    route_records,
)

OUTLETS = ("csv", "mongo", "print")


def rec(payload: object = 1, **metadata: object) -> Record:
    return Record(payload, dict(metadata))


class TestMetadataRouter:
    def test_maps_value_to_outlets(self) -> None:
        """A value maps to one outlet or fans out to several."""
        router = MetadataRouter("kind", {"a": "csv", "b": ["csv", "mongo"]})
        assert list(router.route(rec(kind="a"), OUTLETS)) == ["csv"]
        assert list(router.route(rec(kind="b"), OUTLETS)) == ["csv", "mongo"]

    def test_unmatched_dropped_and_counted(self) -> None:
        """Without a default, unmatched records go nowhere and are counted."""
        router = MetadataRouter("kind", {"a": "csv"})
        assert list(router.route(rec(kind="zzz"), OUTLETS)) == []
        assert list(router.route(rec(), OUTLETS)) == []
        assert router.dropped == 2

    def test_default_names_and_all(self) -> None:
        """A default sends unmatched records to named outlets, or ALL to every outlet."""
        assert list(MetadataRouter("k", {}, default="print").route(rec(k=1), OUTLETS)) == ["print"]
        assert list(MetadataRouter("k", {}, default=ALL).route(rec(k=1), OUTLETS)) == list(OUTLETS)

    def test_unhashable_value_matches_nothing(self) -> None:
        """A list-valued key cannot match a route; it falls to the default."""
        router = MetadataRouter("k", {"a": "csv"}, default="print")
        assert list(router.route(rec(k=["a"]), OUTLETS)) == ["print"]

    def test_check_names_unknown_outlet(self) -> None:
        """check() names the route key and the missing outlet."""
        router = MetadataRouter("k", {"a": "csv", "b": "nope"})
        with pytest.raises(ConfigurationError, match=r"routes\['b'\].*'nope'"):
            router.check(OUTLETS)
        with pytest.raises(ConfigurationError, match=r"default.*'gone'"):
            MetadataRouter("k", {}, default="gone").check(OUTLETS)
        MetadataRouter("k", {"a": "csv"}, default=ALL).check(OUTLETS)

    @pytest.mark.parametrize(
        ("routes", "default"),
        [({"a": 3}, None), ({"a": ["x", 4]}, None), ({}, 5), ("not a mapping", None)],
    )
    def test_bad_configuration(self, routes: object, default: object) -> None:
        """Routes must be a mapping of names or lists of names."""
        with pytest.raises(ConfigurationError):
            MetadataRouter("k", routes, default=default)  # type: ignore[arg-type]


class TestInletRouter:
    def test_routes_on_inlet_name(self) -> None:
        """The record's inlet_name picks the outlets; records from no inlet use the default."""
        router = InletRouter({"prices": "csv", "news": ["mongo", "print"]}, default="print")
        priced, news, orphan = rec(), rec(), rec()
        priced._inlet_name = "prices"
        news._inlet_name = "news"
        assert list(router.route(priced, OUTLETS)) == ["csv"]
        assert list(router.route(news, OUTLETS)) == ["mongo", "print"]
        assert list(router.route(orphan, OUTLETS)) == ["print"]


class TestPredicateRouter:
    def test_first_match(self) -> None:
        """match='first' uses only the first matching rule."""
        router = PredicateRouter(
            [(lambda r: r.payload > 10, "csv"), (lambda r: r.payload > 0, "mongo")]
        )
        assert list(router.route(rec(50), OUTLETS)) == ["csv"]
        assert list(router.route(rec(5), OUTLETS)) == ["mongo"]
        assert list(router.route(rec(-1), OUTLETS)) == []
        assert router.dropped == 1

    def test_all_matches_without_duplicates(self) -> None:
        """match='all' unions every matching rule's outlets, each once, in rule order."""
        router = PredicateRouter(
            [(lambda r: r.payload > 10, ["csv", "print"]), (lambda r: r.payload > 0, "csv")],
            match="all",
            default="mongo",
        )
        assert list(router.route(rec(50), OUTLETS)) == ["csv", "print"]
        assert list(router.route(rec(-5), OUTLETS)) == ["mongo"]

    def test_bad_rules(self) -> None:
        """Rules must be (callable, names) pairs and match must be first or all."""
        with pytest.raises(ConfigurationError, match=r"rules\[0\]"):
            PredicateRouter([("not callable", "csv")])  # type: ignore[list-item]
        with pytest.raises(ConfigurationError, match="match"):
            PredicateRouter([], match="some")  # type: ignore[arg-type]
        with pytest.raises(ConfigurationError, match=r"rules\[0\].*'x'"):
            PredicateRouter([(bool, "x")]).check(OUTLETS)


class _Raising(Router):
    def route(self, record: Record, outlets: object) -> list[str]:
        if record.payload == "bad":
            raise RuntimeError("cannot route")
        return ["csv"]


class TestRouteRecords:
    def test_no_router_sends_everything_everywhere(self) -> None:
        """Without a router every record goes to every outlet."""
        assert route_records(None, [rec(), rec()], OUTLETS, False, "u") == [OUTLETS, OUTLETS]

    def test_router_error_raises_unless_ignored(self, caplog: pytest.LogCaptureFixture) -> None:
        """A raising router propagates; ignored, the record goes to every outlet and is logged."""
        records = [rec("ok"), rec("bad")]
        with pytest.raises(RuntimeError, match="cannot route"):
            route_records(_Raising(), records, OUTLETS, False, "u.1")
        with caplog.at_level(logging.ERROR, logger="databay_bus"):
            decided = route_records(_Raising(), records, OUTLETS, True, "u.1")
        assert decided == [("csv",), OUTLETS]
        assert "router" in caplog.text and "u.1" in caplog.text

    def test_unknown_outlet_from_custom_router(self) -> None:
        """A custom router naming an outlet the link lacks is a ConfigurationError."""

        class Wrong(Router):
            def route(self, record: Record, outlets: object) -> list[str]:
                return ["ghost"]

        with pytest.raises(ConfigurationError, match="'ghost'"):
            route_records(Wrong(), [rec()], OUTLETS, False, "u")
