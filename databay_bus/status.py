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
    names = {f.name for f in fields(cls)}
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
        data["links"] = [
            {
                **{f.name: getattr(link, f.name) for f in fields(link)},
                "tags": list(link.tags),
                "failing": list(link.failing),
                "outlets": [vars(o).copy() for o in link.outlets],
            }
            for link in self.links
        ]
        return data

    def to_json(self) -> str:
        return json.dumps(self.as_dict(), separators=(",", ":"), default=str)

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
        keys = {s.link for s in stats.outlets}
        links = []
        for link in self.links:
            if link.id not in keys:
                links.append(link)
                continue
            outlets = tuple(
                replace(
                    o,
                    pending=stats.pending(link.id, o.name),
                    retrying=sum(
                        s.retrying for s in stats.outlets if (s.link, s.outlet) == (link.id, o.name)
                    ),
                    dead=stats.dead(link.id, o.name),
                )
                for o in link.outlets
            )
            links.append(
                replace(
                    link,
                    pending=stats.pending(link.id),
                    dead=stats.dead(link.id),
                    outlets=outlets,
                )
            )
        return replace(self, links=tuple(links))


def _interval(link: Any) -> float | None:
    schedule = getattr(link, "interval", None)
    if isinstance(schedule, timedelta):
        return schedule.total_seconds()
    if isinstance(schedule, (int, float)) and not isinstance(schedule, bool):
        return float(schedule)
    return None


def _next_run(link: Any, last: float | None, interval: float | None) -> float | None:
    job = getattr(link, "job", None)
    for name in ("next_run_time", "next_run"):  # APScheduler's job, schedule's job
        job_next = getattr(job, name, None)
        if job_next is not None and hasattr(job_next, "timestamp"):
            return float(job_next.timestamp())
    if last is not None and interval is not None:
        return last + interval
    return None


def planner_status(planner: BasePlanner, clock: Clock | None = None) -> PipelineStatus:
    """The status of ``planner`` and its links, now.

    Reads each distinct queue's stats once (not once per link, as ``planner.metrics()``
    does), so it stays cheap for planners with thousands of links.
    """
    clock = clock or SystemClock()
    running = planner.running
    planner_state = str(planner.state.value)
    streaks = getattr(planner, "_streaks", None)
    stats: dict[int, QueueStats] = {}
    links = []
    for link in planner.links:
        entry = link.metrics.as_dict()
        key = getattr(getattr(link, "_delivery", None), "key", None)
        queue = link.queue
        queue_stats = None
        if queue is not None and isinstance(key, str):
            if id(queue) not in stats:
                stats[id(queue)] = queue.stats()
            queue_stats = stats[id(queue)]
        link_id = key if isinstance(key, str) else ".".join(link.tags) or f"link-{id(link):x}"
        failing: list[str] = []
        if streaks is not None:
            if streaks.failing(("transfer", id(link))):
                failing.append("transfer")
            if streaks.failing(("start", id(link))):
                failing.append("on_start")
        counts = entry.get("outlets") or {}
        outlets = []
        for outlet in link.outlets:
            mine = counts.get(outlet.name, {})
            pending = retrying = dead = None
            if queue_stats is not None:
                rows = [s for s in queue_stats.outlets if (s.link, s.outlet) == (key, outlet.name)]
                pending = sum(s.pending for s in rows)
                retrying = sum(s.retrying for s in rows)
                dead = sum(s.dead for s in rows)
                if retrying:
                    failing.append(outlet.name)
            outlets.append(
                OutletStatus(
                    outlet.name,
                    mine.get("pushed", 0),
                    mine.get("failures", 0),
                    pending,
                    retrying,
                    dead,
                )
            )
        if running:
            failing.extend(
                node.name
                for node in (*link.inlets, *link.outlets)
                if not node.active and node.name not in failing
            )
        interval = _interval(link)
        last = entry.get("last_transfer_at")
        state = ("failing" if failing else "ok") if running else planner_state
        links.append(
            LinkStatus(
                id=link_id,
                tags=tuple(link.tags),
                state=state,
                interval=interval,
                transfers=entry.get("transfers", 0),
                failures=entry.get("failures", 0),
                skipped=entry.get("skipped", 0),
                records_pulled=entry.get("records_pulled", 0),
                records_pushed=entry.get("records_pushed", 0),
                last_transfer_at=last,
                next_transfer_at=_next_run(link, last, interval) if running else None,
                pending=None if queue_stats is None else queue_stats.pending(key),
                dead=None if queue_stats is None else queue_stats.dead(key),
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
