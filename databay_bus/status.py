"""PipelineStatus: what a running pipeline is doing, as one typed, JSON-ready structure.

One shape for every reader and every source:

* a running planner makes it (:func:`planner_status`);
* a planner whose links use a queue that can keep it (SqliteQueue) records it there every few
  seconds (``RecordQueue.record_status``), so ``databay-bus status --queue FILE`` reads it
  beside the running process with a read-only queue, and fills in the queue's live counts;
* a process's status endpoint (the web interface) can serve :meth:`PipelineStatus.as_dict`
  and a client rebuild it with :meth:`PipelineStatus.from_dict`, which ignores keys it does
  not know, so both sides can grow.

Times are seconds since the epoch (UTC); counts are totals since the process started.
"""

from __future__ import annotations

import json
import os
import socket
import time
from dataclasses import dataclass, field, fields, replace
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from databay_bus._clock import Clock, SystemClock

if TYPE_CHECKING:
    from databay_bus.planners.base import BasePlanner
    from databay_bus.queue.base import QueueStats

__all__ = [
    "STATUS_INTERVAL",
    "LinkStatus",
    "OutletStatus",
    "PipelineStatus",
    "planner_status",
    "process_name",
]

#: Seconds between two status records a running planner writes into its queues.
STATUS_INTERVAL = 5.0


def process_name() -> str:
    """``'pid 4242 on host'``: names this process in status records."""
    return f"pid {os.getpid()} on {socket.gethostname()}"


def _known(cls: type[Any], data: dict[str, Any]) -> dict[str, Any]:
    names = _FIELD_NAMES[cls]
    return {k: v for k, v in data.items() if k in names}


@dataclass(frozen=True)
class OutletStatus:
    """One outlet of a link: what it took, how often it failed, what waits for it."""

    name: str
    pushed: int = 0
    failures: int = 0
    pending: int | None = None  #: None: the link has no queue
    retrying: int | None = None
    dead: int | None = None


@dataclass(frozen=True)
class LinkStatus:
    """One link: its state, last and next transfer, counts and failing nodes.

    ``state`` is ``'ok'``, ``'failing'`` (its last transfer failed or a node of it is
    failing), ``'paused'``, or the planner's state when it is not running (``'stopped'``...).
    ``failing`` names what fails now: ``'transfer'``, ``'on_start'``, or node names (an outlet
    whose deliveries wait for a retry, a node that is not started).
    """

    id: str
    tags: tuple[str, ...] = ()
    state: str = "ok"
    interval: float | None = None
    transfers: int = 0
    failures: int = 0
    skipped: int = 0
    records_pulled: int = 0
    records_pushed: int = 0
    last_transfer_at: float | None = None
    next_transfer_at: float | None = None
    last_error: str | None = None
    pending: int | None = None
    dead: int | None = None
    failing: tuple[str, ...] = ()
    outlets: tuple[OutletStatus, ...] = ()

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LinkStatus:
        """Rebuild from :meth:`PipelineStatus.as_dict`'s link entries (unknown keys ignored)."""
        values = _known(cls, data)
        values["tags"] = tuple(values.get("tags") or ())
        values["failing"] = tuple(values.get("failing") or ())
        values["outlets"] = tuple(
            OutletStatus(**_known(OutletStatus, o)) for o in values.get("outlets") or ()
        )
        return cls(**values)


