"""Every exception databay_bus raises on purpose.

The tree (each class also derives from the builtin that fits, so ``except TypeError``
written for Databay keeps working)::

    DatabayBusError
    ├── InvalidNodeError (TypeError, RuntimeError)  bad or duplicate inlet/outlet given to a Link
    ├── InvalidLinkError (TypeError)          a non-Link given to a planner
    ├── ConfigurationError (ValueError)       a bad argument value (interval, tags, processors...)
    │   ├── ArgumentTypeError (TypeError)     an argument of the wrong type (a str for a bool)
    │   ├── ScheduleIntervalError             interval shorter than SchedulePlanner's refresh
    │   └── ConfigError                       a pipeline file that cannot be loaded
    ├── MissingLinkError (LookupError, RuntimeError)  removing a link the planner does not have
    ├── MissingNodeError (InvalidNodeError, LookupError)  removing a node the link does not have
    ├── PlannerStateError (RuntimeError)      start() on a running planner, and similar misuse
    ├── ImplementationError (RuntimeError)    kept for Databay compatibility
    ├── MissingDependencyError (ImportError)  an optional extra is not installed
    ├── NodeInactiveError (RuntimeError)      an outlet used outside on_start/on_shutdown
    ├── TransferError (RuntimeError)          several nodes of one transfer failed
    ├── PartialPushError (RuntimeError)       an outlet pushed part of a batch; names the rest
    ├── HttpInletError (RuntimeError)         HttpInlet request failed
    │   └── ResponseDecodeError (ValueError)  a response body that is not valid JSON / text
    ├── PayloadError (TypeError)              a payload an outlet cannot write (e.g. not a dict)
    ├── CursorError (ValueError)              an inlet cursor misused (not JSON, committed twice)
    │   └── CursorTypeError (TypeError)       a cursor value of a type JSON cannot give back
    ├── BrokerError (ConnectionError)         a message broker unreachable or refusing
    ├── CodecError (TypeError)                a codec's encode met a value it cannot store
    └── QueueError (RuntimeError)             persistent record queue problems
        ├── RecordEncodeError (TypeError)     a payload the codec cannot store
        ├── QueueLockedError                  the queue file is held by another process
        ├── QueueReadOnlyError                a change asked of a queue opened read-only
        ├── QueueIdentityError (ValueError)   a queued link or outlet without a stable name
        │   └── QueueKeyError                 a second link with the same key on one queue
        ├── QueueConnectionError (ConnectionError)  a queue server unreachable, or a bad DSN
        ├── QueueStorageError (OSError)       the storage failed (names it and the cause)
        │   ├── QueueFullError                disk full or a file size limit reached
        │   ├── QueuePermissionError (PermissionError)  storage refuses what the queue needs
        │   └── QueueCorruptError             a damaged file; it accepts no new records
        ├── QueueSchemaError                  a schema written by a newer databay_bus
        ├── QueueDependencyError (MissingDependencyError)  a backend's driver is not installed
        └── CursorConflictError               a cursor moved since it was read (nothing stored)

Databay raised ``TypeError`` for a non-node and ``InvalidNodeError`` (a ``RuntimeError``) for a
duplicate or missing one; here all three are ``InvalidNodeError``, which is both, so handlers
written for Databay keep catching them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = [
    "ArgumentTypeError",
    "BrokerError",
    "CodecError",
    "ConfigError",
    "ConfigurationError",
    "CursorConflictError",
    "CursorError",
    "CursorTypeError",
    "DatabayBusError",
    "HttpInletError",
    "ImplementationError",
    "InvalidLinkError",
    "InvalidNodeError",
    "MissingDependencyError",
    "MissingLinkError",
    "MissingNodeError",
    "NodeInactiveError",
    "PartialPushError",
    "PayloadError",
    "PlannerStateError",
    "QueueConnectionError",
    "QueueCorruptError",
    "QueueDependencyError",
    "QueueError",
    "QueueFullError",
    "QueueIdentityError",
    "QueueKeyError",
    "QueueLockedError",
    "QueuePermissionError",
    "QueueReadOnlyError",
    "QueueSchemaError",
    "QueueStorageError",
    "RecordEncodeError",
    "ResponseDecodeError",
    "ScheduleIntervalError",
    "TransferError",
    "describe",
]


def describe(value: Any) -> str:
    """Return ``repr(value)`` with its type, the way every error message shows a bad value."""
    text = repr(value)
    if len(text) > 80:
        text = text[:77] + "..."
    return f"{text} ({type(value).__name__})"


class DatabayBusError(Exception):
    """Root of every exception raised by databay_bus."""


class InvalidNodeError(DatabayBusError, TypeError, RuntimeError):
    """An object given as an inlet or outlet is not one, or is already in the link."""


class InvalidLinkError(DatabayBusError, TypeError):
    """An object given to a planner as a link is not a :class:`~databay_bus.Link`."""


class ConfigurationError(DatabayBusError, ValueError):
    """An argument has the right kind but a value that cannot work (e.g. a negative interval)."""


class ArgumentTypeError(ConfigurationError, TypeError):
    """An argument has the wrong type (a string where a bool or a number is needed).

    Both a :class:`ConfigurationError` (``ValueError``) and a ``TypeError``: ``except TypeError``
    catches it, as Python's convention asks, and code catching ``ValueError`` keeps working.
    """


class ScheduleIntervalError(ConfigurationError):
    """A link's interval is shorter than the SchedulePlanner's refresh interval."""


class ConfigError(ConfigurationError):
    """A pipeline file cannot be loaded; ``problems`` lists each ``(key path, reason)``."""

    def __init__(self, source: str, problems: Sequence[tuple[str, str]]) -> None:
        self.source = source
        self.problems = list(problems)
        lines = [f"{path}: {reason}" if path else reason for path, reason in self.problems]
        if len(lines) == 1:
            message = f"{source}: {lines[0]}"
        else:
            message = f"{source}: {len(lines)} problems\n" + "\n".join(f"  {x}" for x in lines)
        super().__init__(message)


class MissingLinkError(DatabayBusError, LookupError, RuntimeError):
    """A link was removed from a planner that does not hold it."""


class MissingNodeError(InvalidNodeError, LookupError):
    """An inlet or outlet was removed from a link that does not hold it."""


class PlannerStateError(DatabayBusError, RuntimeError):
    """A planner method was called in a state that does not allow it."""


class ImplementationError(DatabayBusError, RuntimeError):
    """Kept for Databay compatibility; raised when a subclass breaks its base's contract."""


