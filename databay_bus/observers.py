"""Observers: be told what planners and links do, without slowing them down.

Events are plain frozen dataclasses. A planner hands them to its observers from a single
background thread (``databay_bus-observers``), in the order they happened, so a slow observer
delays only later notifications, never a transfer; an observer that raises is logged and the
others still hear about the event. Register with ``planner.add_observer(observer)``, where an
observer is an :class:`Observer` or any callable taking one event.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from databay_bus.errors import ConfigurationError, describe

if TYPE_CHECKING:
    from databay_bus.link import Link
    from databay_bus.update import Update

__all__ = [
    "DeliveryFailed",
    "Event",
    "LinkAdded",
    "LinkRemoved",
    "LogObserver",
    "Observer",
    "ObserverDispatcher",
    "PlannerStarted",
    "PlannerStopped",
    "PullFailed",
    "RecordDeadLettered",
    "TransferCompleted",
    "TransferFailed",
    "TransferStarted",
]

_LOGGER = logging.getLogger(__name__)


@dataclass(frozen=True)
class Event:
    """Base of every event; ``at`` is the wall-clock time it happened (epoch seconds)."""

    at: float = field(default_factory=time.time, kw_only=True)


@dataclass(frozen=True)
class PlannerStarted(Event):
    """The planner began scheduling."""

    planner: Any


@dataclass(frozen=True)
class PlannerStopped(Event):
    """The planner finished shutting down."""

    planner: Any


@dataclass(frozen=True)
class LinkAdded(Event):
    """A link was added to the planner."""

    planner: Any
    link: Link


@dataclass(frozen=True)
class LinkRemoved(Event):
    """A link was removed from the planner."""

    planner: Any
    link: Link


@dataclass(frozen=True)
class TransferStarted(Event):
    """A transfer of ``link`` began."""

    link: Link
    update: Update


@dataclass(frozen=True)
class TransferCompleted(Event):
    """A transfer ended; ``failed`` is True when it raised (a TransferFailed follows)."""

    link: Link
    update: Update
    pulled: int
    pushed: dict[str, int]
    duration: float
    failed: bool = False


@dataclass(frozen=True)
class TransferFailed(Event):
    """A transfer raised ``exception`` (after the rest of the transfer finished)."""

    link: Link
    update: Update
    exception: BaseException


@dataclass(frozen=True)
class DeliveryFailed(Event):
    """An outlet of a queued link failed to take ``count`` records.

    Each is retried later, or dead-lettered if that was its last attempt (a
    :class:`RecordDeadLettered` per such record follows).
    """

    link: Link
    outlet: str
    count: int
    exception: BaseException


@dataclass(frozen=True)
class RecordDeadLettered(Event):
    """A queued record gave up on ``outlet`` after its last attempt."""

    link: Link
    outlet: str
    record_id: str


@dataclass(frozen=True)
class PullFailed(Event):
    """A pull of a link with a pull retry policy failed (see docs/production.md).

    ``failures`` counts that inlet's failures in a row; ``retrying`` tells whether it is tried
    again within this transfer (else at a later tick, once its backoff delay has passed).
    """

    link: Link
    update: Update
    inlet: str
    failures: int
    exception: BaseException
    retrying: bool


class Observer:
    """Subclass and override :meth:`notify`, or pass any callable taking one event."""

    def notify(self, event: Event) -> None:
        """Called once per event, on the observer thread."""

    def __call__(self, event: Event) -> None:
        self.notify(event)


class ObserverDispatcher:
    """Delivers events to observers from one daemon thread, started on first use."""

    def __init__(self) -> None:
        self._observers: list[Callable[[Event], None]] = []
        self._events: queue.SimpleQueue[Event] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._pending = 0
        self._drained = threading.Condition(self._lock)

    def add(self, observer: Callable[[Event], None]) -> None:
        """Register ``observer``; raises ConfigurationError if it cannot be called."""
        if not callable(observer):
            raise ConfigurationError(
                f"observer must be an Observer or a callable, got {describe(observer)}"
            )
        with self._lock:
            self._observers = [*self._observers, observer]

    def remove(self, observer: Callable[[Event], None]) -> None:
        """Unregister ``observer`` (no error if absent).

        Compared by equality, not identity: ``obj.method`` makes a new bound-method object on
        every access, and two of them are equal when they bind the same function to one object.
        """
        with self._lock:
            self._observers = [o for o in self._observers if o != observer]

    @property
    def listening(self) -> bool:
        """True when some observer is registered (so an event is worth building)."""
        return bool(self._observers)

    def emit(self, event: Event) -> None:
        """Queue ``event`` for every observer; returns at once."""
        if not self._observers:
            return
        with self._lock:
            self._pending += 1
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="databay_bus-observers", daemon=True
                )
                self._thread.start()
        self._events.put(event)

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every queued event was delivered; False on timeout."""
        with self._drained:
            return self._drained.wait_for(lambda: self._pending == 0, timeout)

    def _run(self) -> None:
        while True:
            event = self._events.get()
            for observer in self._observers:
                try:
                    observer(event)
                except Exception as exc:
                    _LOGGER.error(
                        "observer %r failed on %s; ignored",
                        observer,
                        type(event).__name__,
                        exc_info=exc,
                    )
            with self._drained:
                self._pending -= 1
                self._drained.notify_all()


class LogObserver(Observer):
    """Logs every planner event as one line (the pipeline file's ``observers = ["log"]``).

    Args:
        level: the logging level name or number of the lines.
    """

    def __init__(self, level: str | int = "INFO") -> None:
        self.level = logging.getLevelName(level) if isinstance(level, str) else level
        if not isinstance(self.level, int):
            raise ValueError(f"LogObserver: unknown logging level {level!r}")

    def notify(self, event: Event) -> None:
        fields = []
        for name in (
            "link",
            "update",
            "outlet",
            "inlet",
            "failures",
            "count",
            "pulled",
            "pushed",
            "duration",
            "record_id",
            "exception",
        ):
            value = getattr(event, name, None)
            if value is None:
                continue
            if name == "link":
                value = ".".join(value.tags) or repr(value)
            elif name == "duration":
                value = f"{value:.3f}s"
            fields.append(f"{name}={value}")
        _LOGGER.log(self.level, "%s %s", type(event).__name__, " ".join(fields))
