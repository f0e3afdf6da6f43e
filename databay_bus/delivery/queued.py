"""QueueDelivery: the Delivery a Link uses with ``queue=``: store first, then push what is due.

``Link(..., queue=q, **options)`` builds ``QueueDelivery(link, q, **options)``. Each transfer:

1. ``may_pull``: with ``max_pending``, skip pulling while the link has that many records
   waiting (WARNING, counted in ``backpressure_skips``); pushes of what waits go on.
2. ``admit``: decide each record's outlets (:meth:`QueueDelivery.targets`), encode and
   store them all in one transaction, then hand each outlet its due records (PENDING, or
   FAILED whose retry time has come) in enqueue order, at most ``batch_size``, grouped by
   the link's groupers. Every outlet gets its own copy carrying ``record.id``, decoded from
   storage; the last outlet gets the records just stored instead when nothing older is
   due for it (the same values, without decoding them again).
   While an outlet's chunk of due records is full, the transfer goes on with its next
   ``batch_size`` due records once the chunk is pushed (``settle`` appends them to the
   lane), until nothing is due, a push fails, ``drain_budget`` seconds have passed or the
   planner stops: a backlog drains within a few transfers, one chunk in memory per outlet.
3. ``settle``: a pushed batch is acked; a failed one counts an attempt for each of its
   records and is scheduled again (or dead-lettered) by the outlet's RetryPolicy. The
   failure is logged and handled here (``Outcome.STOP``): it never fails the transfer, and
   the other outlets' lanes are not affected.

Poison records (``isolate_poison``, on by default): a failed batch of several records is
split and its parts pushed at once, down to single records, so the good records are
delivered and only the records that fail on their own are retried and dead-lettered, each
with its own error. While nothing has reached the outlet in this transfer, the split starts
with a probe: the first record alone, then the rest; if both fail the outlet is presumed
down and the batch fails as a whole (3 pushes). Once the outlet has taken something, failed
parts are halved: one poison record among n costs at most 2 + 2·log2(n) extra pushes. At most
``max_isolation_pushes`` extra pushes per outlet per transfer; parts beyond that fail as
they are and are split again when they are retried. An outlet may also raise
:class:`~databay_bus.errors.PartialPushError` naming the records it could not write.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from databay_bus import _progress
from databay_bus._validation import (
    as_bool,
    optional_positive_int,
    optional_seconds,
    positive_int,
)
from databay_bus.delivery.base import Delivery, DeliveryLink, Lane, Outcome, unique_names
from databay_bus.errors import (
    ArgumentTypeError,
    ConfigurationError,
    PartialPushError,
    QueueIdentityError,
    RecordEncodeError,
    describe,
)
from databay_bus.observers import DeliveryFailed, RecordDeadLettered
from databay_bus.queue.base import RecordQueue
from databay_bus.queue.cursors import CursorWrite, StoredCursor
from databay_bus.queue.retry import RetryPolicy, optional_policy, policies_by_name
from databay_bus.records import Record
from databay_bus.records.record import queued_records
from databay_bus.routing import route_records

if TYPE_CHECKING:
    from databay_bus.cursors import SourceSide
    from databay_bus.outlets.base import Outlet
    from databay_bus.update import Update

__all__ = ["QueueDelivery"]

_LOGGER = logging.getLogger(__name__)


@dataclass(slots=True)
class _Isolation:
    """One lane's poison-record search in one transfer (``Lane.state``)."""

    alive: bool = False  # the outlet took a push in this transfer
    probed: bool = False  # the single-record probe was tried
    extra: int = 0  # pushes added by splitting


@dataclass(slots=True)
class _Drain(_Isolation):
    """A lane whose chunk of due records was full: it may grow by further chunks."""

    update: Any = None  # the transfer's Update, for the link's groupers
    started: float = 0.0  # the queue clock's monotonic time when the lane was made
    deadline: float = math.inf  # no chunk is fetched from then on
    full: bool = True  # the chunk being pushed was a full batch_size
    chunks: int = 1
    delivered: int = 0  # records acked by this lane
    in_chunk: int = 0  # records acked from the current chunk
    failed: bool = False  # a push failed: no further chunk (the retry policy applies)
    ended: bool = False  # no further chunk; the summary is logged


