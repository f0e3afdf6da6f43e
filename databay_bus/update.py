"""Update and the stage aliases: what every node and stage of a transfer is handed.

Kept apart from ``link.py`` so inlets, outlets, observers and processors can name these
types without importing the pipeline (``databay_bus.link.Update`` still works).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from databay_bus.cursors import current_pull
from databay_bus.errors import CursorError, describe
from databay_bus.records import Record

__all__ = ["Grouper", "Processor", "Update"]

#: A processing stage: takes the records and returns the records to go on with.
Processor = Callable[[list[Record]], list[Record]]
#: A grouping stage: takes the batches and returns the batches to push, each separately.
Grouper = Callable[[list[list[Record]]], list[list[Record]]]


class Update:
    """What a transfer passes to ``pull`` and ``push``: the link's tags and the transfer number.

    ``str(update)`` is the tags joined by dots followed by the number, e.g. ``'prices.3'``.

    Inside ``pull``, :attr:`cursor` and :meth:`commit_cursor` give the inlet its durable
    bookmark (see docs/cursors.md); they know which inlet is pulling (the link marks each
    pull, in its thread or task), so every node still receives the same Update.
    """

    __slots__ = ("tags", "transfer_number")

    def __init__(self, tags: Sequence[str], transfer_number: int) -> None:
        self.tags = list(tags)
        self.transfer_number = transfer_number

    @property
    def cursor(self) -> Any:
        """The pulling inlet's last committed cursor (None before the first commit).

        Raises:
            CursorError: read outside an inlet's pull (in push, a processor, or after the
                pull returned).
        """
        pull = current_pull(self)
        if pull is None:
            raise CursorError(
                f"{self}: update.cursor is only available inside an inlet's pull(update)"
            )
        return pull.read()

    def commit_cursor(self, value: Any) -> None:
        """Stage ``value`` (JSON-storable) as the pulling inlet's next cursor.

        It is committed with the records of this pull: in the same transaction when the link
        has a queue, after every outlet took them when it has none. If the transfer fails
        before that, the next pull sees the previous cursor again.

        Raises:
            CursorError: ``value`` is not JSON-storable, this pull already committed one, or
                it is called outside an inlet's pull.
        """
        pull = current_pull(self)
        if pull is None:
            raise CursorError(
                f"{self}: update.commit_cursor({describe(value)}) is only allowed inside an "
                f"inlet's pull(update)"
            )
        pull.commit(value)

    def __repr__(self) -> str:
        return ".".join([*self.tags, str(self.transfer_number)])

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Update):
            return NotImplemented
        return self.tags == other.tags and self.transfer_number == other.transfer_number

    __hash__ = None  # type: ignore[assignment]
