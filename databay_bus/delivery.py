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

from databay_bus.records import Record
from databay_bus.records.copying import copies

if TYPE_CHECKING:
    from databay_bus.link import Link, Update
    from databay_bus.outlets.base import Outlet

__all__ = ["Delivery", "DirectDelivery", "Lane", "Outcome"]

_LOGGER = logging.getLogger("databay_bus.link")


@dataclass
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

    def __init__(self, link: Link) -> None:
        self.link = link

    def may_pull(self, update: Update) -> bool:
        """False to skip pulling this transfer (backpressure)."""
        return True

    def check_outlets(self, outlets: Sequence[Outlet]) -> None:  # noqa: B027 - optional hook
        """Raise if ``outlets`` cannot be delivered to (e.g. duplicate names)."""

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

    def admit(self, records: list[Record], outlets: Sequence[Outlet], update: Update) -> list[Lane]:
        if not outlets:
            return []
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

    def settle(self, lane: Lane, batch: list[Record], error: Exception | None) -> Outcome | None:
        return None if error is None else Outcome.RAISE
