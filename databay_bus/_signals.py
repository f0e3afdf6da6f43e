"""SIGINT and SIGTERM: the one place that turns stop signals into a graceful shutdown.

Two ways to be told, for two kinds of waiting:

* :func:`stop_event_on_signals` sets a ``threading.Event`` (the CLI, whose main thread waits
  on that event); a second signal restores the previous handlers, so it stops at once.
* :func:`raise_on_signals` raises ``KeyboardInterrupt`` / :class:`StopSignal` in the main
  thread (a planner's blocking ``start()``), held back while a :class:`SignalGate` holds.

Both install handlers only in the main thread (Python allows no other) and put the previous
handlers back when the block ends.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Any

__all__ = [
    "STOP_SIGNALS",
    "SignalGate",
    "StopSignal",
    "raise_on_signals",
    "stop_event_on_signals",
]

_LOGGER = logging.getLogger(__name__)

#: The signals that ask a process to stop.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)

#: What Python installs by itself: only these are replaced by :func:`raise_on_signals`.
_DEFAULTS: dict[signal.Signals, Any] = {
    signal.SIGINT: signal.default_int_handler,
    signal.SIGTERM: signal.SIG_DFL,
}

Handler = Callable[[int, FrameType | None], Any]


class StopSignal(BaseException):
    """Raised in the main thread by SIGTERM while :func:`raise_on_signals` is active."""


class SignalGate:
    """Raises a stop signal at once, or, while :meth:`hold` is active, as soon as it ends.

    A planner holds the gate while it starts its scheduler: an exception in the middle of
    that step would leave the scheduler half started.
    """

    def __init__(self) -> None:
        self._holding = False
        self._held: int | None = None

    def handle(self, signum: int, frame: FrameType | None) -> None:
        """The signal handler: raise KeyboardInterrupt (SIGINT) or StopSignal, or hold it."""
        if self._holding:
            self._held = signum
            return
        raise KeyboardInterrupt if signum == signal.SIGINT else StopSignal()

    @contextlib.contextmanager
    def hold(self) -> Iterator[None]:
        """Keep signals back during the block; raise one that arrived meanwhile after it."""
        self._holding = True
        try:
            yield
        finally:
            self._holding = False
        if self._held is not None:
            held, self._held = self._held, None
            self.handle(held, None)


@contextlib.contextmanager
def _handling(handler: Handler, only_defaults: bool) -> Iterator[bool]:
    """Install ``handler`` for the stop signals during the block; yield whether it was.

    With ``only_defaults``, a signal whose handler the application set itself is left alone.
    """
    if threading.current_thread() is not threading.main_thread():
        yield False
        return
    previous = {sig: signal.getsignal(sig) for sig in STOP_SIGNALS}
    installed = [sig for sig, old in previous.items() if not only_defaults or old is _DEFAULTS[sig]]
    for sig in installed:
        signal.signal(sig, handler)
    try:
        yield bool(installed)
    finally:
        for sig in installed:
            signal.signal(sig, previous[sig])


@contextlib.contextmanager
def raise_on_signals() -> Iterator[SignalGate | None]:
    """SIGINT raises KeyboardInterrupt and SIGTERM :class:`StopSignal` during the block.

    Yields the :class:`SignalGate` to hold signals back with, or None when no handler was
    installed (not the main thread, or the application handles both signals itself).
    """
    gate = SignalGate()
    with _handling(gate.handle, only_defaults=True) as installed:
        yield gate if installed else None


@contextlib.contextmanager
def stop_event_on_signals(stop: threading.Event, at_once: Handler | None = None) -> Iterator[None]:
    """Set ``stop`` on the first SIGINT/SIGTERM during the block; a second one calls
    ``at_once(signum, frame)``, or, without it, acts as the handlers in place before the
    block would (by default: stop at once)."""
    previous = {sig: signal.getsignal(sig) for sig in STOP_SIGNALS}

    def handler(signum: int, frame: FrameType | None) -> None:
        _LOGGER.warning(
            "%s received: shutting down gracefully (send it again to stop at once)",
            signal.Signals(signum).name,
        )
        stop.set()
        for sig, old in previous.items():
            signal.signal(sig, old if at_once is None else at_once)

    with _handling(handler, only_defaults=False):
        yield
