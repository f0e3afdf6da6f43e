"""Small inlets, outlets and a hand-driven planner for the core tests (links, nodes, planners)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from databay_bus import Inlet, Link, Outlet, Record, Update
from databay_bus.planners import BasePlanner

__all__ = [
    "AsyncListInlet",
    "AsyncRecordingOutlet",
    "FailingInlet",
    "FailingOutlet",
    "GateOutlet",
    "ListInlet",
    "ManualPlanner",
    "RecordingOutlet",
    "payloads",
    "recording_link",
]

Events = list[str]


def payloads(records: list[Record]) -> list[Any]:
    """The payloads of ``records``, in order."""
    return [record.payload for record in records]


class _Lifecycle:
    """Counts on_start/on_shutdown calls and writes them to a shared event log."""

    def _init_lifecycle(self, log: Events | None) -> None:
        self.starts = 0
        self.shutdowns = 0
        self.log = log if log is not None else []

    def on_start(self) -> None:
        self.starts += 1
        self.log.append(f"start:{self}")

    def on_shutdown(self) -> None:
        self.shutdowns += 1
        self.log.append(f"shutdown:{self}")


class ListInlet(_Lifecycle, Inlet):
    """Returns ``value`` (or ``value(update)`` when callable) from every pull."""

    def __init__(
        self,
        value: Any = None,
        *,
        log: Events | None = None,
        name: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(metadata=metadata, name=name)
        self._init_lifecycle(log)
        self.value = [] if value is None else value
        self.pulls: list[Update] = []

    def pull(self, update: Update) -> Any:
        self.pulls.append(update)
        self.log.append(f"pull:{self}")
        return self.value(update) if callable(self.value) else self.value

    def __str__(self) -> str:
        return self.name


class AsyncListInlet(ListInlet):
    """ListInlet with an ``async def pull``."""

    async def pull(self, update: Update) -> Any:  # type: ignore[override]
        return super().pull(update)


class FailingInlet(ListInlet):
    """Raises ``error`` from every pull."""

    def __init__(self, error: Exception | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.error = error or RuntimeError("inlet failed")

    def pull(self, update: Update) -> Any:
        self.pulls.append(update)
        raise self.error


class RecordingOutlet(_Lifecycle, Outlet):
    """Keeps every pushed batch (the list object itself) and its update."""

    def __init__(
        self,
        *,
        log: Events | None = None,
        name: str | None = None,
        processors: Any = None,
        on_push: Callable[[list[Record], Update], None] | None = None,
    ) -> None:
        super().__init__(processors=processors, name=name)
        self._init_lifecycle(log)
        self.batches: list[list[Record]] = []
        self.updates: list[Update] = []
        self.on_push = on_push
        self.pushed = threading.Event()

    def push(self, records: list[Record], update: Update) -> None:
        self.log.append(f"push:{self}:{payloads(records)}")
        self.batches.append(records)
        self.updates.append(update)
        if self.on_push is not None:
            self.on_push(records, update)
        self.pushed.set()

    @property
    def payloads(self) -> list[list[Any]]:
        return [payloads(batch) for batch in self.batches]

    @property
    def records(self) -> list[Record]:
        """Every pushed record, in push order."""
        return [record for batch in self.batches for record in batch]

    def __str__(self) -> str:
        return self.name


class AsyncRecordingOutlet(RecordingOutlet):
    """RecordingOutlet with an ``async def push``."""

    async def push(self, records: list[Record], update: Update) -> None:  # type: ignore[override]
        super().push(records, update)


class FailingOutlet(RecordingOutlet):
    """Records the batch, then raises ``error``."""

    def __init__(self, error: Exception | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.error = error or RuntimeError("outlet failed")

    def push(self, records: list[Record], update: Update) -> None:
        super().push(records, update)
        raise self.error


class GateOutlet(RecordingOutlet):
    """Blocks inside push until ``release`` is set; ``entered`` is set when a push began."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.entered = threading.Event()
        self.release = threading.Event()
        self.finished = threading.Event()
        self.active_during_push: list[bool] = []

    def push(self, records: list[Record], update: Update) -> None:
        self.entered.set()
        assert self.release.wait(30), "GateOutlet was never released"
        self.active_during_push.append(self.active)
        super().push(records, update)
        self.log.append(f"push-end:{self}")
        self.finished.set()


def recording_link(interval: float = 0.1, **kwargs: Any) -> tuple[Link, RecordingOutlet]:
    """A link from a one-record ListInlet to a new RecordingOutlet, and that outlet."""
    outlet = RecordingOutlet()
    return Link(ListInlet([1]), outlet, interval, **kwargs), outlet


class ManualPlanner(BasePlanner):
    """The smallest useful BasePlanner: nothing is scheduled, ticks are fired by hand.

    It is also a worked example of the subclassing contract: ``_schedule`` and ``_unschedule``
    keep ``link.job`` in sync, ``_start_planner``/``_shutdown_planner`` start and stop it.
    """

    _start_planner_blocks = False

    def __init__(self, links: Link | list[Link] | None = None, **kwargs: Any) -> None:
        self.scheduled: list[Link] = []
        self.started_scheduler = 0
        self.stopped_scheduler: list[bool] = []
        super().__init__(links, **kwargs)

    def _schedule(self, link: Link) -> None:
        self.scheduled.append(link)
        link.set_job(("job", id(link)))

    def _unschedule(self, link: Link) -> None:
        self.scheduled.remove(link)
        link.set_job(None)

    def _start_planner(self) -> None:
        self.started_scheduler += 1

    def _shutdown_planner(self, wait: bool = True) -> None:
        self.stopped_scheduler.append(wait)

    def tick(self, link: Link) -> None:
        """What a scheduler does when ``link`` is due."""
        self._run_transfer(link)
