"""Record: one piece of data travelling from an inlet to the outlets."""

from __future__ import annotations

from typing import Any

__all__ = ["Record"]


class Record:
    """A payload with its metadata, and an ``id`` once a queue has stored it.

    Create records with :meth:`Inlet.new_record` so global metadata and ``'__inlet__'`` are set.
    ``payload`` and ``metadata`` may be replaced by processors; ``id`` is ``None`` until the
    record is queued, then a stable string outlets can use for idempotent writes.
    Two records are equal when payload, metadata and id are equal; records are unhashable
    because they are mutable.
    """

    __slots__ = ("_id", "_inlet_name", "metadata", "payload")

    def __init__(
        self, payload: Any, metadata: dict[str, Any] | None = None, *, id: str | None = None
    ) -> None:
        self.payload = payload
        self.metadata: dict[str, Any] = {} if metadata is None else metadata
        self._id = id
        self._inlet_name: str | None = None

    @property
    def id(self) -> str | None:
        """The queue's stable id for this record, or ``None`` when it was never queued."""
        return self._id

    @property
    def inlet_name(self) -> str | None:
        """Name of the inlet whose pull produced this record (None for records made elsewhere).

        Set by the link after each pull; routers use it. Not part of equality, not queued.
        """
        return self._inlet_name

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Record):
            return NotImplemented
        return (
            self._id == other._id
            and self.payload == other.payload
            and self.metadata == other.metadata
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        ident = "" if self._id is None else f", id={self._id!r}"
        return f"Record(payload={self.payload!r}, metadata={self.metadata!r}{ident})"

    def __getstate__(self) -> tuple[Any, dict[str, Any], str | None, str | None]:
        return (self.payload, self.metadata, self._id, self._inlet_name)

    def __setstate__(self, state: tuple[Any, dict[str, Any], str | None, str | None]) -> None:
        self.payload, self.metadata, self._id, self._inlet_name = state
