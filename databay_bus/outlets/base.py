"""Outlet: the consuming side of a link."""

from __future__ import annotations

import abc
from collections.abc import Awaitable, Sequence
from typing import Any

from databay_bus._concurrency import is_async_callable
from databay_bus._node import Node
from databay_bus._validation import as_callables
from databay_bus.records import MetadataKey, Record
from databay_bus.update import Processor, Update

__all__ = ["MetadataKey", "Outlet", "Processor"]


class Outlet(Node, abc.ABC):
    """Subclass this and implement :meth:`push` (plain or ``async def``) to consume records.

    Args:
        processors: callables ``list[Record] -> list[Record]`` run, in order, on every batch
            just before it reaches :meth:`push` (after the link's processors and groupers).
        name: identifies the outlet within a link; keys its deliveries in a record queue and
            its routes. Defaults to the class name. Must be unique within a queued or routed link.

    Declare the metadata keys the outlet reads as ``MetadataKey`` class attributes and behave
    sensibly when a record does not carry them.
    """

    def __init__(
        self,
        processors: Processor | Sequence[Processor] | None = None,
        name: str | None = None,
    ) -> None:
        super().__init__(name)
        self.processors: list[Processor] = as_callables(processors, "processors", self)
        self._push_is_async = is_async_callable(self.push)

    @abc.abstractmethod
    def push(self, records: list[Record], update: Update) -> Any | Awaitable[Any]:
        """Write ``records`` somewhere. Called once per batch, also with ``[]``.

        Raise to signal failure; with a queue the records are then retried. Queued records
        carry ``record.id``: use it to make writes idempotent.
        """

    def _process(self, records: list[Record]) -> list[Record]:
        for processor in self.processors:
            records = processor(records)
        return records

    def __repr__(self) -> str:
        name = "" if self._name is None else f"name={self._name!r}"
        return f"{type(self).__name__}({name})"
