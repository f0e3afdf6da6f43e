"""Update and the stage aliases: what every node and stage of a transfer is handed.

Kept apart from ``link.py`` so inlets, outlets, observers and processors can name these
types without importing the pipeline (``databay_bus.link.Update`` still works).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from databay_bus.records import Record

__all__ = ["Grouper", "Processor", "Update"]

#: A processing stage: takes the records and returns the records to go on with.
Processor = Callable[[list[Record]], list[Record]]
#: A grouping stage: takes the batches and returns the batches to push, each separately.
Grouper = Callable[[list[list[Record]]], list[list[Record]]]


class Update:
    """What a transfer passes to ``pull`` and ``push``: the link's tags and the transfer number.

    ``str(update)`` is the tags joined by dots followed by the number, e.g. ``'prices.3'``.
    """

    __slots__ = ("tags", "transfer_number")

    def __init__(self, tags: Sequence[str], transfer_number: int) -> None:
        self.tags = list(tags)
        self.transfer_number = transfer_number

    def __repr__(self) -> str:
        return ".".join([*self.tags, str(self.transfer_number)])

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Update):
            return NotImplemented
        return self.tags == other.tags and self.transfer_number == other.transfer_number

    __hash__ = None  # type: ignore[assignment]
