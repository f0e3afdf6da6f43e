"""How a transfer hands records to its outlets: the seam between pull and push.

A :class:`Delivery` turns the processed records of one transfer into one :class:`Lane` per
outlet (the batches that outlet pushes, in order) and learns the outcome of every push.
:class:`DirectDelivery` is Databay's behaviour: group once, give every outlet its own copy.
The queued delivery (``databay_bus.queue.delivery``) stores records first and hands each
outlet what is due for it, acking or scheduling retries as pushes succeed or fail.
"""

from __future__ import annotations

import abc
import enum
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from databay_bus.errors import InvalidNodeError
from databay_bus.records import Record
from databay_bus.records.copying import copies
from databay_bus.routing import route_records

if TYPE_CHECKING:
    from databay_bus.link import Link, Update
    from databay_bus.outlets.base import Outlet

__all__ = ["Delivery", "DirectDelivery", "Lane", "Outcome", "unique_names"]

_LOGGER = logging.getLogger("databay_bus.link")


@dataclass(slots=True)
class Lane:
    """The batches one outlet pushes in one transfer, in order."""

    outlet: Outlet
    batches: list[list[Record]]


class Outcome(enum.Enum):
    """What a transfer does after a failed push."""

    RAISE = "raise"  # the link's ignore_exceptions decides: log and go on, or stop and raise
    STOP = "stop"  # handled (e.g. a retry is scheduled): stop this lane, raise nothing


class Delivery(abc.ABC):
    """Strategy for admitting records and settling pushes; one per link."""

    #: True when admit/settle do blocking I/O, so async transfers run them off the loop.
    blocking: bool = False

    __slots__ = ("link",)

    def __init__(self, link: Link) -> None:
        self.link = link

    def may_pull(self, update: Update) -> bool:
        """False to skip pulling this transfer (backpressure)."""
        return True

    def check_outlets(self, outlets: Sequence[Outlet]) -> None:
        """Raise if ``outlets`` cannot be delivered to; subclasses extend, calling super().

        With a router, outlet names must be unique and every name it routes to must exist.
        """
        router = self.link.router
        if router is not None:
            names = unique_names(outlets, self.link)
            router.check(names)

    @abc.abstractmethod
    def admit(self, records: list[Record], outlets: Sequence[Outlet], update: Update) -> list[Lane]:
        """Take the transfer's processed records; return each outlet's batches."""

    @abc.abstractmethod
    def settle(self, lane: Lane, batch: list[Record], error: Exception | None) -> Outcome | None:
        """Record the outcome of pushing ``batch``; for a failure, say what happens next."""


class DirectDelivery(Delivery):
    """No queue: group the records once and give each outlet its own copy of the batches.

    With ``copy_records`` every outlet but the last gets a deep copy and the last gets the
    originals, so no outlet sees another's changes without paying for one copy too many.
    """

    __slots__ = ()

    def admit(self, records: list[Record], outlets: Sequence[Outlet], update: Update) -> list[Lane]:
        if not outlets:
            return []
        if self.link.router is not None:
            return self._routed(records, outlets, update)
        if len(outlets) == 1:  # the common case: nothing to copy, no list per outlet
            return [Lane(outlets[0], self.link.group(records, update))]
        batches = self.link.group(records, update)
        shared = [batches] * len(outlets)
        if self.link.copy_records and len(outlets) > 1:
            try:
                shared = [*copies(batches, len(outlets) - 1), batches]
            except Exception as exc:
                if not self.link.ignore_exceptions:
                    raise
                _LOGGER.error(
                    "%s: records could not be copied; outlets share them", update, exc_info=exc
                )
        return [Lane(outlet, list(b)) for outlet, b in zip(outlets, shared, strict=True)]

    def _routed(
        self, records: list[Record], outlets: Sequence[Outlet], update: Update
    ) -> list[Lane]:
        names = [outlet.name for outlet in outlets]
        routed: dict[str, list[Record]] = {name: [] for name in names}
        decided = route_records(
            self.link.router, records, names, self.link.ignore_exceptions, update
        )
        for record, targets in zip(records, decided, strict=True):
            for name in targets:
                routed[name].append(record)
        lanes = []
        for index, outlet in enumerate(outlets):
            batches = self.link.group(routed[outlet.name], update)
            if self.link.copy_records and index < len(outlets) - 1:
                batches = copies(batches, 1)[0]
            lanes.append(Lane(outlet, batches))
        return lanes

    def settle(self, lane: Lane, batch: list[Record], error: Exception | None) -> Outcome | None:
        return None if error is None else Outcome.RAISE


def unique_names(outlets: Sequence[Outlet], link: object) -> list[str]:
    """Return the outlets' names, raising InvalidNodeError if two outlets share one."""
    names: list[str] = []
    for index, outlet in enumerate(outlets):
        if outlet.name in names:
            raise InvalidNodeError(
                f"{link!r}: outlets[{index}] {outlet!r} has the name {outlet.name!r}, already "
                f"used by another outlet; give each outlet a distinct name=..."
            )
        names.append(outlet.name)
    return names
