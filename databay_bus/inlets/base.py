"""Inlet: the producing side of a link."""

from __future__ import annotations

import abc
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any

from databay_bus._concurrency import is_async_callable
from databay_bus._node import Node
from databay_bus._validation import optional_mapping
from databay_bus.errors import InvalidNodeError
from databay_bus.records import Record, merge_metadata
from databay_bus.records.record import pulled_records, shared_metadata

if TYPE_CHECKING:
    from databay_bus.update import Update

__all__ = ["Inlet", "wrap_pulled"]


class Inlet(Node, abc.ABC):
    """Subclass this and implement :meth:`pull` (plain or ``async def``) to produce data.

    Args:
        metadata: global metadata attached to every record this inlet makes.
        name: a stable name, unique within a link (used by routing); defaults to the class name.

    Call ``super().__init__(...)`` from your ``__init__``. Take configuration as constructor
    arguments rather than reading metadata inside ``pull``.
    """

    def __init__(self, metadata: dict[str, Any] | None = None, name: str | None = None) -> None:
        super().__init__(name)
        optional_mapping(metadata, "metadata", type(self).__name__)
        self._metadata: dict[str, Any] = {} if metadata is None else metadata
        self._pull_is_async = is_async_callable(self.pull)
        kind = type(self)
        #: True when the inlet overrides on_records_safe or on_records_failed.
        self._acks_safe = (
            kind.on_records_safe is not Inlet.on_records_safe
            or kind.on_records_failed is not Inlet.on_records_failed
        )
        if not self._pull_is_async and (
            is_async_callable(self.on_records_safe) or is_async_callable(self.on_records_failed)
        ):
            raise InvalidNodeError(
                f"{type(self).__name__}: on_records_safe/on_records_failed may be async only "
                f"when pull is async"
            )

    @property
    def metadata(self) -> dict[str, Any]:
        """The global metadata given at construction."""
        return self._metadata

    @abc.abstractmethod
    def pull(self, update: Update) -> Any | Awaitable[Any]:
        """Produce data for one transfer.

        Return a list for many records, anything else for one record, ``[]`` for none.
        Returned :class:`Record` objects pass through untouched; other values are wrapped
        with :meth:`new_record`.
        """

    def on_records_safe(self, records: list[Record], update: Update) -> Awaitable[None] | None:
        """Called once the records this inlet pulled in a transfer are safe: stored by the
        link's queue (in the transaction that also committed the inlet's cursor), or, without
        a queue, taken by every outlet. A broker inlet acknowledges its messages here.

        ``records`` are those the pull returned (before the link's processors); ``update`` is
        the transfer's. Plain or ``async def`` (the latter only with an ``async def pull``).
        An exception is logged, never raised: the source will deliver the records again.
        Not called for a pull that returned no records.
        """
        return None

    def on_records_failed(
        self, records: list[Record], update: Update, error: BaseException | None
    ) -> Awaitable[None] | None:
        """Called instead of :meth:`on_records_safe` when the records could not be made safe
        (the queue or an outlet failed, or the codec refused them): ``error`` says why. A
        broker inlet rejects (requeues) its messages here, or lets them be redelivered.
        """
        return None

    def new_record(self, payload: Any, metadata: dict[str, Any] | None = None) -> Record:
        """Make a record whose metadata is this inlet's global metadata, then ``metadata``,
        then ``'__inlet__'`` set to ``str(self)``."""
        return Record(payload, merge_metadata(self._metadata, metadata, str(self)))

    def __repr__(self) -> str:
        parts = [] if self._name is None else [f"name={self._name!r}"]
        if self._metadata:
            parts.append(f"metadata={self._metadata!r}")
        return f"{type(self).__name__}({', '.join(parts)})"


def wrap_pulled(inlet: Inlet, value: Any) -> list[Record]:
    """Turn what ``pull`` returned into a new list of records, element by element, each
    marked with the inlet's name (see :attr:`Record.inlet_name`)."""
    items = value if isinstance(value, list) else [value]
    if type(inlet).new_record is Inlet.new_record:
        # The metadata every record of this pull gets is the same: build it once.
        return pulled_records(items, shared_metadata(inlet._metadata, str(inlet)), inlet.name)
    records = [item if isinstance(item, Record) else inlet.new_record(item) for item in items]
    name = inlet.name
    for record in records:
        if record._inlet_name is None:
            record._inlet_name = name
    return records
