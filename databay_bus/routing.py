"""Routers: which of a link's outlets receive each record.

A router sits between processing and delivery, like a dispatcher between transports and
applications: for every record it names the outlets that get it (several names fan out, none
drops the record). Without a router every outlet gets every record.

Built-ins:

* :class:`MetadataRouter` maps the value of one metadata key to outlet names;
* :class:`InletRouter` maps the name of the inlet that produced a record to outlet names;
* :class:`PredicateRouter` tries ``(predicate, outlet names)`` rules in order.

Routing is decided once per record, before the record is queued, and the decision is stored
with the queued deliveries, so it survives restarts.
"""

from __future__ import annotations

import abc
import logging
import threading
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from typing import Any, Literal

from databay_bus.errors import ConfigurationError, describe
from databay_bus.records import Record

__all__ = [
    "ALL",
    "InletRouter",
    "MetadataRouter",
    "PredicateRouter",
    "Router",
    "route_records",
]

_LOGGER = logging.getLogger(__name__)

#: A default that sends unmatched records to every outlet of the link.
ALL: tuple[str, ...] = ("*",)

Targets = str | Sequence[str]


def _names(value: Targets, owner: object, where: str) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise ConfigurationError(
        f"{owner}: {where} must be an outlet name or a list of them, got {describe(value)}"
    )


class Router(abc.ABC):
    """Decides, for each record, the names of the outlets that receive it.

    Subclasses implement :meth:`route`; override :meth:`check` to reject outlet names the
    link does not have when it is built (or when outlets are removed). ``dropped`` counts
    records no outlet received.
    """

    def __init__(self) -> None:
        self._dropped = 0
        self._lock = threading.Lock()

    @property
    def dropped(self) -> int:
        """How many records this router sent to no outlet."""
        return self._dropped

    @abc.abstractmethod
    def route(self, record: Record, outlets: Sequence[str]) -> Iterable[str]:
        """Return the names, among ``outlets``, of the outlets that get ``record``."""

    def check(self, outlets: Sequence[str]) -> None:  # noqa: B027 - optional hook
        """Raise :class:`ConfigurationError` if the router names an outlet not in ``outlets``."""

    def _count_dropped(self) -> None:
        with self._lock:
            self._dropped += 1


class _TableRouter(Router):
    """Shared logic of routers that look a key up in a table of outlet names."""

    def __init__(self, routes: Mapping[Hashable, Targets], default: Targets | None = None) -> None:
        super().__init__()
        if not isinstance(routes, Mapping):
            raise ConfigurationError(f"{self!r}: routes must be a mapping, got {describe(routes)}")
        self.routes = {key: _names(v, self, f"routes[{key!r}]") for key, v in routes.items()}
        self.default = None if default is None else _names(default, self, "default")

    @abc.abstractmethod
    def key_of(self, record: Record) -> Any:
        """The value looked up in ``routes`` for ``record``."""

    def route(self, record: Record, outlets: Sequence[str]) -> Iterable[str]:
        try:
            targets: tuple[str, ...] | None = self.routes.get(self.key_of(record))
        except TypeError:  # an unhashable metadata value matches no route
            targets = None
        if targets is None:
            targets = self.default
        if targets is None:
            self._count_dropped()
            return ()
        return outlets if targets == ALL else targets

    def check(self, outlets: Sequence[str]) -> None:
        known = set(outlets)
        for key, targets in self.routes.items():
            _check_known(self, known, targets, f"routes[{key!r}]")
        if self.default is not None:
            _check_known(self, known, self.default, "default")


class MetadataRouter(_TableRouter):
    """Routes on the value of the metadata key ``key``.

    Args:
        key: the metadata key to read.
        routes: metadata value -> outlet name or list of names.
        default: names for records whose value has no route (or ``ALL``); None drops them
            and counts them in ``dropped``.
    """

    def __init__(
        self, key: str, routes: Mapping[Hashable, Targets], default: Targets | None = None
    ) -> None:
        self.key = key
        super().__init__(routes, default)

    def key_of(self, record: Record) -> Any:
        return record.metadata.get(self.key)

    def __repr__(self) -> str:
        return f"MetadataRouter(key={self.key!r})"


