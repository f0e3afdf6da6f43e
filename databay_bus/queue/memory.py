"""MemoryQueue: the reference RecordQueue, same semantics as SqliteQueue, nothing durable."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta

from databay_bus._clock import Clock
from databay_bus.errors import QueueError
from databay_bus.queue.base import (
    WAITING,
    DeliveryState,
    OutletStats,
    RecordQueue,
    StoredRun,
    new_queue_id,
)
from databay_bus.queue.cursors import CursorWrite, check_version
from databay_bus.records.codecs import Codec

__all__ = ["MemoryQueue"]

_PENDING = DeliveryState.PENDING.value
_FAILED = DeliveryState.FAILED.value
_DELIVERED = DeliveryState.DELIVERED.value
_DEAD = DeliveryState.DEAD.value


@dataclass
class _Stored:
    link: str
    codec: str
    data: bytes
    enqueued_at: float
    deliveries: int


@dataclass
class _Delivery:
    state: int
    attempts: int
    due_at: float
    updated_at: float
    error: str | None = None


class MemoryQueue(RecordQueue):
    """Keeps records in memory, encoded by the codec as a durable queue would store them.

    For tests and pipelines that need retries and per-outlet tracking but not durability:
    everything is lost when the process ends. One lock makes every method atomic.
    Arguments as for :class:`~databay_bus.queue.RecordQueue`.
    """

    def __init__(
        self,
        *,
        codec: Codec | None = None,
        clock: Clock | None = None,
        retention: float | timedelta | None = 86400.0,
        purge_interval: float | timedelta | None = 60.0,
    ) -> None:
        super().__init__(
            codec=codec, clock=clock, retention=retention, purge_interval=purge_interval
        )
        self._id = new_queue_id()
        self._lock = threading.Lock()
        self._records: dict[int, _Stored] = {}
        self._deliveries: dict[tuple[str, str], dict[int, _Delivery]] = {}
        self._last = 0
        self._closed = False
        self._cursors: dict[tuple[str, str], tuple[str, int, float]] = {}

    @property
    def queue_id(self) -> str:
        return self._id

    def _check_open(self) -> None:
        if self._closed:
            raise QueueError(f"{self!r} is closed")

    def _do_enqueue(
        self,
        link: str,
        codec: str,
        encoded: Sequence[bytes],
        targets: Sequence[Sequence[str]],
        now: float,
        cursors: Mapping[str, CursorWrite] | None = None,
    ) -> list[int]:
        with self._lock:
            self._check_open()
            if cursors:
                self._write_cursors(link, cursors, now)  # first: a conflict stores nothing
            numbers = []
            for data, names in zip(encoded, targets, strict=True):
                self._last += 1
                number = self._last
                numbers.append(number)
                outlets = dict.fromkeys(names)
                if not outlets:
                    continue  # nothing would ever read it
                self._records[number] = _Stored(link, codec, data, now, len(outlets))
                for outlet in outlets:
                    table = self._deliveries.setdefault((link, outlet), {})
                    table[number] = _Delivery(_PENDING, 0, now, now)
            return numbers

    def _do_due(self, link: str, outlet: str, limit: int, now: float) -> list[StoredRun]:
        with self._lock:
            self._check_open()
            table = self._deliveries.get((link, outlet), {})
            chosen = sorted(n for n, d in table.items() if d.state in WAITING and d.due_at <= now)[
                :limit
            ]
            runs: list[StoredRun] = []
            for number in chosen:
                stored = self._records[number]
                last = runs[-1] if runs else None
                if last and last.first + len(last.encoded) == number and last.codec == stored.codec:
                    last.encoded.append(stored.data)
                else:
                    runs.append(StoredRun(number, stored.codec, [stored.data]))
            return runs

    def _waiting_in(self, link: str, outlet: str, numbers: list[int]) -> list[_Delivery]:
        table = self._deliveries.get((link, outlet), {})
        found = (table.get(n) for n in dict.fromkeys(numbers))
        return [d for d in found if d is not None and d.state in WAITING]

    def _do_ack(self, link: str, outlet: str, numbers: list[int], now: float) -> int:
        with self._lock:
            self._check_open()
            waiting = self._waiting_in(link, outlet, numbers)
            for delivery in waiting:
                delivery.state, delivery.updated_at = _DELIVERED, now
            return len(waiting)

    def _do_fail(
        self,
        link: str,
        outlet: str,
        numbers: list[int],
        error: str,
        now: float,
        next_delay: Callable[[int], float | None],
    ) -> tuple[int, list[int]]:
        with self._lock:
            self._check_open()
            retrying = 0
            dead: list[int] = []
            delays: dict[int, float | None] = {}  # one retry time per attempt count
            table = self._deliveries.get((link, outlet), {})
            for number in dict.fromkeys(numbers):
                delivery = table.get(number)
                if delivery is None or delivery.state not in WAITING:
                    continue
                delivery.attempts += 1
                if delivery.attempts not in delays:
                    delays[delivery.attempts] = next_delay(delivery.attempts)
                delay = delays[delivery.attempts]
                delivery.error, delivery.updated_at = error, now
                if delay is None:
                    delivery.state = _DEAD
                    dead.append(number)
                else:
                    delivery.state, delivery.due_at = _FAILED, now + delay
                    retrying += 1
            return retrying, dead

    def _do_waiting(self, link: str) -> int:
        with self._lock:
            self._check_open()
            numbers: set[int] = set()
            for (row_link, _), table in self._deliveries.items():
                if row_link == link:
                    numbers.update(n for n, d in table.items() if d.state in WAITING)
            return len(numbers)

    def _do_waiting_outlets(self, link: str) -> list[str]:
        with self._lock:
            self._check_open()
            return [
                outlet
                for (row_link, outlet), table in self._deliveries.items()
                if row_link == link and any(d.state in WAITING for d in table.values())
            ]

    def _do_stats(self, now: float) -> tuple[list[OutletStats], int]:
        with self._lock:
            self._check_open()
            result = []
            for (link, outlet), table in self._deliveries.items():
                if not table:
                    continue
                counts = dict.fromkeys((_PENDING, _FAILED, _DELIVERED, _DEAD), 0)
                oldest: float | None = None
                for number, delivery in table.items():
                    counts[delivery.state] += 1
                    if delivery.state in WAITING:
                        enqueued = self._records[number].enqueued_at
                        oldest = enqueued if oldest is None else min(oldest, enqueued)
                result.append(
                    OutletStats(
                        link,
                        outlet,
                        counts[_PENDING] + counts[_FAILED],
                        counts[_FAILED],
                        counts[_DELIVERED],
                        counts[_DEAD],
                        None if oldest is None else max(0.0, now - oldest),
                    )
                )
            return result, len(self._records)

    def _matching(
        self, link: str | None, outlet: str | None, numbers: list[int] | None, states: set[int]
    ) -> list[tuple[tuple[str, str], int, _Delivery]]:
        wanted = None if numbers is None else set(numbers)
        found = []
        for key, table in self._deliveries.items():
            if (link is not None and key[0] != link) or (outlet is not None and key[1] != outlet):
                continue
            for number, delivery in table.items():
                if delivery.state in states and (wanted is None or number in wanted):
                    found.append((key, number, delivery))
        found.sort(key=lambda item: (item[1], item[0]))
        return found

    def _do_dead_letters(
        self, link: str | None, outlet: str | None, limit: int | None
    ) -> list[tuple[int, str, bytes, str, str, int, str | None, float]]:
        with self._lock:
            self._check_open()
            found = self._matching(link, outlet, None, {_DEAD})
            if limit is not None:
                found = found[:limit]
            return [
                (
                    number,
                    self._records[number].codec,
                    self._records[number].data,
                    key[0],
                    key[1],
                    d.attempts,
                    d.error,
                    d.updated_at,
                )
                for key, number, d in found
            ]

    def _do_waiting_records(
        self, link: str | None, outlet: str | None, limit: int | None
    ) -> list[tuple[int, str, bytes, str, str, int, int, float, str | None]]:
        with self._lock:
            self._check_open()
            found = self._matching(link, outlet, None, set(WAITING))
            if limit is not None:
                found = found[: max(0, limit)]
            return [
                (
                    number,
                    self._records[number].codec,
                    self._records[number].data,
                    key[0],
                    key[1],
                    d.state,
                    d.attempts,
                    d.due_at,
                    d.error,
                )
                for key, number, d in found
            ]

    def _do_delivered_records(
        self, link: str | None, outlet: str | None, after: tuple[int, str], limit: int
    ) -> list[tuple[int, str, bytes, str, str, int, float]]:
        with self._lock:
            self._check_open()
            found = [
                (number, key, d)
                for key, number, d in self._matching(link, outlet, None, {_DELIVERED})
                if (number, key[1]) > after
            ]
            found.sort(key=lambda item: (item[0], item[1][1]))
            return [
                (
                    number,
                    self._records[number].codec,
                    self._records[number].data,
                    key[0],
                    key[1],
                    d.attempts,
                    d.updated_at,
                )
                for number, key, d in found[: max(0, limit)]
            ]

    def _do_codecs(self) -> Iterable[str]:
        with self._lock:
            self._check_open()
            return {stored.codec for stored in self._records.values()}

    def _do_replay(
        self, link: str | None, outlet: str | None, numbers: list[int] | None, now: float
    ) -> int:
        with self._lock:
            self._check_open()
            found = self._matching(link, outlet, numbers, {_DEAD})
            for _, _, delivery in found:
                delivery.state, delivery.attempts = _PENDING, 0
                delivery.due_at = delivery.updated_at = now
            return len(found)

    def _do_drop(
        self,
        link: str | None,
        outlet: str | None,
        numbers: list[int] | None,
        states: frozenset[int],
    ) -> int:
        with self._lock:
            self._check_open()
            found = self._matching(link, outlet, numbers, set(states))
            self._delete(found)
            return len(found)

    def _delete(self, found: list[tuple[tuple[str, str], int, _Delivery]]) -> None:
        for key, number, _ in found:
            del self._deliveries[key][number]
            stored = self._records[number]
            stored.deliveries -= 1
            if stored.deliveries <= 0:
                del self._records[number]

    def _do_purge(self, before: float) -> int:
        with self._lock:
            self._check_open()
            found = [
                item
                for item in self._matching(None, None, None, {_DELIVERED})
                if item[2].updated_at < before
            ]
            self._delete(found)
            return len(found)

    def _do_close(self) -> None:
        with self._lock:
            self._closed = True

    def _do_enqueue_with_cursors(
        self,
        link: str,
        codec: str,
        encoded: Sequence[bytes],
        targets: Sequence[Sequence[str]],
        now: float,
        cursors: Mapping[str, CursorWrite],
    ) -> list[int]:
        return self._do_enqueue(link, codec, encoded, targets, now, cursors)

    def _do_read_cursors(
        self, link: str | None, inlet: str | None
    ) -> list[tuple[str, str, str, int, float]]:
        with self._lock:
            self._check_open()
            return [
                (row_link, row_inlet, text, version, updated_at)
                for (row_link, row_inlet), (text, version, updated_at) in sorted(
                    self._cursors.items()
                )
                if (link is None or row_link == link) and (inlet is None or row_inlet == inlet)
            ]

    def _do_write_cursors(self, link: str, cursors: Mapping[str, CursorWrite], now: float) -> None:
        with self._lock:
            self._check_open()
            self._write_cursors(link, cursors, now)

    def _write_cursors(self, link: str, cursors: Mapping[str, CursorWrite], now: float) -> None:
        versions = {}
        for inlet, write in cursors.items():  # check them all before changing any
            stored = self._cursors.get((link, inlet))
            versions[inlet] = check_version(link, inlet, stored[1] if stored else 0, write)
        for inlet, write in cursors.items():
            if write.text is None:
                self._cursors.pop((link, inlet), None)
            else:
                self._cursors[(link, inlet)] = (write.text, versions[inlet], now)

    def __repr__(self) -> str:
        return f"MemoryQueue(id={self._id!r})"
