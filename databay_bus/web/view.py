"""What the pages and the JSON API show, as plain JSON-serialisable dicts.

Every page and every ``/api/`` endpoint reads through :class:`PipelineView`, and nothing else
touches the planner or its queues. That is the seam for several hosts (docs/web.md): a view
reading the shared PostgreSQL database (node registry, heartbeats, run history of every
process) can replace this one, which reads the local planner, its queues' read-only
inspection API (``stats()``, ``dead_letters()``) and the run history.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

from databay_bus.link import Link
from databay_bus.observers import (
    DeliveryFailed,
    Event,
    Observer,
    TransferCompleted,
    TransferFailed,
    TransferStarted,
)
from databay_bus.status import PipelineStatus, planner_status
from databay_bus.web.control import Control
from databay_bus.web.history import RunHistory, link_label

__all__ = ["LinkStatus", "PipelineView", "StatusObserver"]


class LinkStatus:
    """What the last transfer of a link said: failing or not, and the last error."""

    __slots__ = ("failing", "failing_now", "last_error", "last_error_at", "last_ok_at")

    def __init__(self) -> None:
        self.failing = False  # the last finished transfer failed (or an outlet of it did)
        self.failing_now = False  # the transfer running now has failed somewhere
        self.last_error: str | None = None
        self.last_error_at: float | None = None
        self.last_ok_at: float | None = None


class StatusObserver(Observer):
    """Tracks per link whether its last transfer failed (an outlet failing counts)."""

    def __init__(self) -> None:
        self.status: dict[int, LinkStatus] = {}
        self._lock = threading.Lock()

    def of(self, link: Link) -> LinkStatus:
        """The status of ``link`` (a fresh one if it never transferred)."""
        with self._lock:
            status = self.status.get(id(link))
            if status is None:
                status = self.status[id(link)] = LinkStatus()
            return status

    def notify(self, event: Event) -> None:
        link = getattr(event, "link", None)
        if link is None:
            return
        status = self.of(link)
        if isinstance(event, TransferStarted):
            status.failing_now = False
        elif isinstance(event, DeliveryFailed):
            status.failing_now = True
            status.last_error = f"{event.outlet}: {type(event.exception).__name__}: " + str(
                event.exception
            )
            status.last_error_at = event.at
        elif isinstance(event, TransferFailed):
            status.failing = True
            status.last_error = f"{type(event.exception).__name__}: {event.exception}"
            status.last_error_at = event.at
        elif isinstance(event, TransferCompleted):
            status.failing = event.failed or status.failing_now
            if not status.failing:
                status.last_ok_at = event.at


def _when(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(epoch))


class PipelineView:
    """Reads the planner, its queues and the run history for pages and the API."""

    def __init__(
        self,
        planner: Any,
        history: RunHistory,
        status: StatusObserver,
        control: Control,
        alias: str,
    ) -> None:
        self.planner = planner
        self.history = history
        self.status = status
        self.control = control
        self.alias = alias
        self.process = history.process

    # -- links ------------------------------------------------------------------------------

    def link_ids(self) -> list[tuple[str, Link]]:
        """Each link with its id in URLs: as ``PipelineStatus`` names it (its queue key, else
        its tags joined by dots), made unique with ``~2``, ``~3``... for repeated tags."""
        seen: dict[str, int] = {}
        result = []
        for link in self.planner.links:
            key = getattr(link._delivery, "key", None)
            base = key if isinstance(key, str) and link.queue is not None else link_label(link)
            base = base if link.tags or isinstance(key, str) else "link"
            count = seen.get(base, 0) + 1
            seen[base] = count
            result.append((base if count == 1 else f"{base}~{count}", link))
        return result

    def find(self, link_id: str) -> Link | None:
        """The link with this id, or None."""
        for candidate, link in self.link_ids():
            if candidate == link_id:
                return link
        return None

    def _queues(self) -> Iterator[Any]:
        seen: set[int] = set()
        for link in self.planner.links:
            queue = link.queue
            if queue is not None and id(queue) not in seen:
                seen.add(id(queue))
                yield queue

    def _link_statuses(self) -> tuple[PipelineStatus, list[tuple[str, Link, dict[str, Any]]]]:
        """``planner_status()`` (databay_bus.status, the shape ``databay-bus status`` reads)
        and, per link, its URL id, the Link and its status entry."""
        for _ in range(3):  # links added or removed between the two reads: read again
            ids = self.link_ids()
            status = planner_status(self.planner)
            entries = status.as_dict()["links"]
            if [tuple(link.tags) for _, link in ids] == [tuple(e["tags"]) for e in entries]:
                break
        return status, [(i, link, e) for (i, link), e in zip(ids, entries, strict=False)]

    def overview(self) -> dict[str, Any]:
        """The overview page: ``PipelineStatus.as_dict()`` with what the pages add (alias,
        pauses, last errors, processes sharing the queue)."""
        status, links = self._link_statuses()
        data: dict[str, Any] = status.as_dict()
        data.update(
            alias=self.alias,
            nodes=self.nodes(),
            paused=self.control.planner_paused,
            links=[self._summary(link_id, link, entry) for link_id, link, entry in links],
        )
        return data

    def nodes(self) -> list[dict[str, Any]]:
        """The processes sharing this pipeline's queues (a PostgresQueue's node registry:
        host, pid, start, last heartbeat, alive), newest heartbeat first; [] without one."""
        found = []
        for queue in self._queues():
            registry = getattr(queue, "nodes", None)
            if not callable(registry):
                continue
            for node in registry():
                started, seen = node.started_at.timestamp(), node.seen_at.timestamp()
                found.append(
                    {
                        "node": node.node,
                        "host": node.host,
                        "pid": node.pid,
                        "started_at": started,
                        "started": _when(started),
                        "seen_at": seen,
                        "seen": _when(seen),
                        "alive": node.alive,
                        "queue": repr(queue),
                    }
                )
        return found

    def _summary(self, link_id: str, link: Link, entry: dict[str, Any]) -> dict[str, Any]:
        """A status entry of ``planner_status()`` with the pages' additions."""
        observed = self.status.of(link)
        schedule = link.interval
        interval = entry.get("interval")
        state = entry["state"]
        if self.planner.running:
            if self.control.planner_paused or self.control.is_paused(link):
                state = "paused"
            elif observed.failing:  # the last transfer, or an outlet of it, failed
                state = "failing"
        last, next_at = entry.get("last_transfer_at"), entry.get("next_transfer_at")
        if link.job is None:
            next_at = None
        return {
            **entry,
            "id": link_id,
            "tags": link.tags,
            "state": state,
            "schedule": f"every {interval:g}s" if interval is not None else str(schedule),
            "queued": link.queue is not None,
            "last_duration": link.metrics.last_duration,
            "last_transfer": _when(last),
            "next_transfer_at": next_at,
            "next_transfer": _when(next_at),
            "last_error": observed.last_error,
            "last_error_at": observed.last_error_at,
        }

    def link_detail(self, link_id: str) -> dict[str, Any] | None:
        """The link page: summary, nodes, router, recent transfers; None if unknown."""
        for candidate, link, entry in self._link_statuses()[1]:
            if candidate != link_id:
                continue
            summary = self._summary(candidate, link, entry)
            summary["nodes"] = [
                {
                    "kind": kind,
                    "name": node.name,
                    "type": type(node).__name__,
                    "active": node.active,
                }
                for kind, nodes in (("inlet", link.inlets), ("outlet", link.outlets))
                for node in nodes
            ]
            summary["router"] = None if link.router is None else repr(link.router)
            summary["cursors"] = self.cursors(link)
            summary["recent"] = [
                self._run(e.as_dict()) for e in self.history.recent(link_label(link), 50)
            ]
            return summary
        return None

    @staticmethod
    def cursors(link: Link) -> list[dict[str, Any]]:
        """Each inlet's committed cursor (docs/cursors.md): value, its JSON, version, when;
        value, version and time are None for an inlet without one."""
        rows = []
        for name in dict.fromkeys(inlet.name for inlet in link.inlets):
            stored = link.cursor(name)
            at = None if stored is None else stored.updated_at
            rows.append(
                {
                    "inlet": name,
                    "value": None if stored is None else stored.value,
                    "json": None if stored is None else json.dumps(stored.value),
                    "version": None if stored is None else stored.version,
                    "updated_at": at,
                    "updated": _when(at),
                }
            )
        return rows

    def history_page(self, link: str | None, limit: int) -> list[dict[str, Any]]:
        """Run history, newest first."""
        return [self._run(e.as_dict()) for e in self.history.recent(link, limit)]

    @staticmethod
    def _run(entry: dict[str, Any]) -> dict[str, Any]:
        entry["finished"] = _when(entry["finished_at"])
        return entry

    # -- dead letters -----------------------------------------------------------------------

    def _queue_of_key(self) -> dict[str, Any]:
        """Queue key -> (queue, link id) for queued links."""
        result = {}
        for link_id, link in self.link_ids():
            key = getattr(link._delivery, "key", None)
            if link.queue is not None and key is not None:
                result[key] = (link.queue, link_id)
        return result

    def dead_letters(
        self,
        link: str | None = None,
        outlet: str | None = None,
        search: str | None = None,
        limit: int = 500,
    ) -> list[dict[str, Any]]:
        """Dead letters of every queue, newest first, filtered; ``search`` matches the
        error text, the record id and the payload (case-insensitive)."""
        letters = []
        needle = (search or "").lower()
        for key, (queue, link_id) in self._queue_of_key().items():
            if link is not None and link != link_id:
                continue
            for letter in queue.dead_letters(key, outlet):
                payload = None if letter.record is None else letter.record.payload
                row = {
                    "id": letter.id,
                    "link": link_id,
                    "outlet": letter.outlet,
                    "attempts": letter.attempts,
                    "last_error": letter.last_error,
                    "failed_at": letter.failed_at,
                    "failed": _when(letter.failed_at),
                    "payload": payload,
                    "metadata": None if letter.record is None else letter.record.metadata,
                }
                if needle and not any(
                    needle in str(value).lower()
                    for value in (letter.last_error, letter.id, payload)
                ):
                    continue
                letters.append(row)
        letters.sort(key=lambda row: (row["failed_at"], row["id"]), reverse=True)
        return letters[:limit]

    def settle_dead(self, action: str, letters: list[dict[str, Any]]) -> int:
        """Replay or drop the given dead letters (rows of :meth:`dead_letters`)."""
        by_queue: dict[int, tuple[Any, str, list[str]]] = {}
        queues = self._queue_of_key()
        keys = {link_id: (queue, key) for key, (queue, link_id) in queues.items()}
        for row in letters:
            queue, key = keys[row["link"]]
            by_queue.setdefault(id(queue), (queue, key, []))[2].append(row["id"])
        done = 0
        for queue, key, ids in by_queue.values():
            if action == "replay":
                done += queue.replay(link=key, ids=ids)
            else:
                done += queue.drop(link=key, ids=ids)
        return done

    def export_rows(self, what: str, link: str | None) -> Iterator[dict[str, Any]]:
        """Rows of dead letters, of waiting deliveries or of delivered ones still kept
        (``what``: dead, pending, delivered), one at a time."""
        if what == "dead":
            yield from self.dead_letters(link, limit=10**9)
            return
        rows = _delivered_rows if what == "delivered" else _waiting_rows
        for key, (queue, link_id) in self._queue_of_key().items():
            if link is not None and link != link_id:
                continue
            yield from rows(queue, key, link_id)


def _waiting_rows(queue: Any, key: str, link_id: str) -> Iterator[dict[str, Any]]:
    """Waiting deliveries of one link (retrying ones included), read without changing the
    queue (``RecordQueue.waiting_records``; a backend without it raises QueueError)."""
    for entry in queue.waiting_records(link=key):
        yield _entry_row(entry, link_id, last_error=entry.last_error)


def _delivered_rows(queue: Any, key: str, link_id: str) -> Iterator[dict[str, Any]]:
    """Delivered deliveries of one link still kept (``RecordQueue.delivered_records``, read
    in chunks; a backend without it raises QueueError)."""
    for entry in queue.delivered_records(link=key):
        yield _entry_row(entry, link_id, delivered_at=entry.delivered_at)


def _entry_row(entry: Any, link_id: str, **fields: Any) -> dict[str, Any]:
    """One exported queue entry: id, link, outlet, attempts, ``fields``, then the record."""
    record = entry.record
    return {
        "id": entry.id,
        "link": link_id,
        "outlet": entry.outlet,
        "attempts": entry.attempts,
        **fields,
        "payload": None if record is None else record.payload,
        "metadata": None if record is None else record.metadata,
    }