@dataclass(frozen=True)
class PipelineStatus:
    """A snapshot of one process's planner and its links.

    ``source`` says where it was read (``'queue /srv/q.sqlite3'``, a URL, ``'planner'``);
    ``updated_at`` when the process made it. A reader decides from ``updated_at`` whether
    the process still runs (see :meth:`is_stale`).
    """

    process: str
    planner: str
    state: str
    updated_at: float
    links: tuple[LinkStatus, ...] = ()
    interval: float = STATUS_INTERVAL  #: seconds between two records of a running process
    source: str = field(default="", compare=False)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form (tuples become lists)."""
        data: dict[str, Any] = {f.name: getattr(self, f.name) for f in fields(self)}
        names = _FIELD_NAMES[LinkStatus]  # fields() per link would double the cost
        data["links"] = [
            {
                **{name: getattr(link, name) for name in names},
                "tags": list(link.tags),
                "failing": list(link.failing),
                "outlets": [vars(o).copy() for o in link.outlets],
            }
            for link in self.links
        ]
        return data

    def to_json(self) -> str:
        """:meth:`as_dict` as JSON, encoded without building it first: with 100,000 links
        its dicts would all be alive at once (and set off full garbage collections)."""
        return json.dumps(self, separators=(",", ":"), default=_jsonable)

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "") -> PipelineStatus:
        """Rebuild from :meth:`as_dict` (or a status endpoint's JSON); unknown keys ignored."""
        values = _known(cls, data)
        values["links"] = tuple(LinkStatus.from_dict(x) for x in values.get("links") or ())
        values["source"] = source or values.get("source", "")
        values.setdefault("updated_at", time.time())  # a live endpoint's answer is of now
        for name in ("process", "planner", "state"):
            values.setdefault(name, "?")
        return cls(**values)

    def is_stale(self, now: float) -> bool:
        """True when the process missed three of its records: it no longer runs."""
        return now - self.updated_at > 3 * self.interval + 5

    def with_queue_counts(self, stats: QueueStats) -> PipelineStatus:
        """The same with pending/retrying/dead taken from ``stats`` (fresher than the record),
        for links whose ``id`` is their queue key."""
        counts = _QueueCounts(stats)
        links = []
        for link in self.links:
            if link.id not in counts.links:
                links.append(link)
                continue
            outlets = []
            for o in link.outlets:
                pending, retrying, dead = counts.of(link.id, o.name)
                outlets.append(replace(o, pending=pending, retrying=retrying, dead=dead))
            pending, _, dead = counts.of(link.id)
            links.append(replace(link, pending=pending, dead=dead, outlets=tuple(outlets)))
        return replace(self, links=tuple(links))


class _QueueCounts:
    """One queue's stats summed per link and per (link, outlet) in one pass: a status of
    100,000 links on one queue then looks each up instead of scanning every row per link."""

    def __init__(self, stats: QueueStats) -> None:
        self.links: dict[str, list[int]] = {}
        self._outlets: dict[tuple[str, str], list[int]] = {}
        for row in stats.outlets:
            for total in (
                self.links.setdefault(row.link, [0, 0, 0]),
                self._outlets.setdefault((row.link, row.outlet), [0, 0, 0]),
            ):
                total[0] += row.pending
                total[1] += row.retrying
                total[2] += row.dead

    def of(self, link: str, outlet: str | None = None) -> tuple[int, int, int]:
        """(pending, retrying, dead) of ``link``, or of one of its outlets; zeros if none."""
        found = self.links.get(link) if outlet is None else self._outlets.get((link, outlet))
        return (0, 0, 0) if found is None else (found[0], found[1], found[2])


#: Each status class's field names, in order (``fields()`` is slow to call per link).
_FIELD_NAMES: dict[type[Any], tuple[str, ...]] = {
    cls: tuple(f.name for f in fields(cls)) for cls in (OutletStatus, LinkStatus, PipelineStatus)
}


def _jsonable(value: Any) -> Any:
    """``default`` of :meth:`PipelineStatus.to_json`: each status object as the dict
    :meth:`PipelineStatus.as_dict` has for it (tuples are encoded as lists); else ``str``.
    A frozen dataclass's ``__dict__`` holds exactly its fields, in order (``__init__`` sets
    them so): encoding it as it is halves the time of a 100,000-link status."""
    if isinstance(value, (PipelineStatus, LinkStatus, OutletStatus)):
        return vars(value)
    return str(value)


def _interval(link: Any) -> float | None:
    schedule = getattr(link, "interval", None)
    if isinstance(schedule, timedelta):
        return schedule.total_seconds()
    if isinstance(schedule, (int, float)) and not isinstance(schedule, bool):
        return float(schedule)
    return None


def _next_run(job: Any) -> float | None:
    """When the scheduler's ``job`` runs next, if it says."""
    for name in ("next_run_time", "next_run"):  # APScheduler's job, schedule's job
        job_next = getattr(job, name, None)
        if job_next is not None and hasattr(job_next, "timestamp"):
            return float(job_next.timestamp())
    return None


def planner_status(planner: BasePlanner, clock: Clock | None = None) -> PipelineStatus:
    """The status of ``planner`` and its links, now.

    Reads each distinct queue's stats once (not once per link, as ``planner.metrics()``
    does), and each distinct job's next run once (the built-in planners run a group of
    links as one job), so it stays cheap for planners with many links (100,000: ~0.5 s).
    """
    clock = clock or SystemClock()
    running = planner.running
    planner_state = str(planner.state.value)
    streaks = getattr(planner, "_streaks", None)
    stats: dict[int, _QueueCounts] = {}
    next_runs: dict[int, float | None] = {}  # id(job) -> its next run
    links = []
    for link in planner.links:
        transfers, failures, skipped, pulled, pushed, last, counts = link.metrics.counts()
        key = getattr(getattr(link, "_delivery", None), "key", None)
        queue = link.queue
        queue_stats = None
        if queue is not None and isinstance(key, str):
            if id(queue) not in stats:
                stats[id(queue)] = _QueueCounts(queue.stats())
            queue_stats = stats[id(queue)]
        tags = link.tags
        link_id = key if isinstance(key, str) else ".".join(tags) or f"link-{id(link):x}"
        failing: list[str] = []
        if streaks is not None:
            if streaks.failing(("transfer", id(link))):
                failing.append("transfer")
            if streaks.failing(("start", id(link))):
                failing.append("on_start")
        outlets = []
        for outlet in link.outlets:
            pushed_to, failed_to = counts.get(outlet.name, (0, 0))
            pending = retrying = dead = None
            if queue_stats is not None:
                pending, retrying, dead = queue_stats.of(link_id, outlet.name)
                if retrying:
                    failing.append(outlet.name)
            outlets.append(OutletStatus(outlet.name, pushed_to, failed_to, pending, retrying, dead))
        if running:
            failing.extend(
                node.name
                for node in (*link.inlets, *link.outlets)
                if not node.active and node.name not in failing
            )
        interval = _interval(link)
        state = ("failing" if failing else "ok") if running else planner_state
        next_at = None
        if running:
            job = getattr(link, "job", None)
            if id(job) not in next_runs:
                next_runs[id(job)] = _next_run(job)
            next_at = next_runs[id(job)]
            if next_at is None and last is not None and interval is not None:
                next_at = last + interval
        links.append(
            LinkStatus(
                id=link_id,
                tags=tuple(tags),
                state=state,
                interval=interval,
                transfers=transfers,
                failures=failures,
                skipped=skipped,
                records_pulled=pulled,
                records_pushed=pushed,
                last_transfer_at=last,
                next_transfer_at=next_at,
                pending=None if queue_stats is None else queue_stats.of(link_id)[0],
                dead=None if queue_stats is None else queue_stats.of(link_id)[2],
                failing=tuple(failing),
                outlets=tuple(outlets),
            )
        )
    return PipelineStatus(
        process=process_name(),
        planner=type(planner).__name__,
        state=planner_state,
        updated_at=clock.time(),
        links=tuple(links),
        source="planner",
    )
