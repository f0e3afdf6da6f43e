"""The Delivery contract: how a transfer hands its records to its outlets.

A :class:`Delivery` turns the processed records of one transfer into one :class:`Lane` per
outlet (the batches that outlet pushes, in order) and learns the outcome of every push. It
sees its link only through :class:`DeliveryLink`, the few things a delivery may use of it.
"""

from __future__ import annotations

import abc
import enum
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any, ParamSpec, Protocol

from databay_bus.errors import InvalidNodeError
from databay_bus.records import Record

if TYPE_CHECKING:
    from typing import Concatenate

    from databay_bus.cursors import SourceSide
    from databay_bus.observers import Event
    from databay_bus.outlets.base import Outlet
    from databay_bus.queue.cursors import CursorWrite, StoredCursor
    from databay_bus.routing import Router
    from databay_bus.schedules import Cron
    from databay_bus.update import Update

__all__ = ["Delivery", "DeliveryLink", "Lane", "Outcome", "unique_names"]

P = ParamSpec("P")


class DeliveryLink(Protocol):
    """What a delivery may use of its link (``Link`` provides it)."""

    router: Router | None
    ignore_exceptions: bool
    copy_records: bool

    @property
    def tags(self) -> list[str]:
        """The link's tags."""

    @property
    def outlets(self) -> list[Outlet]:
        """The link's outlets."""

    @property
    def interval(self) -> timedelta | Cron:
        """Time between two transfers, or the link's Cron schedule."""

    def group(self, records: list[Record], update: Update) -> list[list[Record]]:
        """Apply the link's groupers and return the batches to push."""

    def emit(
        self, event: Callable[Concatenate[Any, P], Event], /, *args: P.args, **kwargs: P.kwargs
    ) -> None:
        """Tell the link's listeners ``event(link, *args, **kwargs)``; nothing is built when
        no one listens."""


@dataclass(slots=True)
class Lane:
    """The batches one outlet pushes in one transfer, in order.

    ``done`` counts the batches the link has taken so far: a delivery handling a failure may
    insert batches at ``lane.batches[lane.done:lane.done]`` (e.g. the halves of a failed
    batch) and return :attr:`Outcome.CONTINUE`, so they are pushed next. A lane may also
    *grow*: after the push of its last batch, ``settle`` may drop the batches taken
    (``del lane.batches[:lane.done]``, ``lane.done = 0``) and append new ones, which the link
    pushes next (a backlog drained in chunks, one in memory at a time); such a delivery sets
    ``grows`` so the link reports the lane's progress. ``state`` is the delivery's own
    per-lane scratch space.
    """

    outlet: Outlet
    batches: list[list[Record]]
    done: int = 0
    state: Any = None
    grows: bool = False


class Outcome(enum.Enum):
    """What a transfer does after a failed push."""

    #: Not handled here: the failure counts as the outlet's, and the link's
    #: ``ignore_exceptions`` decides (log and go on, or stop the lane and raise at the end).
    ESCALATE = "escalate"
    #: Handled (e.g. a retry is scheduled): stop this lane, raise nothing.
    STOP = "stop"
    #: Handled: go on with the lane's next batch (which the delivery may have inserted).
    CONTINUE = "continue"


class Delivery(abc.ABC):
    """Strategy for admitting records and settling pushes; one per link."""

    #: True when admit/settle do blocking I/O, so async transfers run them off the loop.
    blocking: bool = False
    #: True when :meth:`admit` makes the records safe (stores them, with the inlets' cursors):
    #: inlets hear ``on_records_safe`` before the pushes. False: the link commits the cursors
    #: with :meth:`commit_cursors` once every outlet took the records.
    safe_on_admit: bool = False

    __slots__ = ("link",)

    def __init__(self, link: DeliveryLink) -> None:
        self.link = link

    def may_pull(self, update: Update) -> bool:
        """False to skip pulling this transfer (backpressure)."""
        return True

    def check_outlets(self, outlets: Sequence[Outlet]) -> None:
        """Raise if ``outlets`` cannot be delivered to; subclasses extend, calling super().

        With a router, outlet names must be unique and every name it routes to must exist.
        Without one, a name given explicitly must still be unique; two outlets that both
        carry their class name by default (Databay code: two ``CsvOutlet``) are accepted.
        """
        router = self.link.router
        if router is not None:
            names = unique_names(outlets, self.link)
            router.check(names)
        else:
            unique_names(outlets, self.link, given_only=True)

    def waiting(self) -> int | None:
        """Records still waiting for delivery beyond this transfer (for progress logs), or
        None when the delivery keeps no backlog."""
        return None

    @abc.abstractmethod
    def admit(
        self,
        records: list[Record],
        outlets: Sequence[Outlet],
        update: Update,
        source: SourceSide | None = None,
    ) -> list[Lane]:
        """Take the transfer's processed records; return each outlet's batches.

        ``source`` (given only when an inlet staged a cursor or waits to hear that its records
        are safe): a :attr:`safe_on_admit` delivery stores ``source.cursors()`` with the
        records, and reports with ``source.not_stored(record, error)`` any record it could not
        store.
        """

    def read_cursor(self, inlet: str) -> StoredCursor | None:
        """The committed cursor of the link's inlet named ``inlet`` (None before the first)."""
        return None

    def commit_cursors(self, cursors: Mapping[str, CursorWrite]) -> None:
        """Commit the inlets' cursors once every outlet took the records (not safe_on_admit)."""
        if cursors:
            raise NotImplementedError(f"{type(self).__name__} cannot commit cursors")

    @abc.abstractmethod
    def settle(self, lane: Lane, batch: list[Record], error: Exception | None) -> Outcome | None:
        """Record the outcome of pushing ``batch``; for a failure, say what happens next."""


def unique_names(outlets: Sequence[Outlet], link: object, *, given_only: bool = False) -> list[str]:
    """Return the outlets' names, raising InvalidNodeError if two outlets share one.

    With ``given_only``, a shared name is refused only when at least one of the outlets was
    given it (``name=...``); two default class names pass.
    """
    names: list[str] = []
    given: set[str] = set()
    for index, outlet in enumerate(outlets):
        name, explicit = outlet.name, outlet._name is not None
        if name in names and (not given_only or explicit or name in given):
            raise InvalidNodeError(
                f"{link!r}: outlets[{index}] {outlet!r} has the name {name!r}, already "
                f"used by another outlet; give each outlet a distinct name=..."
            )
        names.append(name)
        if explicit:
            given.add(name)
    return names
