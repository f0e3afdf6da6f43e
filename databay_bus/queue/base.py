"""RecordQueue: the contract every record queue backend keeps.

A record queue stores each record a link pulled, with one *delivery* per outlet that must
receive it, and tracks every delivery on its own::

    PENDING ──push ok──► DELIVERED ──retention──► purged
       │  ▲
     fail │ retry time reached (due again)
       ▼  │
     FAILED ──max_attempts reached──► DEAD ──replay──► PENDING
                                        └───drop───► removed

Public methods are concrete: they read the clock, encode and decode through the codec and
check arguments, then call the abstract ``_do_*`` methods, which see only bytes, integer
ids and an explicit ``now``. A backend implements those (see :class:`MemoryQueue` for the
reference) and must make each of them atomic: either all of its effect is stored or none.

Two sides:

* **Delivery** (changes rows): :meth:`RecordQueue.enqueue`, ``due``, ``ack``, ``fail``,
  ``replay``, ``drop``, ``purge``. ``due`` dead-letters records it cannot decode, so it is
  a change too: inspection never lists through it.
* **Inspection** (never changes a row): ``stats``, ``dead_letters``, ``waiting_records``,
  ``delivered_records``, ``stored_codecs``, ``waiting``, ``waiting_outlets``, ``queue_id``.
  A backend that can be opened beside a running writer offers a read-only mode (``SqliteQueue(path,
  read_only=True)``): its ``read_only`` is True, it takes no lock, creates nothing, and every
  delivery-side method raises :class:`~databay_bus.errors.QueueReadOnlyError` before
  touching storage. Inspection decodes each record with the codec it was stored with when
  that codec executes no code on load (JSON), or the queue's own codec; a record it cannot
  decode is shown with ``record=None`` and ``decode_error`` naming the codec it needs.

Storage failures raise :class:`~databay_bus.errors.QueueStorageError` subclasses naming the
storage and the cause (full, permission, corrupt); a backend that finds its storage corrupt
refuses new records.

Order under retries (both built-in backends): per (link, outlet), ``due`` hands out the
deliveries due now in enqueue order. A failed delivery waits for its retry time while later
records that are due are handed out: they overtake it. Deliveries that fail in one ``fail``
call with the same attempt count share one retry time, so a failed batch comes back
together and in its order.
"""

from __future__ import annotations

import abc
import enum
import gc
import itertools
import logging
import math
import operator
import secrets
import threading
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from types import TracebackType
from typing import Any, NamedTuple

from databay_bus._clock import Clock, SystemClock
from databay_bus._validation import optional_seconds
from databay_bus._validation import text as checked_text
from databay_bus.errors import (
    ConfigurationError,
    QueueError,
    QueueKeyError,
    QueueReadOnlyError,
    RecordEncodeError,
    describe,
)
from databay_bus.queue.cursors import (
    ANY_VERSION,
    CursorWrite,
    StoredCursor,
    decode_cursor,
    encode_cursor,
)
from databay_bus.records import Record
from databay_bus.records.codecs import Codec, JsonCodec, default_codec, encode_record
from databay_bus.records.record import stored_records

__all__ = [
    "DeadLetter",
    "DeliveredRecord",
    "DeliveryState",
    "FailResult",
    "OutletStats",
    "QueueStats",
    "RecordQueue",
    "StoredRecord",
    "StoredRun",
    "WaitingRecord",
    "new_queue_id",
]

_LOGGER = logging.getLogger(__name__)


class FailResult(tuple[int, int]):
    """What :meth:`RecordQueue.fail` did: ``(retrying, dead)`` counts, as a tuple compares,
    and ``dead_ids``, the ids of the records that died of this failure."""

    dead_ids: tuple[str, ...]

    def __new__(cls, retrying: int, dead_ids: Sequence[str]) -> FailResult:
        result = super().__new__(cls, (retrying, len(dead_ids)))
        result.dead_ids = tuple(dead_ids)
        return result

    @property
    def retrying(self) -> int:
        """How many deliveries were scheduled again."""
        return self[0]

    @property
    def dead(self) -> int:
        """How many deliveries were dead-lettered."""
        return self[1]


class DeliveryState(enum.Enum):
    """The state of one record's delivery to one outlet (the value is what backends store)."""

    PENDING = 0  #: waiting for its first push
    FAILED = 1  #: a push failed; due again at its retry time
    DELIVERED = 2  #: the outlet accepted it; kept until the retention period has passed
    DEAD = 3  #: failed max_attempts times; kept until replayed or dropped


# Delivered entries read per backend call by RecordQueue.delivered_records.
_DELIVERED_CHUNK = 500

#: States whose deliveries still wait for a push.
WAITING = (DeliveryState.PENDING.value, DeliveryState.FAILED.value)


class StoredRecord(NamedTuple):
    """A record as backends return it."""

    id: int
    codec: str
    data: bytes


class StoredRun(NamedTuple):
    """Stored records numbered ``first``, ``first + 1``, ... as backends return them."""

    first: int
    codec: str
    encoded: list[bytes]

    def records(self) -> list[StoredRecord]:
        return [StoredRecord(self.first + i, self.codec, d) for i, d in enumerate(self.encoded)]


