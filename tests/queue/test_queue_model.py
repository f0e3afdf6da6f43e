"""SqliteQueue against MemoryQueue, the reference: random operations, same answers.

SqliteQueue stores runs of records as one row (chunks of records, spans of deliveries) and
splits them when part of a run changes; MemoryQueue keeps every delivery on its own. Both
get the same random enqueues (with routing), dues, acks, fails, replays, drops, purges and
clock moves, and every answer and every snapshot (stats, dead letters, waiting) must match.
"""

from __future__ import annotations

import bisect
import itertools
import random
from collections.abc import Callable
from typing import cast

import pytest

from databay_bus import Record
from databay_bus.queue import DeliveryState, MemoryQueue, RecordQueue, SqliteQueue
from databay_bus.testing import FakeClock

LINKS = ("L", "M")
OUTLETS = ("a", "b", "c")
STATE_SETS = (
    (DeliveryState.DEAD,),
    (DeliveryState.PENDING, DeliveryState.FAILED),
    (DeliveryState.DELIVERED,),
    tuple(DeliveryState),
)


def _delay(attempts: int) -> float | None:
    return None if attempts >= 3 else 5.0 * attempts


def _number(record_id: str | None) -> int | None:
    return None if record_id is None else int(record_id.rsplit("-", 1)[1])


def _snapshot(queue: RecordQueue) -> object:
    stats = queue.stats()
    letters = [
        (
            _number(d.id),
            d.link,
            d.outlet,
            d.attempts,
            d.last_error,
            d.failed_at,
            None if d.record is None else (d.record.payload, d.record.metadata),
        )
        for d in queue.dead_letters()
    ]
    waiting = [(queue.waiting(link), queue.waiting_outlets(link)) for link in LINKS]
    listed = [
        (_number(w.id), w.link, w.outlet, w.state, w.attempts, w.due_at, w.last_error)
        for w in queue.waiting_records(limit=20)
    ]
    return stats.records, [vars(s) for s in stats.outlets], letters, waiting, listed


class _Run:
    """Applies the same random operation to both queues and compares what they answer."""

    def __init__(self, seed: int, queues: list[RecordQueue], clock: FakeClock) -> None:
        self.rng = random.Random(seed)
        self.queues = queues
        self.clock = clock
        self.ids: list[int] = []  # every number handed out so far
        self.payload = 0

    def same(self, call: Callable[[RecordQueue], object]) -> object:
        answers = [call(queue) for queue in self.queues]
        assert answers[0] == answers[1], answers
        return answers[0]

    def some_ids(self, queue: RecordQueue) -> list[str]:
        rng = self.rng
        if not self.ids:
            return []
        start = rng.randrange(len(self.ids))
        chosen = self.ids[start : start + rng.randint(1, 40)]
        if rng.random() < 0.5:
            chosen = [n for n in chosen if rng.random() < 0.7]
        return [f"{queue.queue_id}-{n}" for n in chosen]

    def step(self) -> None:
        rng = self.rng
        link, outlet = rng.choice(LINKS), rng.choice(OUTLETS)
        kind = rng.choices(
            ["enqueue", "due", "ack", "fail", "replay", "drop", "purge", "time"],
            weights=[6, 6, 6, 3, 1, 1, 1, 3],
        )[0]
        if kind == "enqueue":
            count = rng.randint(1, 30)
            payloads = list(range(self.payload, self.payload + count))
            self.payload += count
            if rng.random() < 0.5:  # no router: one tuple for all
                everyone = tuple(rng.sample(OUTLETS, rng.randint(1, 3)))
                targets = [everyone] * count
            else:
                targets = [tuple(rng.sample(OUTLETS, rng.randint(0, 3))) for _ in payloads]
            new = self.same(
                lambda q: [
                    _number(i)
                    for i in q.enqueue(link, [Record(p, {"n": p}) for p in payloads], targets)
                ]
            )
            self.ids.extend(n for n in cast(list[int | None], new) if n is not None)
        elif kind == "due":
            limit = rng.randint(1, 40)
            self.same(lambda q: [(_number(r.id), r.payload) for r in q.due(link, outlet, limit)])
        elif kind == "ack":
            self.same(lambda q: q.ack(link, outlet, self.pick(q)))
        elif kind == "fail":
            self.same(lambda q: q.fail(link, outlet, self.pick(q), "boom", _delay))
        elif kind in ("replay", "drop"):
            by_link = link if rng.random() < 0.5 else None
            by_outlet = outlet if rng.random() < 0.5 else None
            by_ids = rng.random() < 0.5
            states = rng.choice(STATE_SETS)
            if kind == "replay":
                self.same(lambda q: q.replay(by_link, by_outlet, self.pick(q) if by_ids else None))
            else:
                self.same(
                    lambda q: q.drop(by_link, by_outlet, self.pick(q) if by_ids else None, states)
                )
        elif kind == "purge":
            self.same(lambda q: q.purge())
        else:
            self.clock.advance(rng.choice([0.5, 3.0, 7.0, 25.0]))
        self.same(_snapshot)

    def pick(self, queue: RecordQueue) -> list[str]:
        # The same choice for both queues: replay the random state for the second one.
        if queue is self.queues[0]:
            self._state = self.rng.getstate()
        else:
            self.rng.setstate(self._state)
        return self.some_ids(queue)


def _check_storage(queue: SqliteQueue) -> None:
    """SqliteQueue's own invariants: every span inside one chunk, spans of one outlet
    disjoint, each chunk's ``live`` the number of deliveries its spans hold (never 0)."""
    conn = queue._conn()
    chunks = conn.execute("SELECT first, count, live FROM chunks ORDER BY first").fetchall()
    firsts = [first for first, _, _ in chunks]
    live = dict.fromkeys(firsts, 0)
    by_outlet: dict[tuple[str, str], list[tuple[int, int]]] = {}
    for link, outlet, first, last in conn.execute(
        "SELECT link, outlet, first, last FROM waiting UNION ALL "
        "SELECT link, outlet, first, last FROM settled"
    ):
        index = bisect.bisect_right(firsts, first) - 1
        chunk_first, count, _ = chunks[index]
        assert index >= 0 and first >= chunk_first and last < chunk_first + count
        live[chunk_first] += last - first + 1
        by_outlet.setdefault((link, outlet), []).append((first, last))
    assert all(stored == live[first] > 0 for first, _, stored in chunks)
    for spans in by_outlet.values():
        spans.sort()
        assert all(a[1] < b[0] for a, b in itertools.pairwise(spans))


@pytest.mark.parametrize("seed", range(6))
def test_sqlite_answers_like_the_reference(seed: int, tmp_path: object, clock: FakeClock) -> None:
    memory = MemoryQueue(clock=clock, retention=20)
    sqlite = SqliteQueue(f"{tmp_path}/model.db", clock=clock, retention=20)
    try:
        run = _Run(seed, [memory, sqlite], clock)
        for step in range(250):
            run.step()
            if step % 10 == 0:
                _check_storage(sqlite)
        _check_storage(sqlite)
        assert sqlite.integrity_check() == "ok"
    finally:
        sqlite.close()


@pytest.mark.parametrize("seed", range(3))
def test_postgres_answers_like_the_reference(
    seed: int, make_postgres: Callable[..., RecordQueue], clock: FakeClock
) -> None:
    """PostgresQueue (one node: due() leases, and asking again returns its own leases)."""
    memory = MemoryQueue(clock=clock, retention=20)
    run = _Run(seed, [memory, make_postgres(retention=20)], clock)
    for _ in range(250):
        run.step()