class MissingDependencyError(DatabayBusError, ImportError):
    """An optional dependency is missing; the message names the pip extra that installs it."""

    def __init__(self, package: str, extra: str, feature: str) -> None:
        self.package = package
        self.extra = extra
        super().__init__(
            f"{feature} needs the '{package}' package, which is not installed. "
            f"Install it with: pip install 'databay_bus[{extra}]'"
        )


class NodeInactiveError(DatabayBusError, RuntimeError):
    """An inlet or outlet was used while it was not started (outside on_start/on_shutdown)."""


class TransferError(DatabayBusError, RuntimeError):
    """Several inlets, outlets or processors of one transfer failed; ``errors`` holds them all."""

    def __init__(self, message: str, errors: Sequence[BaseException]) -> None:
        super().__init__(message)
        self.errors = list(errors)


class PartialPushError(DatabayBusError, RuntimeError):
    """Raised by ``Outlet.push`` that wrote some records of a batch but not all.

    ``failed`` holds the records that were not written, each with its own error:
    ``[(record, error), ...]``, or plain records (they then share this error). With a queue,
    the other records of the batch are acknowledged, and only these are retried and, in the
    end, dead-lettered with their own error. Without a queue it fails the push as any error.
    """

    def __init__(self, message: str, failed: Sequence[Any | tuple[Any, BaseException]]) -> None:
        super().__init__(message)
        self.failed: list[tuple[Any, BaseException]] = [
            item if isinstance(item, tuple) else (item, self) for item in failed
        ]