@dataclass(frozen=True)
class OutletStats:
    """Delivery counts of one link's outlet.

    ``oldest_pending_age`` is the age in seconds of the oldest record still waiting for
    this outlet (None when nothing waits). ``pending`` counts PENDING and FAILED deliveries.
    """

    link: str
    outlet: str
    pending: int
    retrying: int
    delivered: int
    dead: int
    oldest_pending_age: float | None


@dataclass(frozen=True)
class QueueStats:
    """A snapshot of a queue: one :class:`OutletStats` per (link, outlet), and stored records."""

    outlets: tuple[OutletStats, ...]
    records: int

    def _select(self, link: str | None, outlet: str | None) -> list[OutletStats]:
        return [
            s
            for s in self.outlets
            if (link is None or s.link == link) and (outlet is None or s.outlet == outlet)
        ]

    def pending(self, link: str | None = None, outlet: str | None = None) -> int:
        """Deliveries still waiting (PENDING or FAILED), optionally for one link/outlet."""
        return sum(s.pending for s in self._select(link, outlet))

    def dead(self, link: str | None = None, outlet: str | None = None) -> int:
        """Dead-lettered deliveries, optionally for one link/outlet."""
        return sum(s.dead for s in self._select(link, outlet))

    def oldest_pending_age(
        self, link: str | None = None, outlet: str | None = None
    ) -> float | None:
        """Age in seconds of the oldest waiting record, or None."""
        ages = [s.oldest_pending_age for s in self._select(link, outlet)]
        known = [age for age in ages if age is not None]
        return max(known) if known else None

    def as_dict(self) -> dict[str, Any]:
        """JSON-serialisable form: ``{'records': n, 'outlets': [{...}, ...]}``."""
        return {"records": self.records, "outlets": [vars(s).copy() for s in self.outlets]}


@dataclass(frozen=True)
class DeadLetter:
    """A dead delivery: the record (None if it cannot be decoded here) and why it died.

    ``decode_error`` says why ``record`` is None (e.g. the codec it was stored with).
    """

    id: str
    link: str
    outlet: str
    record: Record | None
    attempts: int
    last_error: str | None
    failed_at: float
    decode_error: str | None = None


@dataclass(frozen=True)
class WaitingRecord:
    """A delivery still waiting (PENDING or FAILED), as inspection lists it.

    ``due_at`` is when it is due (its retry time for a FAILED one); ``record`` is None when
    it cannot be decoded here, and ``decode_error`` says why.
    """

    id: str
    link: str
    outlet: str
    state: DeliveryState
    record: Record | None
    attempts: int
    due_at: float
    last_error: str | None
    decode_error: str | None = None


@dataclass(frozen=True)
class DeliveredRecord:
    """A delivered delivery still kept (until the queue's retention purges it).

    ``delivered_at`` is when it was acked; ``record`` is None when it cannot be decoded
    here, and ``decode_error`` says why.
    """

    id: str
    link: str
    outlet: str
    record: Record | None
    attempts: int
    delivered_at: float
    decode_error: str | None = None


