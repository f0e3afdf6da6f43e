"""The ``[queue]`` table, a link's own ``queue = {...}``, and retry policies.

A queue table names its kind (``kind = 'sqlite' | 'memory' | 'postgres' | 'pkg.mod.Queue'``,
inferred from its keys when absent: see :func:`queue_kind`; ``url`` is passed as ``dsn``);
every other key is an argument of the queue class, with durations (``retention``,
``purge_interval``, PostgresQueue's timings) and a ``codec`` name converted first.
With ``dry_run`` (``databay-bus validate``) no queue is opened: a queue class's
``check_arguments(...)`` static method, when it has one, checks the arguments and a
MemoryQueue stands in, so validating never locks the queue of a running pipeline.

A new backend plugs in by a short name in :data:`QUEUE_KINDS`, a rule in :func:`queue_kind`
and, to be checked by ``validate`` without connecting, a ``check_arguments`` static method.
"""

from __future__ import annotations

import inspect
import logging
from typing import Any

from databay_bus.config.checks import FAILED, Failed
from databay_bus.config.objects import CODEC, QUEUE, RETRY, Arguments, ObjectMaker
from databay_bus.config.source import key_path
from databay_bus.errors import describe
from databay_bus.queue.base import RecordQueue
from databay_bus.queue.retry import RetryPolicy

__all__ = ["QUEUE_KINDS", "Queues", "close_quietly", "queue_kind"]

_LOGGER = logging.getLogger(__name__)

#: Short names of queue kinds and the classes they stand for.
QUEUE_KINDS = {
    "sqlite": "databay_bus.queue.SqliteQueue",
    "memory": "databay_bus.queue.MemoryQueue",
    "postgres": "databay_bus.queue.PostgresQueue",
}
#: Queue arguments given as durations (``'1d'``, seconds, or ``false`` for never).
DURATION_KEYS = (
    "retention",
    "purge_interval",
    # PostgresQueue's timings
    "lease",
    "renew_interval",
    "reap_interval",
    "node_timeout",
    "connect_timeout",
    "reconnect_timeout",
    "poll_interval",
)
#: Arguments every queue takes (what the in-memory stand-in of a dry run receives).
COMMON_KEYS = ("codec", "retention", "purge_interval")


def queue_kind(table: dict[str, Any]) -> object:
    """The kind a queue table names: its ``kind``, else inferred from its keys (``url``:
    postgres, ``path``: sqlite, neither: memory)."""
    kind = table.get("kind")
    if kind is not None:
        return kind
    if "url" in table:
        return "postgres"
    return "sqlite" if "path" in table else "memory"


def close_quietly(queue: object) -> None:
    """Close ``queue`` if it can be closed; a failure is logged, never raised."""
    close = getattr(queue, "close", None)
    if callable(close):
        try:
            close()
        except Exception as exc:
            _LOGGER.warning("closing %r failed", queue, exc_info=exc)


class Queues:
    """The queues of one pipeline file: the shared ``[queue]`` and each link's own.

    Args:
        maker: builds the queue, codec and retry objects and records problems.
        dry_run: stand a MemoryQueue in for every queue (``validate``).
    """

    def __init__(self, maker: ObjectMaker, dry_run: bool) -> None:
        self.maker = maker
        self.dry_run = dry_run
        #: The top-level ``[queue]`` table (kind filled in), ``{}`` when the file has none.
        self.spec: dict[str, Any] = {}
        #: Every queue constructed so far (closed if the file turns out invalid).
        self.opened: list[RecordQueue] = []
        self._shared: RecordQueue | Failed | None = None

    def read_top(self, value: object) -> None:
        """Read the top-level ``[queue]`` table (the queue is built by the first link using it)."""
        self.spec = self.table(value, "queue")
        if "retry" in self.spec:
            self.maker.problems.table(self.spec["retry"], "queue.retry")

    def table(self, value: object, path: str) -> dict[str, Any]:
        """A queue table with its ``kind`` filled in."""
        data = dict(self.maker.problems.table(value, path))
        kind = queue_kind(data)
        data.pop("kind", None)
        if not isinstance(kind, str):
            self.maker.problems.add(
                key_path(path, "kind"),
                f"must be 'sqlite', 'memory', 'postgres' or an import path, got {describe(kind)}",
            )
        return {"kind": kind, **data}

    def shared(self) -> RecordQueue | Failed:
        """The queue of the ``[queue]`` table, built once for every link that uses it."""
        if self._shared is None:
            self._shared = self.make(self.spec, "queue")
        return self._shared

    def make(self, spec: dict[str, Any], path: str) -> RecordQueue | Failed:
        """Construct the queue a (filled-in) queue table describes."""
        options = dict(spec)
        kind = options.pop("kind")
        options.pop("retry", None)
        ok = True
        for key in DURATION_KEYS:
            if key in options:
                seconds = self.maker.problems.seconds_or_none(
                    options[key], key_path(path, key), positive=True
                )
                ok = ok and seconds is not FAILED
                options[key] = seconds
        if "codec" in options:
            options["codec"] = self.maker.make(CODEC, options["codec"], key_path(path, "codec"))
            ok = ok and options["codec"] is not FAILED
        if not ok or not isinstance(kind, str):
            return FAILED
        if "url" in options and "dsn" not in options:  # a DSN is the url of a server queue
            options["dsn"] = options.pop("url")
        queue = self.maker.make(
            QUEUE,
            {"type": QUEUE_KINDS.get(kind, kind), **options},
            path,
            construct=_stand_in if self.dry_run else None,
        )
        if not isinstance(queue, Failed):
            self.opened.append(queue)
        return queue

    def retry_policy(self, value: object, path: str) -> RetryPolicy | Failed:
        """A RetryPolicy from a ``retry`` table (durations as strings, ``false`` for none)."""
        problems = self.maker.problems
        table = dict(problems.table(value, path))
        ok = True
        for key in ("initial_delay", "max_delay"):
            if key in table:
                table[key] = problems.seconds_or_none(table[key], key_path(path, key), False)
                ok = ok and table[key] is not FAILED
        if table.get("max_attempts") is False:
            table["max_attempts"] = None
        if not ok:
            return FAILED
        return self.maker.make(RETRY, {"type": "databay_bus.queue.RetryPolicy", **table}, path)


def _stand_in(target: Any, kwargs: Arguments) -> RecordQueue:
    """A dry run's queue: check the arguments without opening anything, use memory instead."""
    from databay_bus.queue.memory import MemoryQueue

    check = getattr(target, "check_arguments", None)
    if callable(check):
        params = inspect.signature(check).parameters
        check(**{k: v for k, v in kwargs.items() if k in params})
    return MemoryQueue(**{k: v for k, v in kwargs.items() if k in COMMON_KEYS})
