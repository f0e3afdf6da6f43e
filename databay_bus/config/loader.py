"""Turning a parsed pipeline file into a planner with its links, checking everything first.

The loader walks the whole file before anything starts and collects every problem with the
key path it belongs to (``links[2].outlets[0]: cannot import 'acme.sinks.Foo': ...``), so one
run of ``databay-bus validate`` lists all mistakes at once. Nothing is started here: nodes
are only constructed (their ``on_start`` runs when the planner starts).
"""

from __future__ import annotations

import inspect
import logging
import math
import os
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from databay_bus.config.names import ImportFailed, import_path, resolve
from databay_bus.config.source import expand_variables, key_path, parse_text, read_file
from databay_bus.errors import ConfigError, describe
from databay_bus.inlets.base import Inlet
from databay_bus.link import Link
from databay_bus.outlets.base import Outlet
from databay_bus.planners.base import BasePlanner
from databay_bus.queue.sqlite import SqliteQueue
from databay_bus.routing import PredicateRouter, Router

__all__ = ["LinkSpec", "build", "close_quietly", "load", "loads", "parse_duration"]

_LOGGER = logging.getLogger(__name__)

TOP_KEYS = ("log_level", "python_path", "planner", "queue", "observers", "links")
LINK_KEYS = (
    "tags",
    "interval",
    "inlets",
    "outlets",
    "processors",
    "groupers",
    "router",
    "ignore_exceptions",
    "copy_records",
    "inlet_concurrency",
    "immediate_transfer",
    "queue",
    "retry",
    "outlet_retry",
    "delivery",
)
DELIVERY_KEYS = ("key", "max_pending", "batch_size")
QUEUE_KINDS = {"sqlite": "databay_bus.queue.SqliteQueue", "memory": "databay_bus.queue.MemoryQueue"}
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_DURATION = re.compile(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*(ms|s|m|h|d)\s*")
_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


class _Failed:
    """Marks a value that could not be built (its problem is already recorded)."""

    def __repr__(self) -> str:
        return "<failed>"


FAILED = _Failed()


class _Bad(Exception):
    """A value check failed; the message is the reason."""


def parse_duration(value: Any) -> float:
    """Seconds from a positive number or a string such as ``'500ms'``, ``'5s'``, ``'1h30m'``.

    Raises:
        ValueError: not a number or duration string, or not > 0.
    """
    if isinstance(value, bool):
        raise ValueError(f"must be a number of seconds or a duration like '5s', got {value!r}")
    if isinstance(value, (int, float)):
        seconds = float(value)
    elif isinstance(value, str):
        parts = list(_DURATION.finditer(value))
        if not parts or "".join(p.group(0) for p in parts) != value:
            raise ValueError(
                f"must be a number of seconds or a duration like '500ms', '5s', '2m', '1h', "
                f"'1d' or '1h30m', got {value!r}"
            )
        seconds = sum(float(p.group(1)) * _UNITS[p.group(2)] for p in parts)
    else:
        raise ValueError(
            f"must be a number of seconds or a duration like '5s', got {describe(value)}"
        )
    if not math.isfinite(seconds) or seconds <= 0:
        shown = int(seconds) if math.isfinite(seconds) and seconds.is_integer() else value
        raise ValueError(f"must be > 0, got {shown}")
    return seconds


@dataclass
class LinkSpec:
    """What the file said about one link, kept for ``validate`` to print."""

    index: int
    tags: list[str]
    interval: float
    inlets: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    outlets: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    processors: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    groupers: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    router: tuple[str, dict[str, Any]] | None = None
    options: dict[str, Any] = field(default_factory=dict)
    queued: bool = False


class _Builder:
    """Builds one pipeline, collecting problems instead of stopping at the first."""

    def __init__(self, source: str, dry_run: bool) -> None:
        self.source = source
        self.dry_run = dry_run
        self.problems: list[tuple[str, str]] = []
        self.queues: list[Any] = []
        self.link_specs: list[LinkSpec] = []
        self.shared_queue: Any = None
        self.queue_spec: dict[str, Any] = {}
        self.retry_default: dict[str, Any] | None = None

    def problem(self, path: str, reason: str) -> None:
        self.problems.append((path, reason))

    # -- small value checks ------------------------------------------------------------------

    def table(self, value: Any, path: str, known: tuple[str, ...] | None = None) -> dict[str, Any]:
        if not isinstance(value, dict):
            self.problem(
                path, f"must be a table (a mapping of keys to values), got {describe(value)}"
            )
            return {}
        if known is not None:
            for key in value:
                if key not in known:
                    self.problem(
                        key_path(path, key), f"unknown key (known keys: {', '.join(known)})"
                    )
        return value

    def check(self, path: str, value: Any, test: Callable[[Any], Any]) -> Any:
        try:
            return test(value)
        except (_Bad, ValueError) as exc:
            self.problem(path, str(exc))
            return FAILED

    # -- objects by name ---------------------------------------------------------------------

    def spec(self, value: Any, path: str) -> tuple[str, dict[str, Any]] | None:
        """``'csv'`` or ``{type = 'csv', default_filepath = ...}`` -> name and arguments."""
        if isinstance(value, str):
            return value, {}
        if isinstance(value, dict):
            name = value.get("type")
            if not isinstance(name, str) or not name:
                self.problem(
                    path,
                    "a table naming an object needs 'type' (a built-in name or an import path), "
                    f"got {describe(name) if 'type' in value else 'no type key'}",
                )
                return None
            return name, {k: v for k, v in value.items() if k != "type"}
        self.problem(
            path,
            "must be a name (a built-in name or an import path) or a table with 'type' and "
            f"arguments, got {describe(value)}",
        )
        return None

    def make(
        self,
        kind: str,
        value: Any,
        path: str,
        *,
        expect: type | None,
        always_call: bool,
        prepare: Callable[[Any, dict[str, Any], str], dict[str, Any] | None] | None = None,
        specs: list[tuple[str, dict[str, Any]]] | None = None,
        construct: Callable[[Any, dict[str, Any]], Any] | None = None,
    ) -> Any:
        """Resolve and construct one object; FAILED (with a problem recorded) if it cannot be.

        Classes are called with the arguments; a function is used as it is when it has no
        arguments and ``always_call`` is False (a processor given by name), else it is called
        as a factory.
        """
        parsed = self.spec(value, path)
        if parsed is None:
            return FAILED
        name, kwargs = parsed
        if specs is not None:
            specs.append((name, kwargs))
        try:
            target = resolve(kind, name)
        except ImportFailed as exc:
            self.problem(path, str(exc))
            return FAILED
        if not callable(target):
            self.problem(path, f"{name!r} is {describe(target)}, not a class or function")
            return FAILED
        if prepare is not None:
            prepared = prepare(target, kwargs, path)
            if prepared is None:
                return FAILED
            kwargs = prepared
        label = getattr(target, "__qualname__", name)
        if inspect.isclass(target) or kwargs or always_call:
            if not self.arguments_fit(target, label, kwargs, path):
                return FAILED
            try:
                obj = target(**kwargs) if construct is None else construct(target, kwargs)
            except Exception as exc:
                self.problem(path, f"{label}(...) raised {type(exc).__name__}: {exc}")
                return FAILED
        else:
            obj = target
        if expect is not None and not isinstance(obj, expect):
            article = "an" if expect.__name__[:1] in "AEIOU" else "a"
            self.problem(path, f"{name!r} gave {describe(obj)}, not {article} {expect.__name__}")
            return FAILED
        if expect is None and not callable(obj):
            self.problem(path, f"{name!r} gave {describe(obj)}, which is not callable")
            return FAILED
        return obj

    def arguments_fit(self, target: Any, label: str, kwargs: dict[str, Any], path: str) -> bool:
        hidden = ("links",) if inspect.isclass(target) and issubclass(target, BasePlanner) else ()
        try:
            signature = inspect.signature(target)
        except (TypeError, ValueError):
            return True  # no signature to check against (a builtin): let the call decide
        params = signature.parameters
        takes_any = any(p.kind is p.VAR_KEYWORD for p in params.values())
        named = [
            n
            for n, p in params.items()
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
            and not n.startswith("_")
            and n not in hidden
        ]
        fits = True
        if not takes_any:
            for key in kwargs:
                if key not in named:
                    self.problem(
                        key_path(path, key),
                        f"{label} takes no argument {key!r} (its arguments: "
                        f"{', '.join(named) or 'none'})",
                    )
                    fits = False
        for n, p in params.items():
            required = p.default is p.empty and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
            if required and n not in kwargs:
                self.problem(path, f"{label} needs the argument {n!r}")
                fits = False
        return fits

    def make_list(
        self,
        kind: str,
        value: Any,
        path: str,
        *,
        expect: type | None,
        always_call: bool,
        specs: list[tuple[str, dict[str, Any]]],
        required: bool = False,
        prepare: Callable[[Any, dict[str, Any], str], dict[str, Any] | None] | None = None,
    ) -> list[Any]:
        if value is None:
            if required:
                self.problem(path, f"a link needs at least one {kind}")
            return []
        items = value if isinstance(value, list) else [value]
        if required and not items:
            self.problem(path, f"a link needs at least one {kind}")
        return [
            self.make(
                kind,
                item,
                key_path(path, i),
                expect=expect,
                always_call=always_call,
                specs=specs,
                prepare=prepare,
            )
            for i, item in enumerate(items)
        ]

    def prepare_outlet(
        self, target: Any, kwargs: dict[str, Any], path: str
    ) -> dict[str, Any] | None:
        """An outlet's own ``processors`` are named like the link's."""
        if "processors" not in kwargs:
            return kwargs
        where = key_path(path, "processors")
        value = kwargs["processors"]
        items = value if isinstance(value, list) else [value]
        made = [
            self.make("processor", item, key_path(where, i), expect=None, always_call=False)
            for i, item in enumerate(items)
        ]
        return None if FAILED in made else {**kwargs, "processors": made}

    # -- routers -----------------------------------------------------------------------------

    def prepare_router(
        self, target: Any, kwargs: dict[str, Any], path: str
    ) -> dict[str, Any] | None:
        """Predicate routers take ``rules = [{when = 'pkg.func', to = [...]}, ...]``."""
        if not (inspect.isclass(target) and issubclass(target, PredicateRouter)):
            return kwargs
        rules = kwargs.get("rules")
        rules_path = key_path(path, "rules")
        if not isinstance(rules, list):
            self.problem(rules_path, f"must be a list of rule tables, got {describe(rules)}")
            return None
        converted: list[tuple[Callable[[Any], object], Any]] = []
        ok = True
        for index, rule in enumerate(rules):
            rule_path = key_path(rules_path, index)
            if not isinstance(rule, dict) or "to" not in rule:
                self.problem(
                    rule_path,
                    "must be a table with 'to' (outlet names) and 'when' (an import path of a "
                    f"predicate) or 'metadata' (a table of values to match), got {describe(rule)}",
                )
                ok = False
                continue
            for key in rule:
                if key not in ("when", "metadata", "to"):
                    self.problem(
                        key_path(rule_path, key), "unknown key (known keys: when, metadata, to)"
                    )
                    ok = False
            predicate = self.predicate(rule, rule_path)
            if predicate is None:
                ok = False
                continue
            converted.append((predicate, rule["to"]))
        return {**kwargs, "rules": converted} if ok else None

    def predicate(self, rule: dict[str, Any], path: str) -> Callable[[Any], object] | None:
        has_when, has_metadata = "when" in rule, "metadata" in rule
        if has_when == has_metadata:
            self.problem(path, "give exactly one of 'when' and 'metadata'")
            return None
        if has_metadata:
            wanted = rule["metadata"]
            if not isinstance(wanted, dict) or not wanted:
                self.problem(
                    key_path(path, "metadata"),
                    f"must be a non-empty table of metadata values, got {describe(wanted)}",
                )
                return None
            return _MetadataMatch(dict(wanted))
        found = self.make(
            "predicate", rule["when"], key_path(path, "when"), expect=None, always_call=False
        )
        return None if found is FAILED else found

    # -- queue -------------------------------------------------------------------------------

    def queue_table(self, value: Any, path: str) -> dict[str, Any]:
        data = dict(self.table(value, path))
        kind = data.pop("kind", None)
        if kind is None:
            kind = "sqlite" if "path" in data else "memory"
        if not isinstance(kind, str):
            self.problem(
                key_path(path, "kind"),
                f"must be 'sqlite', 'memory' or an import path, got {describe(kind)}",
            )
        return {"kind": kind, **data}

    def make_queue(self, spec: dict[str, Any], path: str) -> Any:
        options = dict(spec)
        kind = options.pop("kind")
        options.pop("retry", None)
        ok = True
        for key in ("retention", "purge_interval"):
            if key in options:
                seconds = self.seconds_or_none(options[key], key_path(path, key), positive=True)
                ok = ok and seconds is not FAILED
                options[key] = seconds
        if "codec" in options:
            options["codec"] = self.make(
                "codec", options["codec"], key_path(path, "codec"), expect=object, always_call=True
            )
            ok = ok and options["codec"] is not FAILED
        if not ok or not isinstance(kind, str):
            return FAILED
        construct = None
        if self.dry_run:
            # validate: check the arguments, but never open (and lock) a queue file that a
            # running pipeline may hold; an in-memory queue stands in for it.
            def construct(target: Any, kwargs: dict[str, Any]) -> Any:
                if inspect.isclass(target) and issubclass(target, SqliteQueue):
                    own = ("path", "busy_timeout", "ack_sync")
                    target.check_arguments(**{k: v for k, v in kwargs.items() if k in own})
                memory_queue = import_path(QUEUE_KINDS["memory"])
                common = ("codec", "retention", "purge_interval")
                return memory_queue(**{k: v for k, v in kwargs.items() if k in common})

        queue = self.make(
            "queue",
            {"type": QUEUE_KINDS.get(kind, kind), **options},
            path,
            expect=object,
            always_call=True,
            construct=construct,
        )
        if queue is not FAILED:
            self.queues.append(queue)
        return queue

    def seconds_or_none(self, value: Any, path: str, positive: bool) -> Any:
        """A duration in seconds; ``false`` means None (no limit / never)."""
        if value is False:
            return None
        if positive:
            return self.check(path, value, parse_duration)
        if isinstance(value, str):  # 0 is allowed here, so only strings go through the parser
            return self.check(path, value, parse_duration)
        return value

    def retry_policy(self, value: Any, path: str) -> Any:
        table = dict(self.table(value, path))
        ok = True
        for key in ("initial_delay", "max_delay"):
            if key in table:
                table[key] = self.seconds_or_none(table[key], key_path(path, key), positive=False)
                ok = ok and table[key] is not FAILED
        if table.get("max_attempts") is False:
            table["max_attempts"] = None
        if not ok:
            return FAILED
        return self.make(
            "retry",
            {"type": "databay_bus.queue.RetryPolicy", **table},
            path,
            expect=object,
            always_call=True,
        )

    # -- links -------------------------------------------------------------------------------

    def link(self, index: int, value: Any) -> Link | None:
        path = key_path("links", index)
        data = self.table(value, path, LINK_KEYS)
        if not data:
            if isinstance(value, dict):
                self.problem(path, "a link needs at least 'interval', 'inlets' and 'outlets'")
            return None
        before = len(self.problems)
        tags = data.get("tags", [])
        if isinstance(tags, str):
            tags = [tags]
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            self.problem(
                key_path(path, "tags"),
                f"must be a string or a list of strings, got {describe(tags)}",
            )
            tags = []
        if "interval" not in data:
            self.problem(path, "a link needs 'interval' (seconds, or a duration like '5s')")
            interval: Any = FAILED
        else:
            interval = self.check(key_path(path, "interval"), data["interval"], parse_duration)
        spec = LinkSpec(index, tags, interval if isinstance(interval, float) else 0.0)
        self.link_specs.append(spec)
        inlets = self.make_list(
            "inlet",
            data.get("inlets"),
            key_path(path, "inlets"),
            expect=Inlet,
            always_call=True,
            specs=spec.inlets,
            required=True,
        )
        outlets = self.make_list(
            "outlet",
            data.get("outlets"),
            key_path(path, "outlets"),
            expect=Outlet,
            always_call=True,
            specs=spec.outlets,
            required=True,
            prepare=self.prepare_outlet,
        )
        processors = self.make_list(
            "processor",
            data.get("processors"),
            key_path(path, "processors"),
            expect=None,
            always_call=False,
            specs=spec.processors,
        )
        groupers = self.make_list(
            "grouper",
            data.get("groupers"),
            key_path(path, "groupers"),
            expect=None,
            always_call=False,
            specs=spec.groupers,
        )
        router: Any = None
        if "router" in data:
            router_specs: list[tuple[str, dict[str, Any]]] = []
            router = self.make(
                "router",
                data["router"],
                key_path(path, "router"),
                expect=Router,
                always_call=True,
                prepare=self.prepare_router,
                specs=router_specs,
            )
            spec.router = router_specs[0] if router_specs else None
        options: dict[str, Any] = {}
        for key in ("ignore_exceptions", "copy_records", "immediate_transfer"):
            if key in data:
                if isinstance(data[key], bool):
                    options[key] = data[key]
                else:
                    self.problem(
                        key_path(path, key), f"must be true or false, got {describe(data[key])}"
                    )
        if "inlet_concurrency" in data:
            value_ = data["inlet_concurrency"]
            if isinstance(value_, int) and not isinstance(value_, bool) and value_ >= 1:
                options["inlet_concurrency"] = value_
            else:
                self.problem(
                    key_path(path, "inlet_concurrency"),
                    f"must be an integer >= 1, got {describe(value_)}",
                )
        spec.options = dict(options)
        delivery = self.delivery_options(data, path, spec, outlets)
        if router not in (None, FAILED) and FAILED not in outlets:
            try:
                router.check([o.name for o in outlets])
            except Exception as exc:
                self.problem(key_path(path, "router"), str(exc))
        if len(self.problems) > before or FAILED in (
            *inlets,
            *outlets,
            *processors,
            *groupers,
            router,
            interval,
        ):
            return None
        try:
            return Link(
                inlets,
                outlets,
                interval,
                tags=tags,
                processors=processors,
                groupers=groupers,
                router=router,
                **options,
                **delivery,
            )
        except Exception as exc:
            self.problem(path, f"{type(exc).__name__}: {exc}")
            return None

    def delivery_options(
        self, data: dict[str, Any], path: str, spec: LinkSpec, outlets: list[Any]
    ) -> dict[str, Any]:
        """``queue=`` and the QueueDelivery options of one link."""
        queue_value = data.get("queue", bool(self.queue_spec))
        options: dict[str, Any] = {}
        if queue_value is False:
            why = "this link has queue = false" if "queue" in data else "add a [queue] table"
            for key in ("retry", "outlet_retry", "delivery"):
                if key in data:
                    self.problem(key_path(path, key), f"only applies to a queued link; {why}")
            return options
        if not isinstance(queue_value, (bool, dict)):
            self.problem(
                key_path(path, "queue"),
                f"must be true, false or a queue table, got {describe(queue_value)}",
            )
            return {"queue": FAILED}
        if queue_value is True:
            if not self.queue_spec:
                self.problem(key_path(path, "queue"), "is true but the file has no [queue] table")
                return options
            if self.shared_queue is None:
                self.shared_queue = self.make_queue(self.queue_spec, "queue")
            queue = self.shared_queue
            default_retry = self.queue_spec.get("retry")
        else:
            own = self.queue_table(queue_value, key_path(path, "queue"))
            queue = self.make_queue(own, key_path(path, "queue"))
            default_retry = own.get("retry", self.queue_spec.get("retry"))
        spec.queued = True
        options["queue"] = queue
        retry_value = data.get("retry", default_retry)
        if retry_value is not None:
            where = key_path(path, "retry") if "retry" in data else "queue.retry"
            options["retry"] = self.retry_policy(retry_value, where)
        if "outlet_retry" in data:
            where = key_path(path, "outlet_retry")
            per_outlet = self.table(data["outlet_retry"], where)
            outlet_names = [o.name for o in outlets if o is not FAILED]
            policies = {}
            for name, value in per_outlet.items():
                if name not in outlet_names:
                    self.problem(
                        key_path(where, name),
                        f"the link has no outlet named {name!r} (outlet names: "
                        f"{', '.join(outlet_names)}; set name = ... on an outlet to name it)",
                    )
                policies[name] = self.retry_policy(value, key_path(where, name))
            options["outlet_retry"] = policies
            if FAILED in policies.values():
                options["queue"] = FAILED
        if "delivery" in data:
            extra = self.table(data["delivery"], key_path(path, "delivery"))
            for key in extra:
                if key in ("queue", "retry", "outlet_retry"):
                    self.problem(
                        key_path(key_path(path, "delivery"), key), f"set {key!r} on the link itself"
                    )
                elif key not in DELIVERY_KEYS:
                    self.problem(
                        key_path(key_path(path, "delivery"), key),
                        f"unknown key (known keys: {', '.join(DELIVERY_KEYS)})",
                    )
            options.update({k: v for k, v in extra.items() if k in DELIVERY_KEYS})
        if any(v is FAILED for v in options.values()):
            return {**options, "queue": FAILED}
        return options


@dataclass
class _MetadataMatch:
    """A predicate true for records whose metadata has every given key with the given value."""

    wanted: dict[str, Any]

    def __call__(self, record: Any) -> bool:
        metadata = record.metadata
        return all(key in metadata and metadata[key] == v for key, v in self.wanted.items())


def build(
    data: Any,
    source: str = "<pipeline>",
    *,
    env: Mapping[str, str] | None = None,
    base_dir: str | os.PathLike[str] | None = None,
    dry_run: bool = False,
) -> Any:
    """Build a :class:`~databay_bus.config.Pipeline` from already parsed data.

    Args:
        data: the parsed file (a dict).
        source: the name used in error messages (the file path).
        env: variables for ``${NAME}``; ``os.environ`` by default. ``PIPELINE_DIR`` is added.
        base_dir: the value of ``${PIPELINE_DIR}``; the working directory by default.
        dry_run: build queues in memory instead of opening their files (``validate`` uses it,
            so checking a pipeline never locks the queue of a running one).

    Raises:
        ConfigError: listing every problem found, each with its key path.
    """
    from databay_bus.config.pipeline import Pipeline

    variables = dict(os.environ if env is None else env)
    variables.setdefault("PIPELINE_DIR", str(Path(base_dir or os.getcwd()).resolve()))
    builder = _Builder(source, dry_run)
    if not isinstance(data, dict):
        raise ConfigError(
            source, [("", f"the file must hold a table at the top, got {describe(data)}")]
        )
    data = expand_variables(data, variables, "", builder.problems)
    builder.table(data, "", TOP_KEYS)
    log_level = _log_level(builder, data.get("log_level"))
    _python_path(builder, data.get("python_path"))
    planner_data = dict(builder.table(data.get("planner", {}), "planner"))
    if "queue" in data:
        builder.queue_spec = builder.queue_table(data["queue"], "queue")
        if "retry" in builder.queue_spec:
            builder.table(builder.queue_spec["retry"], "queue.retry")
    links_value = data.get("links")
    links: list[Link] = []
    if not isinstance(links_value, list) or not links_value:
        builder.problem(
            "links",
            f"must be a non-empty list of link tables ([[links]]), got {describe(links_value)}",
        )
    else:
        for index, value in enumerate(links_value):
            link = builder.link(index, value)
            if link is not None:
                links.append(link)
    observers = [
        builder.make("observer", item, key_path("observers", i), expect=None, always_call=False)
        for i, item in enumerate(_as_items(builder, data.get("observers"), "observers"))
    ]
    planner = _planner(builder, planner_data, links)
    if builder.problems:
        for queue in builder.queues:
            close_quietly(queue)
        raise ConfigError(source, builder.problems)
    assert isinstance(planner, BasePlanner)
    for observer in observers:
        planner.add_observer(observer)
    return Pipeline(
        planner=planner,
        links=links,
        queues=list(builder.queues),
        observers=observers,
        log_level=log_level,
        source=source,
        planner_spec=(
            str(planner_data.get("kind", "aps")),
            {k: v for k, v in planner_data.items() if k != "kind"},
        ),
        queue_spec=builder.queue_spec,
        link_specs=builder.link_specs,
    )


def _as_items(builder: _Builder, value: Any, path: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        builder.problem(path, f"must be a list of observers, got {describe(value)}")
        return []
    return value


def _python_path(builder: _Builder, value: Any) -> None:
    """Put the file's ``python_path`` directories first on ``sys.path`` (once each)."""
    if value is None:
        return
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(v, str) for v in items):
        builder.problem(
            "python_path", f"must be a directory or a list of directories, got {describe(value)}"
        )
        return
    for index, item in reversed(list(enumerate(items))):
        folder = str(Path(item).resolve())
        if not Path(folder).is_dir():
            builder.problem(key_path("python_path", index), f"no directory {item!r}")
        elif folder not in sys.path:
            sys.path.insert(0, folder)


def _log_level(builder: _Builder, value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, str) and value.upper() in _LEVELS:
        return int(getattr(logging, value.upper()))
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    builder.problem(
        "log_level", f"must be one of {', '.join(_LEVELS)} or a number, got {describe(value)}"
    )
    return None


def _planner(builder: _Builder, data: dict[str, Any], links: list[Link]) -> Any:
    options = dict(data)
    kind = options.pop("kind", "aps")
    if "links" in options:
        builder.problem("planner.links", "declare links as [[links]] tables at the top level")
        options.pop("links")
    planner = builder.make(
        "planner",
        {"type": kind, **options} if isinstance(kind, str) else kind,
        "planner" if isinstance(kind, str) else "planner.kind",
        expect=BasePlanner,
        always_call=True,
    )
    if planner is FAILED:
        return FAILED
    for link in links:
        try:
            planner.add_links(link)
        except Exception as exc:
            spec_index = next((s.index for s in builder.link_specs if s.tags == link.tags), None)
            where = key_path("links", spec_index) if spec_index is not None else "links"
            if "interval" in str(exc).lower():
                where = key_path(where, "interval")
            builder.problem(where, str(exc))
    return planner


def close_quietly(queue: Any) -> None:
    """Close ``queue`` if it can be closed; a failure is logged, never raised."""
    close = getattr(queue, "close", None)
    if callable(close):
        try:
            close()
        except Exception as exc:
            _LOGGER.warning("closing %r failed", queue, exc_info=exc)


def loads(
    text: str,
    fmt: str = "toml",
    source: str = "<string>",
    *,
    dry_run: bool = False,
    env: Mapping[str, str] | None = None,
) -> Any:
    """Build a Pipeline from the text of a pipeline file (``fmt`` is ``'toml'`` or ``'json'``).

    Raises:
        ConfigError: the text does not parse, or describes a pipeline that cannot be built.
    """
    try:
        data = parse_text(text, fmt)
    except ValueError as exc:
        raise ConfigError(source, [("", str(exc))]) from None
    return build(data, source, env=env, dry_run=dry_run)


def load(
    path: str | os.PathLike[str], *, dry_run: bool = False, env: Mapping[str, str] | None = None
) -> Any:
    """Load a pipeline file (TOML, or JSON when it ends in ``.json``) into a Pipeline.

    The returned ``pipeline.planner`` is ready to start; nothing has started yet.

    Raises:
        ConfigError: the file cannot be read or parsed, or any part of it is invalid; the
            message lists every problem with its key path.
    """
    source = os.fspath(path)
    try:
        data, _ = read_file(path)
    except OSError as exc:
        raise ConfigError(source, [("", f"cannot read the file: {exc.strerror or exc}")]) from None
    except ValueError as exc:
        raise ConfigError(source, [("", str(exc))]) from None
    return build(data, source, env=env, base_dir=Path(path).resolve().parent, dry_run=dry_run)