class RecordQueue(abc.ABC):
    """Durable store between a link's pull and its pushes; at-least-once per outlet.

    Guarantees every implementation keeps:

    * :meth:`enqueue` is atomic: all records of the call, with one PENDING delivery per
      target outlet, are stored, or nothing is. Once it returns they survive a crash
      (for a durable backend) and each has a stable id ``'<queue id>-<n>'``, increasing in
      enqueue order and never reused by this queue.
    * :meth:`due` returns, per (link, outlet), the deliveries whose time has come (PENDING,
      or FAILED with a retry time <= now) in enqueue order; it changes nothing, so a record
      handed out but never acked (crash, lost push) is due again: delivery is at least once.
    * :meth:`ack` and :meth:`fail` only touch waiting deliveries of that (link, outlet);
      acking twice or acking a dead delivery changes nothing.
    * Deliveries of one outlet never hold back another's.
    * Inlet cursors given to :meth:`enqueue` are stored in the same transaction as its
      records (or, without records, in one of their own), each only if its stored version
      is still the one the writer read (see :mod:`databay_bus.queue.cursors`).
    * Every method is safe to call from several threads at once.

    * Per (link, outlet), records due together are handed out in enqueue order; a failed
      batch retries together (see the module docstring for the order under retries).
    * A queue key (the link's name in the queue) belongs to one link at a time:
      :meth:`claim_key` refuses a second live link with :class:`QueueKeyError`.

    Args:
        codec: how payloads and metadata become bytes (default:
            :func:`~databay_bus.records.codecs.default_codec`, i.e. :class:`OrjsonCodec`
            when orjson is installed, else :class:`JsonCodec`; the same format either way).
        clock: the time source (default the system clock; tests pass a FakeClock).
        retention: seconds (or a timedelta) a DELIVERED entry is kept before :meth:`purge`
            removes it; None keeps them forever.
        purge_interval: how often, in seconds, a running planner calls :meth:`purge`;
            None never.
    """

    #: True for a queue opened for inspection only (see the module docstring).
    read_only: bool = False

    def __init__(
        self,
        *,
        codec: Codec | None = None,
        clock: Clock | None = None,
        retention: float | timedelta | None = 86400.0,
        purge_interval: float | timedelta | None = 60.0,
    ) -> None:
        owner = type(self).__name__
        self.codec: Codec = default_codec() if codec is None else codec
        if not callable(getattr(self.codec, "encode", None)) or not isinstance(
            getattr(self.codec, "name", None), str
        ):
            raise ConfigurationError(f"{owner}: codec must be a Codec, got {describe(codec)}")
        self.clock: Clock = SystemClock() if clock is None else clock
        self.retention = optional_seconds(retention, "retention", owner)
        if self.retention is not None and not math.isfinite(self.retention):
            raise ConfigurationError(
                f"{owner}: retention must be finite seconds or None (keep forever), "
                f"got {describe(retention)}"
            )
        interval = optional_seconds(purge_interval, "purge_interval", owner)
        if interval is not None and not (0 < interval < math.inf):
            raise ConfigurationError(
                f"{owner}: purge_interval must be finite seconds > 0 or None (never), "
                f"got {describe(purge_interval)}"
            )
        self.purge_interval = interval
        self._keys: dict[str, weakref.ref[object]] = {}
        self._keys_lock = threading.Lock()
        # (link, outlet) -> the ids due() handed out last and their numbers, so that acking
        # them, or a run of them, does not parse the ids again; dropped once the run that
        # ends the batch is settled. An id's number never changes: the cache cannot be
        # stale. (A dict of every id handed out lately cost more to fill than parsing the
        # ids, measured at 1,000 records per transfer.)
        self._handed_out: dict[tuple[str, str], tuple[list[str], Sequence[int]]] = {}
        # (link, first number, ids) of the last enqueue that stored all its records, until
        # due(known=) uses them: it finds those records without making their ids again.
        self._enqueued: tuple[str, int, list[str]] | None = None

    # -- identity ---------------------------------------------------------------------------

    @property
    @abc.abstractmethod
    def queue_id(self) -> str:
        """A random string fixed when the queue (file) was created; prefixes record ids."""

    def _record_id(self, number: int) -> str:
        return f"{self.queue_id}-{number}"

    def claim_key(self, key: str, owner: object) -> None:
        """Reserve ``key`` for ``owner`` (a link) on this queue.

        Deliveries are stored per key: two links with one key would deliver each other's
        records. The claim lasts while ``owner`` lives or until :meth:`release_key`.

        Raises:
            QueueKeyError: another live owner holds ``key``.
        """
        with self._keys_lock:
            held = self._keys.get(key)
            if held is not None and held() not in (None, owner):
                gc.collect()  # a replaced link may only wait for the collector
            holder = None if held is None else held()
            if holder is not None and holder is not owner:
                shown = str(holder)
                del holder  # the traceback must not keep the other link alive
                raise QueueKeyError(
                    f"{self!r}: queue key {key!r} is already used by {shown}; two links on "
                    f"one queue need different keys (tags, or key=...), else each delivers "
                    f"the other's records"
                )
            self._keys[key] = weakref.ref(owner)

    def release_key(self, key: str, owner: object) -> None:
        """Give up ``owner``'s claim on ``key`` (nothing if it holds none)."""
        with self._keys_lock:
            held = self._keys.get(key)
            if held is not None and held() in (owner, None):
                del self._keys[key]

    def _check_writable(self, action: str) -> None:
        if self.read_only:
            raise QueueReadOnlyError(
                f"{self!r} is open read-only (for inspection); {action} changes the queue"
            )

    def _settled_numbers(self, link: str, outlet: str, ids: Iterable[str | None]) -> list[int]:
        """The numbers of ``ids`` being acked or failed."""
        ids = ids if isinstance(ids, list) else list(ids)
        handed = self._handed_out.get((link, outlet))
        if handed is not None and ids:
            handed_ids, numbers = handed
            try:  # usually the batch due() handed out, or a run of it
                start = handed_ids.index(ids[0])  # type: ignore[arg-type]
            except ValueError:
                pass
            else:
                end = start + len(ids)
                if handed_ids[start:end] == ids:
                    if end == len(handed_ids):  # its last run: the batch is settled, let go
                        self._handed_out.pop((link, outlet), None)
                    return list(numbers[start:end])
        return self._numbers(ids, strict=False)

    def _numbers(self, ids: Iterable[str | None], strict: bool) -> list[int]:
        """Turn record ids of this queue back into numbers; others raise or are skipped."""
        prefix = self.queue_id + "-"
        ids = ids if isinstance(ids, list) else list(ids)
        cut = len(prefix)
        try:  # the fast path, in C: every id is '<prefix><digits>'
            tails = list(map(operator.itemgetter(slice(cut, None)), ids))
            if (
                all(tails)
                and "".join(tails).isdecimal()
                and all(map(prefix.__eq__, map(operator.itemgetter(slice(None, cut)), ids)))
            ):
                return list(map(int, tails))
        except TypeError:  # an id that is not a str
            pass
        numbers = []
        for record_id in ids:
            if isinstance(record_id, str) and record_id.startswith(prefix):
                tail = record_id[len(prefix) :]
                if tail.isdecimal():
                    numbers.append(int(tail))
                    continue
            if strict:
                raise ConfigurationError(
                    f"{self!r}: {describe(record_id)} is not a record id of this queue"
                )
            _LOGGER.warning("%r: ignoring %r, not a record id of this queue", self, record_id)
        return numbers

    # -- the delivery cycle -----------------------------------------------------------------

    def enqueue(
        self,
        link: str,
        records: Sequence[Record],
        targets: Sequence[Sequence[str]],
        *,
        on_encode_error: Callable[[Record, RecordEncodeError], None] | None = None,
        cursors: Mapping[str, CursorWrite] | None = None,
    ) -> list[str | None]:
        """Store ``records`` with a PENDING delivery to each name in ``targets[i]``, atomically.

        Args:
            link: the link's stable key.
            records: the records, in order.
            targets: for each record, the names of the outlets that must receive it.
            on_encode_error: called for each record the codec cannot store, which is then
                left out; without it the first such record raises before anything is stored.
            cursors: ``{inlet name: CursorWrite}``, stored in the same transaction as the
                records (an idle pull may move a cursor with no records at all).

        Returns:
            Each record's new id, or None for a record left out.

        Raises:
            RecordEncodeError: a record the codec cannot store (nothing was stored).
            CursorConflictError: a cursor moved since it was read (nothing was stored).
            QueueError: the backend failed (nothing was stored).
        """
        self._check_writable("enqueue")
        if len(records) != len(targets):
            raise ConfigurationError(
                f"{self!r}: enqueue got {len(records)} records but {len(targets)} target lists"
            )
        self._check_targets(targets)
        codec = self.codec
        encode_records = getattr(codec, "encode_records", None)
        kept: list[int] | None = None  # indexes of the records stored; None: all of them
        try:  # the fast path: every record encodes
            if encode_records is not None:
                encoded: list[bytes] = encode_records(records)
            else:
                encode = codec.encode
                encoded = [encode(r.payload, r.metadata) for r in records]
        except Exception:  # find the bad records again, one by one, to report them
            encoded, kept = [], []
            for index, record in enumerate(records):
                try:
                    encoded.append(encode_record(codec, record.payload, record.metadata))
                except RecordEncodeError as exc:
                    if on_encode_error is None:
                        raise
                    on_encode_error(record, exc)
                    continue
                kept.append(index)
            targets = [targets[index] for index in kept]
        if cursors:
            now = self.clock.time()
            if encoded:
                numbers = self._do_enqueue_with_cursors(
                    link, codec.name, encoded, targets, now, cursors
                )
            else:
                numbers = []
                self._do_write_cursors(link, cursors, now)
        else:
            numbers = (
                self._do_enqueue(link, codec.name, encoded, targets, self.clock.time())
                if encoded
                else []
            )
        prefix = self.queue_id + "-"
        if kept is None:
            made = [prefix + str(number) for number in numbers]
            if numbers:
                self._enqueued = link, numbers[0], made
            return made  # type: ignore[return-value]
        ids: list[str | None] = [None] * len(records)
        for index, number in zip(kept, numbers, strict=True):
            ids[index] = prefix + str(number)
        return ids

    def _check_targets(self, targets: Sequence[Sequence[str]]) -> None:
        """Each target list must be a sequence of outlet names (not a str, which would
        name one outlet per character)."""
        if targets and all(map(operator.is_, targets, itertools.repeat(targets[0]))):
            targets = targets[:1]  # the usual case: one list object serves every record
        checked: set[int] = set()
        for names in targets:
            if id(names) in checked:
                continue
            if isinstance(names, (str, bytes)) or not all(isinstance(n, str) for n in names):
                raise ConfigurationError(
                    f"{self!r}: each target must be a list of outlet names, got {describe(names)}"
                )
            checked.add(id(names))

    def due(
        self,
        link: str,
        outlet: str,
        limit: int,
        known: Mapping[str, Record] | None = None,
    ) -> list[Record]:
        """Up to ``limit`` records whose delivery to ``outlet`` is due now, in enqueue order.

        Each is a fresh :class:`Record` (decoded from storage) carrying its ``id``. A stored
        record this queue's codec cannot decode is dead-lettered at once (logged as ERROR)
        rather than blocking the outlet.

        Args:
            known: records the caller holds already, by id (those it just enqueued): when
                every due record is among them, they are returned instead of being decoded
                again (the queued delivery's fast path; decoding is most of a large batch).
        """
        self._check_writable("due (it dead-letters what it cannot decode)")
        if limit < 1:
            return []
        runs = self._do_due(link, outlet, limit, self.clock.time())
        if not runs:
            return []
        name, prefix = self.codec.name, self.queue_id + "-"
        if known:
            numbers: Sequence[int] = (
                range(runs[0].first, runs[0].first + len(runs[0].encoded))
                if len(runs) == 1
                else [n for run in runs for n in range(run.first, run.first + len(run.encoded))]
            )
            ids = self._enqueued_ids(link, numbers)
            if ids is None:
                ids = [prefix + str(number) for number in numbers]
            found = list(map(known.get, ids))
            if all(found):  # a Record is always true, a missing one None
                self._handed_out[link, outlet] = ids, numbers
                return found  # type: ignore[return-value]
        decode_many = getattr(self.codec, "decode_many", None)
        if decode_many is not None and all(run.codec == name for run in runs):
            try:  # the fast path: every record decodes
                decoded = decode_many(
                    runs[0].encoded if len(runs) == 1 else [d for run in runs for d in run.encoded]
                )
            except Exception:
                pass  # find the broken ones below
            else:
                numbers = [
                    number
                    for run in runs
                    for number in range(run.first, run.first + len(run.encoded))
                ]
                ids = [prefix + str(number) for number in numbers]
                self._handed_out[link, outlet] = ids, numbers
                return stored_records(decoded, ids)
        records = []
        broken: list[tuple[int, str]] = []
        for item in (item for run in runs for item in run.records()):
            try:
                payload, metadata = self._decoder(item).decode(item.data)
            except Exception as exc:
                broken.append((item.id, f"{type(exc).__name__}: {exc}"))
            else:
                records.append(Record(payload, metadata, id=prefix + str(item.id)))
        for number, reason in broken:
            _LOGGER.error(
                "%r: record %s for outlet %r of link %r cannot be decoded; dead-lettered: %s",
                self,
                self._record_id(number),
                outlet,
                link,
                reason,
            )
            self._do_fail(link, outlet, [number], reason, self.clock.time(), lambda _n: None)
        return records

    def _enqueued_ids(self, link: str, numbers: Sequence[int]) -> list[str] | None:
        """The ids of ``numbers`` (increasing) if they are exactly what the last enqueue
        stored for ``link``; that enqueue's ids are then let go."""
        enqueued = self._enqueued
        if enqueued is None or enqueued[0] != link:
            return None
        self._enqueued = None
        _, first, ids = enqueued
        count = len(numbers)
        if numbers[0] == first and numbers[-1] == first + count - 1 and len(ids) == count:
            return ids
        return None

    def ack(self, link: str, outlet: str, ids: Iterable[str | None]) -> int:
        """Mark the deliveries of ``ids`` to ``outlet`` DELIVERED; returns how many changed."""
        self._check_writable("ack")
        numbers = self._settled_numbers(link, outlet, ids)
        if not numbers:
            return 0
        return self._do_ack(link, outlet, numbers, self.clock.time())

    def fail(
        self,
        link: str,
        outlet: str,
        ids: Iterable[str | None],
        error: BaseException | str,
        next_delay: Callable[[int], float | None],
    ) -> FailResult:
        """Record a failed attempt for each delivery of ``ids`` to ``outlet``.

        Args:
            next_delay: given a delivery's number of failed attempts so far (this one
                included), the seconds until its next attempt, or None to dead-letter it
                (e.g. :meth:`RetryPolicy.next_delay`). It is called once per distinct
                attempt count among the deliveries: those with the same count share one
                retry time, so a failed batch comes back together, in order.

        Returns:
            ``(retrying, dead)``: how many deliveries were scheduled again, how many died;
            its ``dead_ids`` name the records that died.
        """
        self._check_writable("fail")
        numbers = self._settled_numbers(link, outlet, ids)
        if not numbers:
            return FailResult(0, ())
        text = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
        retrying, dead = self._do_fail(
            link, outlet, numbers, text[:2000], self.clock.time(), next_delay
        )
        return FailResult(retrying, [self._record_id(number) for number in dead])

    def waiting(self, link: str) -> int:
        """How many records of ``link`` still wait for at least one outlet (for backpressure)."""
        return self._do_waiting(link)

    def waiting_outlets(self, link: str) -> list[str]:
        """Names of the outlets that have deliveries of ``link`` still waiting, sorted."""
        return sorted(self._do_waiting_outlets(link))

    def claim_tick(self, link: str, tick: float) -> bool:
        """May this process run the scheduled tick ``tick`` (its fire time, epoch seconds) of
        ``link``? A queue shared by processes answers True to exactly one caller per tick and
        never for a tick older than one already claimed; a one-process queue always True."""
        return True

    # -- operations -------------------------------------------------------------------------

    def stats(self) -> QueueStats:
        """Counts per (link, outlet) and the number of stored records."""
        outlets, records = self._do_stats(self.clock.time())
        ordered = sorted(outlets, key=lambda s: (s.link, s.outlet))
        return QueueStats(tuple(ordered), records)

    def dead_letters(
        self, link: str | None = None, outlet: str | None = None, limit: int | None = None
    ) -> list[DeadLetter]:
        """Dead deliveries in enqueue order, optionally of one link and/or outlet."""
        letters = []
        for row in self._do_dead_letters(link, outlet, limit):
            number, codec, data, row_link, row_outlet, attempts, last_error, failed_at = row
            record, problem = self._inspect(StoredRecord(number, codec, data))
            letters.append(
                DeadLetter(
                    self._record_id(number),
                    row_link,
                    row_outlet,
                    record,
                    attempts,
                    last_error,
                    failed_at,
                    problem,
                )
            )
        return letters

    def waiting_records(
        self, link: str | None = None, outlet: str | None = None, limit: int | None = None
    ) -> list[WaitingRecord]:
        """Waiting (PENDING or FAILED) deliveries in enqueue order, retrying ones included,
        optionally of one link and/or outlet. Changes nothing (unlike :meth:`due`)."""
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int)):
            raise ConfigurationError(
                f"{self!r}: limit must be an int or None, got {describe(limit)}"
            )
        found = []
        for row in self._do_waiting_records(link, outlet, limit):
            number, codec, data, row_link, row_outlet, state, attempts, due_at, error = row
            record, problem = self._inspect(StoredRecord(number, codec, data))
            found.append(
                WaitingRecord(
                    self._record_id(number),
                    row_link,
                    row_outlet,
                    DeliveryState(state),
                    record,
                    attempts,
                    due_at,
                    error,
                    problem,
                )
            )
        return found

    def delivered_records(
        self, link: str | None = None, outlet: str | None = None, limit: int | None = None
    ) -> Iterator[DeliveredRecord]:
        """Delivered deliveries still kept (not yet purged), in enqueue order, optionally of
        one link and/or outlet. Read a chunk at a time, so a long history is never held in
        memory at once; changes nothing."""
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int)):
            raise ConfigurationError(
                f"{self!r}: limit must be an int or None, got {describe(limit)}"
            )
        return self._delivered_chunks(link, outlet, limit)

    def _delivered_chunks(
        self, link: str | None, outlet: str | None, limit: int | None
    ) -> Iterator[DeliveredRecord]:
        left = None if limit is None else max(0, limit)
        after: tuple[int, str] = (0, "")
        while left is None or left > 0:
            size = _DELIVERED_CHUNK if left is None else min(_DELIVERED_CHUNK, left)
            rows = self._do_delivered_records(link, outlet, after, size)
            for number, codec, data, row_link, row_outlet, attempts, delivered_at in rows:
                record, problem = self._inspect(StoredRecord(number, codec, data))
                yield DeliveredRecord(
                    self._record_id(number),
                    row_link,
                    row_outlet,
                    record,
                    attempts,
                    delivered_at,
                    problem,
                )
            if len(rows) < size:
                return
            after = (rows[-1][0], rows[-1][4])
            if left is not None:
                left -= len(rows)

    def stored_codecs(self) -> set[str]:
        """Names of the codecs the stored records were written with."""
        return set(self._do_codecs())

    def undecodable_codecs(self) -> set[str]:
        """Codecs of stored records that this queue cannot decode (see :meth:`_decoder`)."""
        return {name for name in self.stored_codecs() if self._codec_for(name) is None}

    def replay(
        self,
        link: str | None = None,
        outlet: str | None = None,
        ids: Iterable[str] | None = None,
    ) -> int:
        """Make dead deliveries PENDING again, due now, with their attempts reset.

        Selects by link, outlet and/or record ids (all given filters apply; none selects
        every dead delivery). Returns how many were revived.
        """
        self._check_writable("replay")
        numbers = None if ids is None else self._numbers(self._ids(ids), strict=True)
        return self._do_replay(link, outlet, numbers, self.clock.time())

    def drop(
        self,
        link: str | None = None,
        outlet: str | None = None,
        ids: Iterable[str] | None = None,
        states: Iterable[DeliveryState] = (DeliveryState.DEAD,),
    ) -> int:
        """Delete deliveries (by default only dead ones) matching the filters; returns how many.

        Records left without deliveries are deleted too. Pass
        ``states=(DeliveryState.PENDING, DeliveryState.FAILED)`` with ``outlet=`` to give up
        on an outlet that was removed from its link.
        """
        self._check_writable("drop")
        chosen = frozenset(DeliveryState(s).value for s in states)
        numbers = None if ids is None else self._numbers(self._ids(ids), strict=True)
        return self._do_drop(link, outlet, numbers, chosen)

    def purge(self) -> int:
        """Delete DELIVERED entries older than ``retention`` (and records left without any).

        Returns how many deliveries were deleted. Safe to call while links transfer.
        """
        self._check_writable("purge")
        if self.retention is None:
            return 0
        return self._do_purge(self.clock.time() - self.retention)

    # -- inlet cursors ----------------------------------------------------------------------

    def cursor(self, link: str, inlet: str) -> StoredCursor | None:
        """The committed cursor of ``inlet`` in ``link``, or None if none was committed."""
        self._cursor_key(link, inlet)
        for _, _, text, version, updated_at in self._do_read_cursors(link, inlet):
            return StoredCursor(decode_cursor(text), version, updated_at)
        return None

    def cursors(self, link: str | None = None) -> dict[tuple[str, str], StoredCursor]:
        """Every committed cursor (of ``link``, or of all links), by (link, inlet name)."""
        return {
            (row_link, inlet): StoredCursor(decode_cursor(text), version, updated_at)
            for row_link, inlet, text, version, updated_at in self._do_read_cursors(link, None)
        }

    def set_cursor(
        self, link: str, inlet: str, value: object, *, expected: int = ANY_VERSION
    ) -> None:
        """Store ``value`` as the cursor of ``inlet`` in ``link`` (the operator's override).

        Do it while the link does not run: a running pull would overwrite it, or be refused.

        Raises:
            CursorError: ``value`` is not JSON-storable.
            CursorConflictError: ``expected`` is given and the stored version differs.
        """
        self._cursor_key(link, inlet)
        text = encode_cursor(value, f"{link}/{inlet}")
        self._do_write_cursors(link, {inlet: CursorWrite(text, expected)}, self.clock.time())

    def _cursor_key(self, link: object, inlet: object) -> None:
        """Refuse a link key or inlet name that is not a non-empty string."""
        checked_text(link, "the link key of a cursor", self)
        checked_text(inlet, "the inlet name of a cursor", self)

    def reset_cursor(self, link: str, inlet: str, *, expected: int = ANY_VERSION) -> bool:
        """Forget the cursor of ``inlet`` in ``link`` (its next pull starts from None).

        Returns whether there was one.
        """
        existed = self.cursor(link, inlet) is not None  # checks the names
        self._do_write_cursors(link, {inlet: CursorWrite(None, expected)}, self.clock.time())
        return existed

    def record_status(self, owner: str, text: str) -> None:  # noqa: B027 - optional hook
        """Keep ``text`` (a running planner's status as JSON, see :mod:`databay_bus.status`)
        where readers of this queue find it, replacing what ``owner`` recorded before.

        For readers in other processes; a backend no other process can read ignores it.
        """

    def recorded_status(self) -> list[str]:
        """The texts :meth:`record_status` kept, one per owner (none by default)."""
        return []

    def close(self) -> None:
        """Release the queue's resources; the queue cannot be used afterwards."""
        self._do_close()

    def __enter__(self) -> RecordQueue:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _ids(self, ids: Iterable[str]) -> list[str]:
        if isinstance(ids, (str, bytes)):
            raise ConfigurationError(
                f"{self!r}: ids must be a list of record ids, got {describe(ids)}; "
                f"pass [{ids!r}] for one"
            )
        return list(ids)

    def _codec_for(self, name: str) -> Codec | None:
        """The codec that decodes records stored with codec ``name``, or None.

        The queue's own codec, or JSON, which runs no code on load. Any other codec (e.g.
        pickle) must be the queue's own: it is never chosen just because the data names it.
        """
        if name == self.codec.name:
            return self.codec
        if name == JsonCodec.name:
            return _json_codec()
        return None

    def _decoder(self, item: StoredRecord) -> Codec:
        codec = self._codec_for(item.codec)
        if codec is None:
            raise QueueError(
                f"record {self._record_id(item.id)} was stored with codec {item.codec!r} but "
                f"this queue uses {self.codec.name!r}; open the queue with that codec"
            )
        return codec

    def _decode(self, item: StoredRecord) -> Record:
        payload, metadata = self._decoder(item).decode(item.data)
        return Record(payload, metadata, id=self._record_id(item.id))

    def _inspect(self, item: StoredRecord) -> tuple[Record | None, str | None]:
        """Decode for inspection: ``(record, None)`` or ``(None, why not)``."""
        try:
            return self._decode(item), None
        except QueueError as exc:
            return None, str(exc)
        except Exception as exc:
            return None, f"codec {item.codec!r} cannot decode it: {type(exc).__name__}: {exc}"

    # -- what a backend implements ----------------------------------------------------------

    @abc.abstractmethod
    def _do_enqueue(
        self,
        link: str,
        codec: str,
        encoded: Sequence[bytes],
        targets: Sequence[Sequence[str]],
        now: float,
    ) -> list[int]:
        """Store the records ``encoded`` (bytes made by ``codec``) atomically, with a PENDING
        delivery (due at ``now``) to each outlet named in ``targets[i]`` for ``encoded[i]``.

        Returns new, increasing, never reused numbers, one per record. A record with no
        targets gets its number but need not be stored: nothing will ever read it.
        """

    @abc.abstractmethod
    def _do_due(self, link: str, outlet: str, limit: int, now: float) -> list[StoredRun]:
        """Up to ``limit`` waiting deliveries of (link, outlet) due at ``now``, by number,
        as runs of consecutive numbers."""

    @abc.abstractmethod
    def _do_ack(self, link: str, outlet: str, numbers: list[int], now: float) -> int:
        """Waiting deliveries among ``numbers`` become DELIVERED at ``now``; return the count."""

    @abc.abstractmethod
    def _do_fail(
        self,
        link: str,
        outlet: str,
        numbers: list[int],
        error: str,
        now: float,
        next_delay: Callable[[int], float | None],
    ) -> tuple[int, list[int]]:
        """Count one more attempt for each waiting delivery among ``numbers``, atomically.

        With ``next_delay(attempts)`` None the delivery becomes DEAD, otherwise FAILED due at
        ``now + delay``. Call ``next_delay`` once per distinct attempt count: deliveries
        that share their attempts share one retry time. Returns how many retry, and the
        numbers of those that died.
        """

    @abc.abstractmethod
    def _do_waiting(self, link: str) -> int:
        """Distinct records of ``link`` with a PENDING or FAILED delivery."""

    @abc.abstractmethod
    def _do_waiting_outlets(self, link: str) -> list[str]:
        """Outlet names with PENDING or FAILED deliveries of ``link``."""

    @abc.abstractmethod
    def _do_stats(self, now: float) -> tuple[list[OutletStats], int]:
        """One OutletStats per (link, outlet) with any delivery; and the record count."""

    @abc.abstractmethod
    def _do_dead_letters(
        self, link: str | None, outlet: str | None, limit: int | None
    ) -> list[tuple[int, str, bytes, str, str, int, str | None, float]]:
        """Dead deliveries: (number, codec, data, link, outlet, attempts, error, failed_at)."""

    def _do_waiting_records(
        self, link: str | None, outlet: str | None, limit: int | None
    ) -> list[tuple[int, str, bytes, str, str, int, int, float, str | None]]:
        """Waiting deliveries by (number, link, outlet): (number, codec, data, link, outlet,
        state, attempts, due_at, last_error). Must change nothing. Every backend should
        implement it (inspection); this default says it is missing."""
        raise QueueError(f"{self!r}: this backend cannot list waiting records")

    def _do_delivered_records(
        self, link: str | None, outlet: str | None, after: tuple[int, str], limit: int
    ) -> list[tuple[int, str, bytes, str, str, int, float]]:
        """At most ``limit`` DELIVERED deliveries whose (number, outlet) comes after ``after``,
        in (number, outlet) order: (number, codec, data, link, outlet, attempts,
        delivered_at). Must change nothing. This default says the backend lacks it."""
        raise QueueError(f"{self!r}: this backend cannot list delivered records")

    def _do_codecs(self) -> Iterable[str]:
        """Distinct codec names of the stored records (inspection; implement it too)."""
        raise QueueError(f"{self!r}: this backend cannot list its stored codecs")

    @abc.abstractmethod
    def _do_replay(
        self, link: str | None, outlet: str | None, numbers: list[int] | None, now: float
    ) -> int:
        """Matching DEAD deliveries become PENDING, attempts 0, due at ``now``."""

    @abc.abstractmethod
    def _do_drop(
        self,
        link: str | None,
        outlet: str | None,
        numbers: list[int] | None,
        states: frozenset[int],
    ) -> int:
        """Delete matching deliveries in ``states`` and records left without deliveries."""

    @abc.abstractmethod
    def _do_purge(self, before: float) -> int:
        """Delete DELIVERED deliveries settled before ``before``, and orphaned records."""

    @abc.abstractmethod
    def _do_close(self) -> None:
        """Release resources."""

    def _do_enqueue_with_cursors(
        self,
        link: str,
        codec: str,
        encoded: Sequence[bytes],
        targets: Sequence[Sequence[str]],
        now: float,
        cursors: Mapping[str, CursorWrite],
    ) -> list[int]:
        """:meth:`_do_enqueue`, and :meth:`_do_write_cursors` of ``cursors`` in the same
        transaction; a cursor conflict stores nothing at all."""
        raise QueueError(f"{type(self).__name__} does not store inlet cursors")

    def _do_read_cursors(
        self, link: str | None, inlet: str | None
    ) -> list[tuple[str, str, str, int, float]]:
        """The stored cursors as (link, inlet, JSON text, version, updated_at), filtered by
        ``link`` and ``inlet`` when given, ordered by link and inlet."""
        raise QueueError(f"{type(self).__name__} does not store inlet cursors")

    def _do_write_cursors(self, link: str, cursors: Mapping[str, CursorWrite], now: float) -> None:
        """Write ``cursors`` of ``link`` atomically: for each inlet, check the stored version
        with :func:`~databay_bus.queue.cursors.check_version` (a conflict writes nothing),
        then store the text with the new version, or delete the cursor when text is None."""
        raise QueueError(f"{type(self).__name__} does not store inlet cursors")


_JSON: list[JsonCodec] = []


def _json_codec() -> JsonCodec:
    """The decoder of JSON records in a queue whose own codec is another (e.g. pickle):
    the default one, built once (OrjsonCodec reads exactly what JsonCodec reads)."""
    if not _JSON:
        _JSON.append(default_codec())
    return _JSON[0]


def new_queue_id() -> str:
    """A random id for a new queue (12 hex digits)."""
    return secrets.token_hex(6)
