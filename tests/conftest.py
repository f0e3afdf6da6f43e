"""Fixtures shared by the whole suite."""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from tests.pg_fixtures import (  # noqa: F401 - fixtures for every test directory
    pg_schema,
    postgres_dsn,
    private_postgres,
    stop_private_servers,
)


@pytest.fixture
def wait_until() -> Callable[..., None]:
    """Return ``wait_until(predicate, timeout=10, message=...)``: poll until true or fail.

    Generous timeouts: a slow machine makes a test slower, never red.
    """

    def _wait(predicate: Callable[[], object], timeout: float = 10.0, message: str = "") -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                pytest.fail(f"timed out after {timeout}s waiting for {message or predicate}")
            time.sleep(0.005)

    return _wait


@pytest.fixture(autouse=True)
def _no_thread_leaks() -> Iterator[None]:
    """Fail a test that leaves non-daemon threads behind (they would hang interpreter exit)."""
    before = set(threading.enumerate())
    yield
    deadline = time.monotonic() + 5
    while True:
        extra = [
            t for t in threading.enumerate() if t not in before and t.is_alive() and not t.daemon
        ]
        if not extra or time.monotonic() > deadline:
            break
        time.sleep(0.01)
    assert not extra, f"non-daemon threads left running: {extra}"


@pytest.fixture
def databay_logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """caplog capturing every databay_bus record at DEBUG and above."""
    caplog.set_level(logging.DEBUG, logger="databay_bus")
    return caplog


@pytest.fixture(params=["fast", "public"])
def loop_driver(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run the test with each event-loop driver of databay_bus._concurrency: the fast one
    (private asyncio attributes, where supported) and the public-API fallback."""
    from databay_bus import _concurrency

    mode: str = request.param
    if mode == "fast" and not _concurrency.FAST_LOOP_SUPPORTED:
        pytest.skip("the fast loop driver is not used on this Python")
    monkeypatch.setattr(_concurrency, "FAST_LOOP", mode == "fast")
    return mode


def pytest_configure(config: pytest.Config) -> None:
    """Give SIGINT Python's own handler when the suite was started with it ignored.

    A suite started in the background (``nohup python -m pytest &``) inherits SIGINT ignored,
    and so does every child process it starts: the tests that stop a planner or the CLI with
    Ctrl-C would then wait for a signal nobody handles. Run from a terminal, nothing changes.
    """
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Stop a private PostgreSQL server the session started (tests/pg_fixtures.py)."""
    stop_private_servers()
