"""The ``[[links]]`` tables: a link's nodes, options, router and queue, built into a Link.

Each key of a link table is read in :meth:`LinkReader.read` (the one place to add a key: put
it in :data:`LINK_KEYS`, check it there); the interval goes through :func:`parse_interval`
(a duration, or ``"cron: EXPR"`` with the link's ``tz``),
the router through :mod:`databay_bus.config.routers` and the queue options through
:meth:`LinkReader.delivery_options` and :mod:`databay_bus.config.queues`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from databay_bus.config.checks import FAILED, Failed, Problems, parse_duration
from databay_bus.config.objects import (
    GROUPER,
    INLET,
    OUTLET,
    PROCESSOR,
    Arguments,
    ObjectMaker,
    Spec,
    built,
)
from databay_bus.config.queues import Queues
from databay_bus.config.routers import make_router
from databay_bus.config.source import key_path
from databay_bus.errors import ConfigurationError, describe
from databay_bus.inlets.base import Inlet
from databay_bus.link import Link
from databay_bus.outlets.base import Outlet
from databay_bus.routing import Router
from databay_bus.schedules import Cron

__all__ = ["DELIVERY_KEYS", "LINK_KEYS", "LinkReader", "LinkSpec", "parse_interval"]

LINK_KEYS = (
    "tags",
    "interval",
    "tz",
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
    "pull_retry",
    "inlet_retry",
    "delivery",
)
#: Keys of a link's ``delivery`` table (options of the queued delivery).
DELIVERY_KEYS = (
    "key",
    "max_pending",
    "batch_size",
    "drain_budget",
    "isolate_poison",
    "max_isolation_pushes",
)
#: Link options that must be true or false.
BOOLEAN_KEYS = ("ignore_exceptions", "copy_records", "immediate_transfer")


CRON_PREFIX = "cron:"


def parse_interval(value: object, tz: object = None) -> float | Cron:
    """A link's ``interval``: seconds, a duration string, or ``"cron: EXPR"`` evaluated in
    ``tz`` (an IANA name; UTC when None). Raises ValueError with the reason (a
    ``ConfigurationError`` naming the expression and field, for a cron)."""
    if isinstance(value, str) and value.strip().lower().startswith(CRON_PREFIX):
        return Cron(value.strip()[len(CRON_PREFIX) :], tz=tz)  # type: ignore[arg-type]
    if tz is not None:
        raise ValueError(f"'tz' only applies to a cron interval ('cron: ...'), got {value!r}")
    return parse_duration(value, also=", or a cron schedule 'cron: EXPR'")


@dataclass
class LinkSpec:
    """What the file said about one link, kept for ``validate`` to print."""

    index: int
    tags: list[str]
    interval: float | Cron
    inlets: list[Spec] = field(default_factory=list)
    outlets: list[Spec] = field(default_factory=list)
    processors: list[Spec] = field(default_factory=list)
    groupers: list[Spec] = field(default_factory=list)
    router: Spec | None = None
    options: dict[str, Any] = field(default_factory=dict)
    queued: bool = False


class LinkReader:
    """Builds the links of one file, keeping what each said in :attr:`specs`.

    Args:
        maker: builds nodes and records problems.
        queues: the file's queues.
    """

    def __init__(self, maker: ObjectMaker, queues: Queues) -> None:
        self.maker = maker
        self.queues = queues
        self.specs: list[LinkSpec] = []

    @property
    def problems(self) -> Problems:
        return self.maker.problems

    def read(self, index: int, value: object) -> Link | None:
        """The Link of ``links[index]``, or None (its problems recorded)."""
        path = key_path("links", index)
        problems = self.problems
        data = problems.table(value, path, LINK_KEYS)
        if not data:
            if isinstance(value, dict):
                problems.add(path, "a link needs at least 'interval', 'inlets' and 'outlets'")
            return None
        before = len(problems)
        tags = data.get("tags", [])
        if isinstance(tags, str):
            tags = [tags]
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            problems.add(
                key_path(path, "tags"),
                f"must be a string or a list of strings, got {describe(tags)}",
            )
            tags = []
        interval: float | Cron | Failed
        if "interval" not in data:
            problems.add(path, "a link needs 'interval' (seconds, or a duration like '5s')")
            interval = FAILED
        else:
            interval = self._interval(path, tags, data)
        spec = LinkSpec(index, tags, 0.0 if isinstance(interval, Failed) else interval)
        self.specs.append(spec)
        make_list = self.maker.make_list
        inlets = make_list(
            INLET,
            data.get("inlets"),
            key_path(path, "inlets"),
            specs=spec.inlets,
            required=True,
        )
        outlets = make_list(
            OUTLET,
            data.get("outlets"),
            key_path(path, "outlets"),
            specs=spec.outlets,
            required=True,
            prepare=self._prepare_outlet,
        )
        processors = make_list(
            PROCESSOR,
            data.get("processors"),
            key_path(path, "processors"),
            specs=spec.processors,
        )
        groupers = make_list(
            GROUPER,
            data.get("groupers"),
            key_path(path, "groupers"),
            specs=spec.groupers,
        )
        router: Router | Failed | None = None
        if "router" in data:
            router, spec.router = make_router(self.maker, data["router"], key_path(path, "router"))
        options: dict[str, Any] = {}
        for key in BOOLEAN_KEYS:
            if key in data:
                flag = problems.boolean(key_path(path, key), data[key])
                if not isinstance(flag, Failed):
                    options[key] = flag
        if "inlet_concurrency" in data:
            value_ = data["inlet_concurrency"]
            if isinstance(value_, int) and not isinstance(value_, bool) and value_ >= 1:
                options["inlet_concurrency"] = value_
            else:
                problems.add(
                    key_path(path, "inlet_concurrency"),
                    f"must be an integer >= 1, got {describe(value_)}",
                )
        options.update(self._pull_retry(data, path, inlets))
        spec.options = dict(options)
        delivery = self.delivery_options(data, path, spec, outlets)
        if isinstance(router, Router) and built(outlets):
            try:
                router.check([o.name for o in outlets])
            except Exception as exc:
                problems.add(key_path(path, "router"), str(exc))
        if (
            len(problems) > before
            or isinstance(interval, Failed)
            or isinstance(router, Failed)
            or not built(inlets)
            or not built(outlets)
            or not built(processors)
            or not built(groupers)
        ):
            return None
        try:
            return Link(
                list(inlets),
                list(outlets),
                interval,
                tags=tags,
                processors=list(processors),
                groupers=list(groupers),
                router=router,
                **options,
                **delivery,
            )
        except Exception as exc:
            problems.add(path, f"{type(exc).__name__}: {exc}")
            return None

    def _interval(self, path: str, tags: list[str], data: dict[str, Any]) -> float | Cron | Failed:
        """The link's interval or Cron; a problem names the link, the expression and field."""
        tz = data.get("tz")
        if tz is not None and not isinstance(tz, str):
            self.problems.add(
                key_path(path, "tz"),
                f"must be a time zone name such as 'Europe/Berlin', got {describe(tz)}",
            )
            return FAILED
        if isinstance(tz, str):
            try:
                ZoneInfo(tz)
            except (ZoneInfoNotFoundError, ValueError, OSError):
                self.problems.add(
                    key_path(path, "tz"),
                    f"unknown time zone {tz!r} (an IANA name such as 'Europe/Berlin')",
                )
                return FAILED
        where = key_path(path, "interval")
        value = data["interval"]
        is_cron = isinstance(value, str) and value.strip().lower().startswith(CRON_PREFIX)
        if tz is not None and not is_cron:
            self.problems.add(
                key_path(path, "tz"), "only applies to a cron interval (interval = 'cron: ...')"
            )
            tz = None
        try:
            return parse_interval(value, tz)
        except ValueError as exc:
            name = (
                f"link {'.'.join(tags)!r}: " if tags and isinstance(exc, ConfigurationError) else ""
            )
            self.problems.add(where, f"{name}{exc}")
            return FAILED

    def _pull_retry(self, data: dict[str, Any], path: str, inlets: list[Any]) -> dict[str, Any]:
        """``pull_retry`` (every inlet) and ``inlet_retry`` ({inlet name: policy})."""
        options: dict[str, Any] = {}
        if "pull_retry" in data:
            options["pull_retry"] = self.queues.retry_policy(
                data["pull_retry"], key_path(path, "pull_retry")
            )
        if "inlet_retry" in data:
            where = key_path(path, "inlet_retry")
            names = [i.name for i in inlets if isinstance(i, Inlet)]
            policies = {}
            for name, value in self.problems.table(data["inlet_retry"], where).items():
                if name not in names:
                    self.problems.add(
                        key_path(where, name),
                        f"the link has no inlet named {name!r} (inlet names: "
                        f"{', '.join(names)}; set name = ... on an inlet to name it)",
                    )
                policies[name] = self.queues.retry_policy(value, key_path(where, name))
            options["inlet_retry"] = policies
        return options

    def _prepare_outlet(self, target: Any, kwargs: Arguments, path: str) -> Arguments | None:
        """An outlet's own ``processors`` are named like the link's."""
        if "processors" not in kwargs:
            return kwargs
        where = key_path(path, "processors")
        value = kwargs["processors"]
        items = value if isinstance(value, list) else [value]
        made = [
            self.maker.make(PROCESSOR, item, key_path(where, i)) for i, item in enumerate(items)
        ]
        return {**kwargs, "processors": made} if built(made) else None

    def delivery_options(
        self,
        data: dict[str, Any],
        path: str,
        spec: LinkSpec,
        outlets: list[Outlet | Failed],
    ) -> dict[str, Any]:
        """``queue=`` and the QueueDelivery options of one link (``queue`` FAILED on a problem)."""
        problems = self.problems
        queues = self.queues
        queue_value = data.get("queue", bool(queues.spec))
        options: dict[str, Any] = {}
        if queue_value is False:
            why = "this link has queue = false" if "queue" in data else "add a [queue] table"
            for key in ("retry", "outlet_retry", "delivery"):
                if key in data:
                    problems.add(key_path(path, key), f"only applies to a queued link; {why}")
            return options
        if not isinstance(queue_value, (bool, dict)):
            problems.add(
                key_path(path, "queue"),
                f"must be true, false or a queue table, got {describe(queue_value)}",
            )
            return {"queue": FAILED}
        if queue_value is True:
            if not queues.spec:
                problems.add(key_path(path, "queue"), "is true but the file has no [queue] table")
                return options
            queue = queues.shared()
            default_retry = queues.spec.get("retry")
        else:
            own = queues.table(queue_value, key_path(path, "queue"))
            queue = queues.make(own, key_path(path, "queue"))
            default_retry = own.get("retry", queues.spec.get("retry"))
        spec.queued = True
        options["queue"] = queue
        retry_value = data.get("retry", default_retry)
        if retry_value is not None:
            where = key_path(path, "retry") if "retry" in data else "queue.retry"
            options["retry"] = queues.retry_policy(retry_value, where)
        if "outlet_retry" in data:
            where = key_path(path, "outlet_retry")
            per_outlet = problems.table(data["outlet_retry"], where)
            outlet_names = [o.name for o in outlets if isinstance(o, Outlet)]
            policies = {}
            for name, value in per_outlet.items():
                if name not in outlet_names:
                    problems.add(
                        key_path(where, name),
                        f"the link has no outlet named {name!r} (outlet names: "
                        f"{', '.join(outlet_names)}; set name = ... on an outlet to name it)",
                    )
                policies[name] = queues.retry_policy(value, key_path(where, name))
            options["outlet_retry"] = policies
            if not built(list(policies.values())):
                options["queue"] = FAILED
        if "delivery" in data:
            extra = problems.table(data["delivery"], key_path(path, "delivery"))
            for key in extra:
                if key in ("queue", "retry", "outlet_retry"):
                    problems.add(
                        key_path(key_path(path, "delivery"), key), f"set {key!r} on the link itself"
                    )
                elif key not in DELIVERY_KEYS:
                    problems.add(
                        key_path(key_path(path, "delivery"), key),
                        f"unknown key (known keys: {', '.join(DELIVERY_KEYS)})",
                    )
            options.update({k: v for k, v in extra.items() if k in DELIVERY_KEYS})
            budget = options.get("drain_budget")
            if isinstance(budget, str):  # '30s'; numbers (0 too) are checked by the link
                where = key_path(key_path(path, "delivery"), "drain_budget")
                options["drain_budget"] = problems.check(where, budget, parse_duration)
        if any(v is FAILED for v in options.values()):
            return {**options, "queue": FAILED}
        return options
