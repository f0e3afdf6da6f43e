"""A link's ``router``: which outlets get which records (see docs/config.md, "routers").

Built-in routers take their arguments as they are, except :class:`PredicateRouter`, whose
``rules = [{when = 'pkg.func', to = [...]}, {metadata = {...}, to = [...]}]`` name predicates
that are resolved here.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from databay_bus.config.checks import Failed
from databay_bus.config.objects import PREDICATE, ROUTER, Arguments, ObjectMaker, Spec
from databay_bus.config.source import key_path
from databay_bus.errors import describe
from databay_bus.routing import PredicateRouter, Router

__all__ = ["make_router"]

RULE_KEYS = ("when", "metadata", "to")


def make_router(
    maker: ObjectMaker, value: object, path: str
) -> tuple[Router | Failed, Spec | None]:
    """The router a link's ``router`` value names, and its name and arguments."""
    specs: list[Spec] = []

    def prepare(target: Any, kwargs: Arguments, where: str) -> Arguments | None:
        return _prepare(maker, target, kwargs, where)

    router = maker.make(ROUTER, value, path, prepare=prepare, specs=specs)
    return router, specs[0] if specs else None


def _prepare(maker: ObjectMaker, target: Any, kwargs: Arguments, path: str) -> Arguments | None:
    """Predicate routers take ``rules = [{when = 'pkg.func', to = [...]}, ...]``."""
    if not (inspect.isclass(target) and issubclass(target, PredicateRouter)):
        return kwargs
    problems = maker.problems
    rules = kwargs.get("rules")
    rules_path = key_path(path, "rules")
    if not isinstance(rules, list):
        problems.add(rules_path, f"must be a list of rule tables, got {describe(rules)}")
        return None
    converted: list[tuple[Callable[[Any], object], Any]] = []
    ok = True
    for index, rule in enumerate(rules):
        rule_path = key_path(rules_path, index)
        if not isinstance(rule, dict) or "to" not in rule:
            problems.add(
                rule_path,
                "must be a table with 'to' (outlet names) and 'when' (an import path of a "
                f"predicate) or 'metadata' (a table of values to match), got {describe(rule)}",
            )
            ok = False
            continue
        for key in rule:
            if key not in RULE_KEYS:
                problems.add(
                    key_path(rule_path, key), f"unknown key (known keys: {', '.join(RULE_KEYS)})"
                )
                ok = False
        predicate = _predicate(maker, rule, rule_path)
        if predicate is None:
            ok = False
            continue
        converted.append((predicate, rule["to"]))
    return {**kwargs, "rules": converted} if ok else None


def _predicate(
    maker: ObjectMaker, rule: dict[str, Any], path: str
) -> Callable[[Any], object] | None:
    has_when, has_metadata = "when" in rule, "metadata" in rule
    if has_when == has_metadata:
        maker.problems.add(path, "give exactly one of 'when' and 'metadata'")
        return None
    if has_metadata:
        wanted = rule["metadata"]
        if not isinstance(wanted, dict) or not wanted:
            maker.problems.add(
                key_path(path, "metadata"),
                f"must be a non-empty table of metadata values, got {describe(wanted)}",
            )
            return None
        return _MetadataMatch(dict(wanted))
    found = maker.make(PREDICATE, rule["when"], key_path(path, "when"))
    return None if isinstance(found, Failed) else found


@dataclass
class _MetadataMatch:
    """A predicate true for records whose metadata has every given key with the given value."""

    wanted: dict[str, Any]

    def __call__(self, record: Any) -> bool:
        metadata = record.metadata
        return all(key in metadata and metadata[key] == v for key, v in self.wanted.items())