class InletRouter(_TableRouter):
    """Routes on the name of the inlet that produced each record (``Inlet(name=...)``).

    Args:
        routes: inlet name -> outlet name or list of names.
        default: as for :class:`MetadataRouter`; also used for records made by processors,
            which come from no inlet.
    """

    def key_of(self, record: Record) -> Any:
        return record.inlet_name

    def __repr__(self) -> str:
        return "InletRouter()"


class PredicateRouter(Router):
    """Tries ``(predicate, outlet names)`` rules in order.

    Args:
        rules: pairs of a callable ``Record -> bool`` and an outlet name or list of names.
        match: ``'first'`` sends a record to the outlets of the first rule that matches;
            ``'all'`` to the outlets of every rule that matches (each outlet once).
        default: as for :class:`MetadataRouter`.
    """

    def __init__(
        self,
        rules: Sequence[tuple[Callable[[Record], object], Targets]],
        match: Literal["first", "all"] = "first",
        default: Targets | None = None,
    ) -> None:
        super().__init__()
        self.match = match
        self.rules: list[tuple[Callable[[Record], object], tuple[str, ...]]] = []
        if match not in ("first", "all"):
            raise ConfigurationError(f"{self!r}: match must be 'first' or 'all', got {match!r}")
        for index, rule in enumerate(rules):
            if not (isinstance(rule, tuple) and len(rule) == 2 and callable(rule[0])):
                raise ConfigurationError(
                    f"{self}: rules[{index}] must be a (callable, outlet names) pair, "
                    f"got {describe(rule)}"
                )
            self.rules.append((rule[0], _names(rule[1], self, f"rules[{index}]")))
        self.default = None if default is None else _names(default, self, "default")

    def route(self, record: Record, outlets: Sequence[str]) -> Iterable[str]:
        chosen: list[str] = []
        for predicate, targets in self.rules:
            if predicate(record):
                chosen.extend(t for t in targets if t not in chosen)
                if self.match == "first":
                    break
        if not chosen and self.default is not None:
            chosen = list(self.default)
        if not chosen:
            self._count_dropped()
        return outlets if tuple(chosen) == ALL else chosen

    def check(self, outlets: Sequence[str]) -> None:
        known = set(outlets)
        for index, (_, targets) in enumerate(self.rules):
            _check_known(self, known, targets, f"rules[{index}]")
        if self.default is not None:
            _check_known(self, known, self.default, "default")

    def __repr__(self) -> str:
        return f"PredicateRouter(rules={len(self.rules)}, match={self.match!r})"


def _check_known(router: Router, known: set[str], targets: tuple[str, ...], where: str) -> None:
    if targets == ALL:
        return
    for name in targets:
        if name not in known:
            raise ConfigurationError(
                f"{router!r}: {where} names outlet {name!r}, which the link does not have "
                f"(outlets: {sorted(known)})"
            )


def route_records(
    router: Router | None,
    records: Sequence[Record],
    outlets: Sequence[str],
    ignore_exceptions: bool,
    update: object,
) -> list[tuple[str, ...]]:
    """Return, for each record, the outlet names it goes to (all of them without a router).

    A router that raises on a record is handled like a failing processor: with
    ``ignore_exceptions`` the error is logged and the record goes to every outlet, so nothing
    is lost; otherwise the error propagates. Names the link does not have raise
    :class:`ConfigurationError`.
    """
    everyone = tuple(outlets)
    if router is None:
        return [everyone] * len(records)
    known = set(outlets)
    decided: list[tuple[str, ...]] = []
    for record in records:
        try:
            names = tuple(dict.fromkeys(router.route(record, everyone)))
            unknown = [n for n in names if n not in known]
            if unknown:
                raise ConfigurationError(
                    f"{router!r} routed {record!r} to {unknown}, which the link does not have "
                    f"(outlets: {sorted(known)})"
                )
        except Exception as exc:
            if not ignore_exceptions:
                raise
            _LOGGER.error(
                "%s: router %r failed on %r; sent to every outlet",
                update,
                router,
                record,
                exc_info=exc,
            )
            names = everyone
        decided.append(names)
    return decided
