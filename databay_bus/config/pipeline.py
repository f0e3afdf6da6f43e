"""Pipeline: what a pipeline file built, and a bounded or signal-ended way to run it."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from databay_bus._secrets import shown
from databay_bus.config.links import LinkSpec
from databay_bus.config.queues import close_quietly
from databay_bus.link import Link
from databay_bus.observers import Event, Observer, TransferCompleted
from databay_bus.planners.base import BasePlanner, PlannerState
from databay_bus.queue.base import RecordQueue
from databay_bus.schedules import Cron

__all__ = ["Pipeline", "status_line"]

_LOGGER = logging.getLogger(__name__)
NEXT_FIRES = 3  # fire times ``validate`` shows per cron link


def status_line(entry: dict[str, Any]) -> str:
    """One line of ``planner.metrics()['links'][i]``: transfers, records, pending, dead."""
    name = ".".join(entry.get("tags") or []) or "link"
    parts = [
        f"transfers={entry.get('transfers', 0)}",
        f"failures={entry.get('failures', 0)}",
        f"pulled={entry.get('records_pulled', 0)}",
        f"pushed={entry.get('records_pushed', 0)}",
    ]
    pulls = entry.get("pulls")
    if isinstance(pulls, dict) and pulls.get("pull_failures"):
        parts.append(f"pull_failures={pulls['pull_failures']}")
    queue = entry.get("queue")
    if isinstance(queue, dict):
        parts.append(f"pending={queue.get('pending', 0)}")
        parts.append(f"dead={queue.get('dead', 0)}")
    last = entry.get("last_duration")
    if isinstance(last, (int, float)):
        parts.append(f"last={last:.3f}s")
    return f"{name}: {' '.join(parts)}"


class _TransferCounter(Observer):
    """Sets ``done`` once every link has completed at least ``target`` transfers."""

    def __init__(self, links: list[Link], target: int, done: threading.Event) -> None:
        self.counts = {id(link): 0 for link in links}
        self.target = target
        self.done = done

    def notify(self, event: Event) -> None:
        if isinstance(event, TransferCompleted) and id(event.link) in self.counts:
            self.counts[id(event.link)] += 1
            if all(n >= self.target for n in self.counts.values()):
                self.done.set()


@dataclass
class Pipeline:
    """A planner with its links, queues and observers, built from a pipeline file.

    ``planner`` is ready to start (``pipeline.planner.start()``), or use :meth:`run`.
    """

    planner: BasePlanner
    links: list[Link]
    queues: list[RecordQueue] = field(default_factory=list)
    observers: list[Callable[[Event], None]] = field(default_factory=list)
    log_level: int | None = None
    source: str = "<pipeline>"
    planner_spec: tuple[str, dict[str, Any]] = ("aps", {})
    queue_spec: dict[str, Any] = field(default_factory=dict)
    link_specs: list[LinkSpec] = field(default_factory=list)
    #: Values of ``${VARIABLES}`` that hold secrets: :meth:`describe` masks them.
    secrets: frozenset[str] = frozenset()
    #: ``planner.metrics()`` taken by :meth:`run` after shutdown, before closing the queues.
    final_metrics: dict[str, Any] | None = None
    #: The file's ``[web]`` table (a ``databay_bus.web.settings.WebSettings``), or None.
    web: Any = None

    def configure_logging(self, level: int | None = None) -> None:
        """Set the ``databay_bus`` logger to ``level``, or to the file's ``log_level``."""
        chosen = self.log_level if level is None else level
        if chosen is not None:
            logging.getLogger("databay_bus").setLevel(chosen)

    def run(
        self,
        *,
        duration: float | None = None,
        transfers: int | None = None,
        stop: threading.Event | None = None,
        status_interval: float | None = None,
        status: Callable[[str], None] | None = None,
        shutdown_timeout: float | None = None,
    ) -> str:
        """Start the planner, wait, shut it down gracefully and close the queues.

        Args:
            duration: stop after this many seconds.
            transfers: stop once every link has completed at least this many transfers.
            stop: set it (from a signal handler, another thread) to stop.
            status_interval: every so many seconds, report one status line per link.
            status: where status lines go; INFO on this module's logger by default.
            shutdown_timeout: wait at most this many seconds for transfers in flight when
                stopping (see ``BasePlanner.shutdown``); None waits as long as they take.

        Returns:
            Why it stopped: ``'duration'``, ``'transfers'``, ``'stopped'`` (``stop`` was set)
            or ``'failed'`` (the planner did not start, or shut itself down after an error).
        """
        stop = stop if stop is not None else threading.Event()
        report = status or (lambda line: _LOGGER.info("%s", line))
        enough = threading.Event()
        counter = None
        if transfers is not None:
            counter = _TransferCounter(self.links, transfers, enough)
            self.planner.add_observer(counter)
        started = time.monotonic()
        reason = "failed"
        try:
            self.planner.start(block=False)
            next_status = started + status_interval if status_interval else None
            while self.planner.state is PlannerState.RUNNING:
                if stop.is_set():
                    reason = "stopped"
                    break
                if enough.is_set():
                    reason = "transfers"
                    break
                now = time.monotonic()
                if duration is not None and now - started >= duration:
                    reason = "duration"
                    break
                if next_status is not None and now >= next_status:
                    self.report_status(report)
                    next_status = now + (status_interval or 0)
                stop.wait(0.05)
        finally:
            self.planner.shutdown(wait=True, timeout=shutdown_timeout)
            self.planner.flush_observers(timeout=10)
            if counter is not None:
                self.planner.remove_observer(counter)
            try:
                self.final_metrics = self.planner.metrics()
            finally:
                self.close()
        return reason

    def report_status(self, report: Callable[[str], None]) -> None:
        """Pass one status line per link to ``report``."""
        for entry in self.planner.metrics()["links"]:
            report(status_line(entry))

    def close(self) -> None:
        """Close the pipeline's queues (safe to call more than once)."""
        for queue in self.queues:
            close_quietly(queue)

    def describe(self) -> str:
        """A readable account of the resolved pipeline (secrets masked), for ``validate``."""
        kind, options = self.planner_spec
        lines = [f"pipeline {self.source}"]
        lines.append(
            f"  planner: {type(self.planner).__name__} ({kind}){_args(options, self.secrets)}"
        )
        if self.log_level is not None:
            lines.append(f"  log level: {logging.getLevelName(self.log_level)}")
        if self.queue_spec:
            lines.append(f"  queue: {_args(self.queue_spec, self.secrets).strip()}")
        for observer in self.observers:
            lines.append(f"  observer: {_name_of(observer)}")
        for spec in self.link_specs:
            name = ".".join(spec.tags) or f"links[{spec.index}]"
            every = (
                f"on {spec.interval}"
                if isinstance(spec.interval, Cron)
                else f"every {spec.interval:g}s"
            )
            lines.append(f"  link {name!r} {every}" + (" (queued)" if spec.queued else ""))
            if isinstance(spec.interval, Cron):
                fires = spec.interval.next_times(NEXT_FIRES)
                shown_fires = ", ".join(spec.interval.local_text(fire) for fire in fires)
                lines.append(f"    next: {shown_fires or 'none (the schedule has ended)'}")
            for what in ("inlets", "processors", "groupers", "outlets"):
                for type_name, args in getattr(spec, what):
                    lines.append(f"    {what[:-1]}: {type_name}{_args(args, self.secrets)}")
            if spec.router is not None:
                lines.append(f"    router: {spec.router[0]}{_args(spec.router[1], self.secrets)}")
            if spec.options:
                lines.append(f"    options:{_args(spec.options, self.secrets)}")
        return "\n".join(lines)


def _name_of(obj: object) -> str:
    return getattr(obj, "__qualname__", None) or type(obj).__name__


def _args(args: dict[str, Any], secrets: frozenset[str] = frozenset()) -> str:
    return "".join(f" {key}={shown(key, value, secrets)}" for key, value in args.items())