class QueueDelivery(Delivery):
    """Stores a link's records in a RecordQueue and delivers them per outlet, at least once.

    Args:
        link: the link.
        queue: the :class:`~databay_bus.queue.RecordQueue`.
        key: the link's identity in the queue, stable across restarts; defaults to the
            link's tags joined by ``'.'``. Two links sharing a queue need different keys.
        retry: the link's :class:`RetryPolicy` (default ``RetryPolicy()``: 5 attempts).
        outlet_retry: ``{outlet name: RetryPolicy}`` overriding ``retry`` per outlet.
        max_pending: stop pulling while this many records wait for an outlet; None: no bound.
        batch_size: due records handed to an outlet at a time (one chunk).
        drain_budget: seconds (or a timedelta) a transfer goes on delivering further chunks
            to an outlet whose previous chunk was full (a backlog), counted from the start
            of its deliveries; 0: one chunk per outlet and transfer. None (the default):
            half the link's interval (for a cron link, half the time to its next fire), so
            a drain ends before the next tick and that tick pulls on time.
        isolate_poison: split a failed batch to find the records that fail on their own
            (see above); False fails and retries the batch as a whole.
        max_isolation_pushes: the most extra pushes splitting may add per outlet and transfer.

    Raises:
        ConfigurationError: no queue, or a bad option.
        QueueIdentityError: no key and no tags.
        QueueKeyError: another live link has this key on this queue.
        InvalidNodeError: two outlets share a name.
    """

    blocking = True
    safe_on_admit = True

    def __init__(
        self,
        link: DeliveryLink,
        queue: RecordQueue | None,
        *,
        key: str | None = None,
        retry: RetryPolicy | None = None,
        outlet_retry: Mapping[str, RetryPolicy] | None = None,
        max_pending: int | None = None,
        batch_size: int = 1000,
        drain_budget: float | timedelta | None = None,
        isolate_poison: bool = True,
        max_isolation_pushes: int = 100,
        **unknown: Any,
    ) -> None:
        super().__init__(link)
        if unknown:
            raise ConfigurationError(
                f"{link}: unknown option(s) {sorted(unknown)}; queued links take key, retry, "
                f"outlet_retry, max_pending, batch_size, drain_budget, isolate_poison and "
                f"max_isolation_pushes"
            )
        if queue is None:
            raise ConfigurationError(
                f"{link}: queue options only apply to a queued link; "
                f"pass queue=... (a databay_bus.queue.RecordQueue)"
            )
        self.isolate_poison = as_bool(isolate_poison, "isolate_poison", link)
        self.max_isolation_pushes = positive_int(max_isolation_pushes, "max_isolation_pushes", link)
        if not isinstance(queue, RecordQueue):
            raise ArgumentTypeError(
                f"{link}: queue must be a databay_bus.queue.RecordQueue, got {describe(queue)}"
            )
        if key is None:
            if not link.tags:
                raise QueueIdentityError(
                    f"{link}: a queued link needs a stable identity to find its records "
                    f"after a restart; give it tags=... or key=..."
                )
            key = ".".join(link.tags)
        if not isinstance(key, str) or not key:
            raise QueueIdentityError(f"{link}: key must be a non-empty str, got {describe(key)}")
        self.queue = queue
        self.key = key
        self.retry = optional_policy(retry, "retry", link) or RetryPolicy()
        self.outlet_retry = policies_by_name(outlet_retry, "outlet_retry", "outlet", link)
        names = [outlet.name for outlet in link.outlets]
        for name in self.outlet_retry:
            if name not in names:  # a typo would leave that outlet on the link's policy
                raise ConfigurationError(
                    f"{link}: outlet_retry names {describe(name)}, not an outlet of this link "
                    f"(its outlets: {', '.join(map(repr, names)) or 'none'})"
                )
        self.max_pending = optional_positive_int(max_pending, "max_pending", link)
        self.batch_size = positive_int(batch_size, "batch_size", link)
        self.drain_budget = optional_seconds(drain_budget, "drain_budget", link)
        #: Set by a planner that is stopping: lanes take no further chunk (see stop_drains).
        self._drains_stopped = False
        self._waking = False  # the running transfer is a planner's wake-up (pulls nothing)
        self.backpressure_skips = 0
        #: Ticks this process did not pull because another process claimed them.
        self.ticks_elsewhere = 0
        self._tick: float | None = None
        self._pull = True
        #: The scheduled tick the running transfer pulls for (None: not a claimed tick).
        self.claimed_tick: float | None = None
        self._lock = threading.Lock()
        self._reported: set[str] = set()
        self._outlets_changed = True
        self.check_outlets(link.outlets)
        if queue.read_only:
            raise ConfigurationError(f"{link}: {queue!r} is open read-only (for inspection)")
        # One link per key on a queue: a second would deliver the first one's records.
        queue.claim_key(key, link)

    # -- the Delivery seam -----------------------------------------------------------------

    def check_outlets(self, outlets: Sequence[Outlet]) -> None:
        """Outlet names key the deliveries, so they must be unique within the link."""
        super().check_outlets(outlets)
        unique_names(outlets, self.link)
        self._outlets_changed = True

    def announce_tick(self, tick: float | None, pull: bool = True) -> None:
        """The planner's next transfer of this link serves the scheduled tick ``tick`` (its
        fire time): it pulls only if the queue lets this process claim the tick. With
        ``pull=False`` the transfer only delivers (a wake-up between ticks)."""
        self._tick = tick
        self._pull = pull

    def may_pull(self, update: Update) -> bool:
        tick, self._tick = self._tick, None
        pull, self._pull = self._pull, True
        self._waking = not pull
        if not pull:
            self.claimed_tick = None
            return False
        if not self._below_max_pending(update):
            return False
        self.claimed_tick = None
        if tick is not None:
            if not self.queue.claim_tick(self.key, tick):
                with self._lock:
                    self.ticks_elsewhere += 1
                _LOGGER.debug(
                    "%s: tick %.3f runs in another process; delivering only", update, tick
                )
                return False
            self.claimed_tick = tick
        return True

    def _below_max_pending(self, update: Update) -> bool:
        if self.max_pending is None:
            return True
        waiting = self.queue.waiting(self.key)
        if waiting < self.max_pending:
            return True
        with self._lock:
            self.backpressure_skips += 1
        _LOGGER.warning(
            "%s: not pulling: %d records wait for delivery (max_pending=%d); "
            "pulling resumes once outlets catch up",
            update,
            waiting,
            self.max_pending,
        )
        return False

    def targets(
        self, records: Sequence[Record], names: Sequence[str], update: Update
    ) -> list[tuple[str, ...]]:
        """The one place that decides which outlets each record goes to (the router's call)."""
        return route_records(self.link.router, records, names, self.link.ignore_exceptions, update)

    def read_cursor(self, inlet: str) -> StoredCursor | None:
        return self.queue.cursor(self.key, inlet)

    def commit_cursors(self, cursors: Mapping[str, CursorWrite]) -> None:
        """Write ``cursors`` alone, in one transaction (transfers store them with records)."""
        if cursors:
            self.queue.enqueue(self.key, [], [], cursors=cursors)

    def admit(
        self,
        records: list[Record],
        outlets: Sequence[Outlet],
        update: Update,
        source: SourceSide | None = None,
    ) -> list[Lane]:
        names = [outlet.name for outlet in outlets]
        known: dict[str, Record] = {}
        if source is not None:
            known = self._enqueue(records, names, update, source)
        elif records:
            known = self._enqueue(records, names, update)
        if self._outlets_changed:
            self._outlets_changed = False
            self._report_missing(names)
        lanes = []
        last = outlets[-1] if outlets else None
        deadline: float | None = None
        for outlet in outlets:
            # The last outlet may get the records just stored instead of copies decoded
            # back from storage, when nothing older is due for it; the others need their own.
            mine = known if outlet is last else None
            due = self.queue.due(self.key, outlet.name, self.batch_size, mine)
            if not due:
                continue
            lane = Lane(outlet, self.link.group(due, update))
            if len(due) == self.batch_size and not self._drains_stopped:
                if deadline is None:
                    deadline = self._drain_deadline()
                if deadline > self._drain_clock():
                    lane.state = _Drain(
                        update=update, started=self._drain_clock(), deadline=deadline
                    )
                    lane.grows = True
            lanes.append(lane)
        return lanes

    def _drain_clock(self) -> float:
        return self.queue.clock.monotonic()

    def _drain_deadline(self) -> float:
        """When lanes starting now stop taking further chunks (see ``drain_budget``)."""
        now = self._drain_clock()
        if self._waking:
            return now  # a wake-up between ticks delivers one chunk; the next tick drains
        if self.drain_budget is not None:
            return now + self.drain_budget
        interval = self.link.interval
        if isinstance(interval, timedelta):
            return now + interval.total_seconds() / 2
        moment = datetime.fromtimestamp(self.queue.clock.time(), timezone.utc)
        fire = interval.next_after(moment)
        if fire is None:  # no tick will come again: drain as long as it takes
            return math.inf
        return now + max(0.0, (fire - moment).total_seconds()) / 2

    def stop_drains(self) -> None:
        """Lanes draining a backlog take no further chunk (a planner stopping, or removing
        the link, calls this): the chunk in flight ends the transfer; the rest stays queued."""
        self._drains_stopped = True

    def allow_drains(self) -> None:
        """Undo :meth:`stop_drains` (a planner starting the link calls this)."""
        self._drains_stopped = False

    def waiting(self) -> int | None:
        return self.queue.waiting(self.key)

    def settle(self, lane: Lane, batch: list[Record], error: Exception | None) -> Outcome | None:
        state: _Isolation | None = lane.state
        if error is None:
            self.queue.ack(self.key, lane.outlet.name, [record.id for record in batch])
            if state is not None:
                state.alive = True
                if isinstance(state, _Drain):
                    self._drain_on(lane, state, len(batch))
            return None
        outcome = self._settle_failed(lane, batch, error)
        if isinstance(state, _Drain):
            state.failed = True
            if not state.ended and (outcome is Outcome.STOP or lane.done >= len(lane.batches)):
                self._drain_ended(lane, state, "a push failed")
        return outcome

    def _drain_on(self, lane: Lane, state: _Drain, acked: int) -> None:
        """After a pushed batch of a lane that may grow: at the end of its chunk, append the
        next chunk of due records, or end the drain."""
        state.delivered += acked
        state.in_chunk += acked
        if state.ended or lane.done < len(lane.batches):
            return
        if state.failed:  # parts of a split batch went on after the failure
            self._drain_ended(lane, state, "a push failed")
            return
        if not state.full or not state.in_chunk:
            # a partial chunk was the last; a chunk the groupers emptied would come back
            self._drain_ended(lane, state, "caught up" if not state.full else "nothing taken")
            return
        if self._drains_stopped:
            self._drain_ended(lane, state, "the planner is stopping")
            return
        if self._drain_clock() >= state.deadline:
            self._drain_ended(lane, state, "drain_budget spent")
            return
        del lane.batches[: lane.done]  # one chunk in memory at a time
        lane.done = 0
        due = self.queue.due(self.key, lane.outlet.name, self.batch_size)
        if not due:
            self._drain_ended(lane, state, "caught up")
            return
        state.full = len(due) == self.batch_size
        state.chunks += 1
        state.in_chunk = 0
        lane.batches.extend(self.link.group(due, state.update))

    def _drain_ended(self, lane: Lane, state: _Drain, reason: str) -> None:
        """Log how much a lane that grew drained (see ``databay_bus._progress``)."""
        state.ended = True
        if state.chunks > 1:
            _progress.drain_ended(
                state.update,
                lane.outlet.name,
                state.delivered,
                self._drain_clock() - state.started,
                state.chunks,
                reason,
                self.waiting,
            )

    def _settle_failed(self, lane: Lane, batch: list[Record], error: Exception) -> Outcome:
        """A failed push: split it, or count the attempt (retry later or dead-letter)."""
        name = lane.outlet.name
        state: _Isolation | None = lane.state
        if isinstance(error, PartialPushError) and self._settle_partial(lane, batch, error):
            return Outcome.CONTINUE
        if self.isolate_poison and len(batch) > 1 and self._split(lane, batch, error):
            return Outcome.CONTINUE
        self._fail(name, [record.id for record in batch], error)
        # A part of a split batch failing alone: go on with the other parts.
        isolating = state is not None and (state.alive or not state.probed or len(batch) == 1)
        return Outcome.CONTINUE if isolating else Outcome.STOP

    def _split(self, lane: Lane, batch: list[Record], error: Exception) -> bool:
        """Queue the parts of a failed batch to be pushed next; False to fail it whole."""
        state: _Isolation | None = lane.state
        if state is None:
            state = lane.state = _Isolation()
        if state.alive:
            middle = len(batch) // 2
            parts = [batch[:middle], batch[middle:]]
        elif not state.probed:
            state.probed = True
            parts = [batch[:1], batch[1:]]
        else:
            return False  # the probe and the rest failed: the outlet looks down
        if state.extra + len(parts) > self.max_isolation_pushes:
            return False
        state.extra += len(parts)
        lane.batches[lane.done : lane.done] = parts
        _LOGGER.info(
            "%s: outlet %r failed on a batch of %d record(s) (%s: %s); pushing it in parts of "
            "%d and %d to isolate the records that fail",
            self._name(),
            lane.outlet.name,
            len(batch),
            type(error).__name__,
            error,
            len(parts[0]),
            len(parts[1]),
            extra={"outlet": lane.outlet.name},
        )
        return True

    def _settle_partial(self, lane: Lane, batch: list[Record], error: PartialPushError) -> bool:
        """Ack what an outlet says it wrote and fail the rest, each with its own error.
        False when the failed records cannot be matched to the batch (then all failed)."""
        ids = {record.id for record in batch}
        failed: dict[str, BaseException] = {}
        for record, own_error in error.failed:
            record_id = getattr(record, "id", None)
            if record_id is None or record_id not in ids:
                return False
            failed[record_id] = own_error
        name = lane.outlet.name
        self.queue.ack(self.key, name, [i for i in ids if i not in failed])
        if lane.state is None:
            lane.state = _Isolation()
        lane.state.alive = True
        by_error: dict[int, tuple[BaseException, list[str]]] = {}
        for record_id, own_error in failed.items():
            by_error.setdefault(id(own_error), (own_error, []))[1].append(record_id)
        for own_error, group in by_error.values():
            self._fail(name, group, own_error)
        return True

    def _fail(self, name: str, ids: Sequence[str | None], error: BaseException) -> None:
        """Count a failed attempt of ``ids`` on outlet ``name``: retry later, or dead-letter."""
        policy = self.outlet_retry.get(name, self.retry)
        failed = self.queue.fail(self.key, name, ids, error, policy.next_delay)
        retrying, dead = failed
        self.link.emit(DeliveryFailed, name, retrying + dead, error)
        for record_id in failed.dead_ids:
            self.link.emit(RecordDeadLettered, name, record_id)
        if dead:
            _LOGGER.error(
                "%s: outlet %r failed; %d record(s) dead-lettered after %s attempts, "
                "%d will be retried",
                ".".join(self.link.tags) or self.key,
                name,
                dead,
                policy.max_attempts,
                retrying,
                exc_info=error,
            )
        else:
            _LOGGER.warning(
                "%s: outlet %r failed on %d record(s); retrying later: %s: %s",
                ".".join(self.link.tags) or self.key,
                name,
                retrying,
                type(error).__name__,
                error,
            )

    def _name(self) -> str:
        return ".".join(self.link.tags) or self.key

    # -- helpers ---------------------------------------------------------------------------

    def _enqueue(
        self,
        records: list[Record],
        names: list[str],
        update: Update,
        source: SourceSide | None = None,
    ) -> dict[str, Record]:
        """Store the routed records, and the inlets' staged cursors, in one transaction;
        return the records stored, by id, as ``due()`` would give them back."""
        decided = self.targets(records, names, update) if records else []
        if all(decided):  # the usual case: every record goes somewhere
            stored, targets = records, decided
        else:
            stored = [r for r, t in zip(records, decided, strict=True) if t]
            targets = [t for t in decided if t]
        cursors = source.cursors() if source is not None else None
        if not stored and not cursors:
            return {}

        def skip(record: Record, exc: RecordEncodeError) -> None:
            _LOGGER.error("%s: record not queued: %s", update, exc, exc_info=exc)
            if source is not None:
                source.not_stored(record, exc)

        ids = self.queue.enqueue(
            self.key,
            stored,
            targets,
            on_encode_error=skip if self.link.ignore_exceptions else None,
            cursors=cursors,
        )
        return queued_records(stored, ids)

    def _report_missing(self, names: list[str]) -> None:
        """Warn (once per outlet) about waiting deliveries for outlets the link lacks."""
        current = set(names)
        for missing in self.queue.waiting_outlets(self.key):
            if missing not in current and missing not in self._reported:
                self._reported.add(missing)
                _LOGGER.warning(
                    "%s: the queue holds records waiting for outlet %r, which this link no "
                    "longer has; they are kept (add the outlet back, or drop them with "
                    "queue.drop(link=%r, outlet=%r, states=...))",
                    ".".join(self.link.tags) or self.key,
                    missing,
                    self.key,
                    missing,
                )

    def metrics(self) -> dict[str, Any]:
        """This link's queue counters, for ``BasePlanner.metrics()``."""
        stats = self.queue.stats()
        return {
            "key": self.key,
            "pending": stats.pending(self.key),
            "dead": stats.dead(self.key),
            "oldest_pending_age": stats.oldest_pending_age(self.key),
            "backpressure_skips": self.backpressure_skips,
            "ticks_elsewhere": self.ticks_elsewhere,
            "outlets": {
                s.outlet: {"pending": s.pending, "retrying": s.retrying, "dead": s.dead}
                for s in stats.outlets
                if s.link == self.key
            },
        }
