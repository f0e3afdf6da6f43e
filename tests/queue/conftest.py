"""Fixtures of the queue tests: one contract, every backend."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from databay_bus.queue import MemoryQueue, PostgresQueue, RecordQueue, SqliteQueue
from databay_bus.testing import FakeClock


@pytest.fixture
def clock() -> FakeClock:
    """The clock every queue of a test reads."""
    return FakeClock()


@pytest.fixture
def make_sqlite(tmp_path: Path, clock: FakeClock) -> Iterator[Callable[..., SqliteQueue]]:
    """``make_sqlite(**options)``: a SqliteQueue on tmp_path/queue.db, closed after the test."""
    opened: list[SqliteQueue] = []

    def make(name: str = "queue.db", **options: object) -> SqliteQueue:
        options.setdefault("clock", clock)
        queue = SqliteQueue(tmp_path / name, **options)  # type: ignore[arg-type]
        opened.append(queue)
        return queue

    yield make
    for queue in opened:
        queue.close()


@pytest.fixture
def make_memory(clock: FakeClock) -> Callable[..., MemoryQueue]:
    """``make_memory(**options)``: a MemoryQueue on the test's clock."""

    def make(**options: object) -> MemoryQueue:
        options.setdefault("clock", clock)
        return MemoryQueue(**options)  # type: ignore[arg-type]

    return make


@pytest.fixture
def make_postgres(
    postgres_dsn: str, pg_schema: str, clock: FakeClock
) -> Iterator[Callable[..., PostgresQueue]]:
    """``make_postgres(**options)``: a PostgresQueue in this test's schema, closed afterwards."""
    opened: list[PostgresQueue] = []

    def make(**options: object) -> PostgresQueue:
        options.setdefault("clock", clock)
        options.setdefault("schema", pg_schema)
        options.setdefault("max_connections", 4)
        queue = PostgresQueue(postgres_dsn, **options)  # type: ignore[arg-type]
        opened.append(queue)
        return queue

    yield make
    for queue in opened:
        queue.close()


_BACKENDS = ("memory", "sqlite", "postgres")


@pytest.fixture(params=[pytest.param(name, id=name) for name in _BACKENDS])
def make_queue(request: pytest.FixtureRequest) -> Callable[..., RecordQueue]:
    """Factory for every backend in turn: the contract suite runs once per backend."""
    factory: Callable[..., RecordQueue] = request.getfixturevalue(f"make_{request.param}")
    return factory


@pytest.fixture
def queue(make_queue: Callable[..., RecordQueue]) -> RecordQueue:
    """A queue of every backend in turn."""
    return make_queue()


@pytest.fixture
def persistent_queue(make_sqlite: Callable[..., SqliteQueue]) -> SqliteQueue:
    """A durable queue (reopen and crash tests)."""
    return make_sqlite()
