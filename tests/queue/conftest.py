"""Fixtures of the queue tests: one contract, every backend."""

from __future__ import annotations

import secrets
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest

from databay_bus.queue import MemoryQueue, PostgresQueue, RecordQueue, SqliteQueue
from databay_bus.testing import FakeClock
from tests.queue import pg_server


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


def _unavailable(reason: str) -> None:
    if pg_server.required():
        pytest.fail(f"PostgreSQL is required (DATABAY_BUS_REQUIRE_POSTGRES=1) but {reason}")
    pytest.skip(f"no PostgreSQL: {reason}")


_private: list[pg_server.PrivateServer] = []


def _start_private() -> pg_server.PrivateServer | str:
    """A private server (one per session), or why there is none."""
    if _private:
        return _private[0]
    bindir = pg_server.find_binaries()
    if bindir is None:
        return "no initdb/pg_ctl found (pg_config --bindir, /usr/lib/postgresql/*/bin, PATH)"
    server = pg_server.PrivateServer(bindir)
    try:
        server.start()
    except (OSError, subprocess.SubprocessError) as exc:
        server.stop()
        detail = getattr(exc, "stderr", b"") or b""
        return f"starting a private server failed: {exc} {detail.decode(errors='replace')}"
    _private.append(server)
    return server


@pytest.fixture(scope="session")
def postgres_dsn() -> Iterator[str]:
    """A DSN of a PostgreSQL server the tests may create schemas in (see pg_server.py)."""
    import os

    dsn = os.environ.get("DATABAY_BUS_POSTGRES_DSN")
    if dsn:
        reason = pg_server.reachable(dsn)
        if reason is not None:
            _unavailable(f"DATABAY_BUS_POSTGRES_DSN is unreachable: {reason}")
        yield dsn
        return
    if pg_server.reachable(pg_server.LOCAL_DSN) is None:
        yield pg_server.LOCAL_DSN
        return
    server = _start_private()
    if isinstance(server, str):
        _unavailable(f"nothing on 127.0.0.1:5432 and {server}")
        return
    yield server.dsn


@pytest.fixture(scope="session")
def private_postgres() -> Iterator[pg_server.PrivateServer]:
    """A server of this test session only, which tests may restart (never the machine's)."""
    server = _start_private()
    if isinstance(server, str):
        _unavailable(server)
        return
    yield server


def pytest_sessionfinish(session: pytest.Session) -> None:
    while _private:
        _private.pop().stop()


@pytest.fixture
def pg_schema(postgres_dsn: str) -> Iterator[str]:
    """A fresh schema name for this test, dropped (with all it holds) afterwards."""
    name = f"t_{secrets.token_hex(6)}"
    yield name
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE'.encode())


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
