"""Record: one piece of data travelling from an inlet to the outlets."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from databay_bus._validation import optional_mapping
from databay_bus.records.metadata import INLET_KEY

__all__ = [
    "Record",
    "SharedMetadata",
    "pulled_records",
    "queued_records",
    "shared_metadata",
    "stored_records",
]

_materialize = threading.Lock()


class SharedMetadata(dict):  # type: ignore[type-arg]
    """Metadata handed to all the records of one pull at once, never mutated in place: each
    record copies it into a dict of its own the first time its ``metadata`` is read.

    Internal: code outside ``records`` sees it only in ``Record._metadata``.
    """

    __slots__ = ()


class Record:
    """A payload with its metadata, and an ``id`` once a queue has stored it.

    Create records with :meth:`Inlet.new_record` so global metadata and ``'__inlet__'`` are set.
    ``payload`` and ``metadata`` may be replaced by processors; ``id`` is ``None`` until the
    record is queued, then a stable string outlets can use for idempotent writes.
    Two records are equal when payload, metadata and id are equal; records are unhashable
    because they are mutable.
    """

    __slots__ = ("_id", "_inlet_name", "_metadata", "payload")

    def __init__(
        self, payload: Any, metadata: dict[str, Any] | None = None, *, id: str | None = None
    ) -> None:
        self.payload = payload
        if metadata is None:
            metadata = {}
        elif not isinstance(metadata, dict):
            optional_mapping(metadata, "metadata", "Record")
        self._metadata: dict[str, Any] = metadata
        self._id = id
        self._inlet_name: str | None = None

    @property
    def metadata(self) -> dict[str, Any]:
        """This record's metadata: a dict of its own, which processors and outlets may change."""
        metadata = self._metadata
        if type(metadata) is SharedMetadata:
            # Two outlets may read it at once (copy_records=False): both must get one dict.
            with _materialize:
                metadata = self._metadata
                if type(metadata) is SharedMetadata:
                    metadata = self._metadata = dict(metadata)
        return metadata

    @metadata.setter
    def metadata(self, value: dict[str, Any]) -> None:
        self._metadata = value

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
            and self._metadata == other._metadata
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        ident = "" if self._id is None else f", id={self._id!r}"
        # The payload as str(), not repr(): Databay's format (``Record(payload=test, ...)``).
        return f"Record(payload={self.payload}, metadata={self._metadata!r}{ident})"

    def __getstate__(self) -> tuple[Any, dict[str, Any], str | None, str | None]:
        # Records of one pull keep sharing one copy-on-read metadata through a pickle round trip
        # (pickle stores it once), so copying a batch for each outlet stays cheap.
        return (self.payload, self._metadata, self._id, self._inlet_name)

    def __setstate__(self, state: tuple[Any, dict[str, Any], str | None, str | None]) -> None:
        self.payload, self._metadata, self._id, self._inlet_name = state


def shared_metadata(global_metadata: Mapping[str, Any], inlet_name: str) -> SharedMetadata:
    """What :func:`~databay_bus.records.metadata.merge_metadata` gives without local
    metadata, built straight into the one dict the records of a pull share."""
    shared = SharedMetadata(global_metadata)
    shared[INLET_KEY] = inlet_name
    return shared


def pulled_records(items: list[Any], shared: SharedMetadata, inlet_name: str) -> list[Record]:
    """The records of one pull: ``items`` that are Records pass through (marked with
    ``inlet_name`` unless already marked); every other item becomes a Record of its own whose
    metadata starts as ``shared`` (copied when the record's metadata is first read)."""
    new = object.__new__
    records: list[Record] = []
    append = records.append
    for item in items:
        if isinstance(item, Record):
            if item._inlet_name is None:
                item._inlet_name = inlet_name
            append(item)
            continue
        # What Record() does, without the call: a third of the cost of a large pull.
        record = new(Record)
        record.payload, record._metadata, record._id = item, shared, None
        record._inlet_name = inlet_name
        append(record)
    return records


def stored_records(pairs: Iterable[Sequence[Any]], ids: Iterable[str]) -> list[Record]:
    """Records rebuilt from a queue: one per ``(payload, metadata)`` pair, with its id."""
    new = object.__new__
    records: list[Record] = []
    append = records.append
    for record_id, (payload, metadata) in zip(ids, pairs, strict=True):
        record = new(Record)  # as in pulled_records
        record.payload, record._metadata, record._id = payload, metadata, record_id
        record._inlet_name = None
        append(record)
    return records


def queued_records(records: Iterable[Record], ids: Iterable[str | None]) -> dict[str, Record]:
    """By id, what a queue would give back for ``records`` just stored under ``ids`` (None:
    not stored): new Records sharing each one's payload and metadata, carrying the id."""
    new = object.__new__
    found: dict[str, Record] = {}
    for source, record_id in zip(records, ids, strict=True):
        if record_id is not None:
            found[record_id] = record = new(Record)  # as in pulled_records
            record.payload, record._metadata = source.payload, source._metadata
            record._id, record._inlet_name = record_id, source._inlet_name
    return found