class HttpInletError(DatabayBusError, RuntimeError):
    """An HttpInlet request failed: bad status, timeout, connection error or invalid body."""


class ResponseDecodeError(HttpInletError, ValueError):
    """A response body is not valid JSON (or text); a ``ValueError``, as Databay raised."""


class PayloadError(DatabayBusError, TypeError):
    """A record's payload does not have the shape an outlet needs (e.g. CsvOutlet wants a dict)."""


class CodecError(DatabayBusError, TypeError):
    """A codec's ``encode`` met ``value``, which it cannot store; ``path`` says where
    (e.g. ``payload['x'][0]``) and ``reason`` why. The queue reports it as a
    :class:`RecordEncodeError`."""

    def __init__(self, path: str, value: Any, reason: str) -> None:
        self.path = path
        self.value = value
        self.reason = reason
        super().__init__(f"{path}: {reason}")


class QueueError(DatabayBusError, RuntimeError):
    """A persistent record queue operation failed."""


class RecordEncodeError(QueueError, TypeError):
    """A record's payload or metadata cannot be stored by the queue's codec.

    Attributes:
        codec: the codec's name.
        inlet: the ``'__inlet__'`` metadata of the record (which inlet made it), or None.
        path: where the bad value sits, e.g. ``payload['x'][0]`` (``record`` if unknown).
        value_type: the type of the value that cannot be stored.
        reason: why the codec refused it.
    """

    def __init__(self, codec: str, inlet: Any, path: str, value_type: type, reason: str) -> None:
        self.codec = codec
        self.inlet = inlet
        self.path = path
        self.value_type = value_type
        self.reason = reason
        super().__init__(
            f"codec {codec!r} cannot store a record from inlet {inlet!r}: {path} is a "
            f"{value_type.__module__}.{value_type.__qualname__} ({reason})"
        )


class QueueLockedError(QueueError):
    """The queue file is already in use by another process."""


class QueueIdentityError(QueueError, ValueError):
    """A queued link or outlet has no stable name to key its deliveries by."""


class QueueConnectionError(QueueError, ConnectionError):
    """A queue server cannot be reached or refuses the connection (the DSN is named, masked)."""


class QueueKeyError(QueueIdentityError):
    """A second link claims a queue key (its tags joined by '.', or ``key=``) already in use."""


class QueueReadOnlyError(QueueError):
    """A queue opened read-only (for inspection) was asked to change something."""


class QueueStorageError(QueueError, OSError):
    """The queue's storage failed; ``path`` names the file and ``cause`` says what happened."""

    def __init__(self, message: str, path: str | None = None, cause: str | None = None) -> None:
        super().__init__(message)
        self.path = path
        self.cause = cause

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class QueueFullError(QueueStorageError):
    """The disk is full, or a file size limit was reached; nothing of the failed call is stored."""


class QueuePermissionError(QueueStorageError, PermissionError):
    """The storage refuses what the queue needs: a queue file or directory this process cannot
    write (or read), or a database user without a privilege (create its schema, write rows)."""


class QueueCorruptError(QueueStorageError):
    """The queue file is damaged; the queue refuses new records rather than store them there."""


class QueueSchemaError(QueueError):
    """The queue's stored schema was written by a newer databay_bus, or is not a queue's."""


class QueueDependencyError(MissingDependencyError, QueueError):
    """A queue backend's driver is missing; the message names the pip extra to install."""


class CursorError(DatabayBusError, ValueError):
    """An inlet cursor was misused: a value JSON cannot store, ``commit_cursor`` outside a
    pull or twice in one pull, or a cursor changed while its link runs."""


class CursorTypeError(CursorError, TypeError):
    """A cursor value of a type JSON cannot store and give back equal (a set, bytes, a tuple)."""


class CursorConflictError(QueueError):
    """A cursor changed since the transfer read it (another process moved it); nothing of the
    transfer was stored, so its window is read again from the newer cursor."""


class BrokerError(DatabayBusError, ConnectionError):
    """A message broker (AMQP, Redis) is unreachable, or refused an operation."""
