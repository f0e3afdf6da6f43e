"""databay_bus._signals: the one place SIGINT/SIGTERM become a graceful stop (CLI, planners)."""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Iterator
from types import FrameType

import pytest

from databay_bus._signals import StopSignal, raise_on_signals, stop_event_on_signals

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")


@pytest.fixture
def app_sigterm() -> Iterator[list[int]]:
    """An application's own SIGTERM handler, recording what it gets; restored afterwards."""
    seen: list[int] = []

    def handler(signum: int, frame: FrameType | None) -> None:
        seen.append(signum)

    before = signal.signal(signal.SIGTERM, handler)
    try:
        yield seen
    finally:
        signal.signal(signal.SIGTERM, before)


def test_first_signal_sets_the_event_the_second_reaches_the_previous_handler(
    app_sigterm: list[int],
) -> None:
    stop = threading.Event()
    with stop_event_on_signals(stop):
        signal.raise_signal(signal.SIGTERM)
        assert stop.is_set() and app_sigterm == []
        signal.raise_signal(signal.SIGTERM)
        assert app_sigterm == [signal.SIGTERM]
    signal.raise_signal(signal.SIGTERM)
    assert app_sigterm == [signal.SIGTERM, signal.SIGTERM]


def test_raise_on_signals_holds_a_signal_until_the_gate_opens() -> None:
    steps: list[str] = []
    with raise_on_signals() as gate:
        assert gate is not None
        with pytest.raises(StopSignal), gate.hold():
            signal.raise_signal(signal.SIGTERM)
            steps.append("finished the held step")
        with pytest.raises(KeyboardInterrupt):
            signal.raise_signal(signal.SIGINT)
    assert steps == ["finished the held step"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL


def test_raise_on_signals_leaves_an_application_handler_alone(app_sigterm: list[int]) -> None:
    with raise_on_signals() as gate:
        assert gate is not None  # SIGINT still had Python's default handler
        signal.raise_signal(signal.SIGTERM)
    assert app_sigterm == [signal.SIGTERM]


def test_no_handlers_outside_the_main_thread() -> None:
    result: list[object] = []

    def worker() -> None:
        with raise_on_signals() as gate:
            result.append(gate)
        with stop_event_on_signals(threading.Event()):
            result.append(signal.getsignal(signal.SIGINT))

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join(10)
    assert result == [None, signal.default_int_handler]
