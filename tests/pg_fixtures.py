"""PostgreSQL for the tests: a server (see tests/queue/pg_server.py) and a schema per test.

Imported by tests/conftest.py, so every test directory can ask for ``postgres_dsn``,
``pg_schema`` or ``private_postgres``; the private server is stopped at the session's end.
"""

from __future__ import annotations

import os
import secrets
import subprocess
from collections.abc import Iterator

import psycopg
import pytest

from tests.queue import pg_server

__all__ = ["pg_schema", "postgres_dsn", "private_postgres", "stop_private_servers"]


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


def stop_private_servers() -> None:
    """Stop the private server, if one was started (tests/conftest.py's session end)."""
    while _private:
        _private.pop().stop()


@pytest.fixture
def pg_schema(postgres_dsn: str) -> Iterator[str]:
    """A fresh schema name for this test, dropped (with all it holds) afterwards."""
    name = f"t_{secrets.token_hex(6)}"
    yield name
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE'.encode())
