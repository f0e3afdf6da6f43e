"""Copying record batches so that each outlet gets its own, cheaply.

``copy.deepcopy`` is the reference; a pickle round trip makes the same independent copy of
plain data (dicts, lists, strings, numbers, datetimes, Records) about four times faster, so it
is tried first, and anything pickle refuses (locks, lambdas, generators) falls back to deepcopy.
For batches of records, ``marshal`` goes before pickle when the data holds builtin types only
(it keeps tuples, sets and shared objects as they are, and refuses everything else). Pickled
and marshalled bytes never leave the process, so the usual risk of loading them does not apply.
"""

from __future__ import annotations

import copy
import marshal
import pickle
from collections.abc import Callable
from typing import Any, TypeVar

from databay_bus.records.codecs import _untouched as plain_json  # same package
from databay_bus.records.record import Record, SharedMetadata

__all__ = ["copies", "copy_batches"]

T = TypeVar("T")

_SCALARS = frozenset((str, int, float, bool, type(None)))
# Batches of at most this many records are copied by hand when plain: 3.3 us for two
# copies of one record against 5.2 through marshal; at four records both cost the same.
_BY_HAND = 2


def copies(value: T, count: int) -> list[T]:
    """Return ``count`` independent deep copies of ``value``."""
    if count <= 0:
        return []
    try:
        data = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception:
        return [copy.deepcopy(value) for _ in range(count)]
    return [pickle.loads(data) for _ in range(count)]


def copy_batches(batches: list[list[Record]], count: int) -> list[list[list[Record]]]:
    """Return ``count`` independent deep copies of ``batches``, as :func:`copies` would.

    Each record is serialised as a tuple of its fields, and a pull's shared metadata as a
    plain dict, listed apart so the copies turn it back into one SharedMetadata that their
    records share; the records are rebuilt without ``Record()``. Serialising Record and
    SharedMetadata objects themselves goes through pickle's reduce protocol, which made two
    copies of a one-record batch cost 7.1 us instead of 4.6 (issue 19). Data of builtin
    types only (the usual records) goes through ``marshal``, 10-15 % faster than pickle
    from a few records up (it refuses anything else: datetimes, subclasses, custom
    objects, which pickle copies); a batch of one or two plain records is copied by hand.
    Batches holding anything but plain :class:`Record` objects are copied by :func:`copies`
    (a subclass keeps its class). One record placed in two batches (by a grouper) becomes
    two records sharing one payload, in every way.
    """
    if count <= 0:
        return []
    if sum(map(len, batches)) <= _BY_HAND:
        by_hand = _plain_copies(batches, count)
        if by_hand is not None:
            return by_hand
    plain: dict[int, dict[str, Any]] = {}  # id(SharedMetadata) -> its plain dict
    rows: list[list[tuple[Any, Any, str | None, str | None]]] = []
    for batch in batches:
        row = []
        for record in batch:
            if type(record) is not Record:
                return copies(batches, count)
            metadata = record._metadata
            if type(metadata) is SharedMetadata:
                found = plain.get(id(metadata))
                if found is None:
                    found = plain[id(metadata)] = dict(metadata)
                metadata = found
            row.append((record.payload, metadata, record._id, record._inlet_name))
        rows.append(row)
    fields = (rows, list(plain.values()))
    load: Callable[[bytes], Any] = marshal.loads
    try:
        data = marshal.dumps(fields)
    except ValueError:  # not builtin types only
        try:
            data, load = pickle.dumps(fields, protocol=pickle.HIGHEST_PROTOCOL), pickle.loads
        except Exception:
            return [copy.deepcopy(batches) for _ in range(count)]
    return [_rebuilt(*load(data)) for _ in range(count)]


def _rebuilt(
    rows: list[list[tuple[Any, Any, str | None, str | None]]], shared: list[dict[str, Any]]
) -> list[list[Record]]:
    """The batches of records a :func:`copy_batches` pickle holds."""
    # The dicts in ``shared`` stood for SharedMetadata (each pickled once, so every record
    # of a pull still holds the same one); all other metadata is kept as it came.
    restore = {id(metadata): SharedMetadata(metadata) for metadata in shared}
    new = object.__new__
    batches: list[list[Record]] = []
    for row in rows:
        batch: list[Record] = []
        for payload, metadata, record_id, inlet_name in row:
            record = new(Record)  # as records.pulled_records does
            record.payload, record._id, record._inlet_name = payload, record_id, inlet_name
            record._metadata = restore.get(id(metadata), metadata) if restore else metadata
            batch.append(record)
        batches.append(batch)
    return batches


def _plain_copies(batches: list[list[Record]], count: int) -> list[list[list[Record]]] | None:
    """:func:`copy_batches` by hand for the usual records, or None for any other batch.

    Usual: plain Records whose payloads and metadata dicts hold only plain JSON data (see
    ``JsonCodec``'s check) and whose shared metadata holds only scalars. A copy then needs
    new dicts and lists, not new strings or numbers (immutable); an object two records hold
    stays shared in each copy, as pickle keeps it. Shared metadata of scalars is shared by
    the copies as it is: it is never changed in place (a record copies it into a dict of its
    own before any change). Two copies of a one-record batch: 5.6 us through pickle, 3.3 by
    hand (issue 19: scenario 2's 3-outlet copy_records=True case).
    """
    records = [record for batch in batches for record in batch]
    own: list[Any] = []  # metadata dicts of their own record: checked like payloads
    shared: Any = None  # the last shared metadata found to hold scalars only
    for record in records:
        if type(record) is not Record:
            return None
        metadata = record._metadata
        if type(metadata) is not SharedMetadata:
            own.append(metadata)
        elif metadata is not shared:
            if not _SCALARS.issuperset(map(type, metadata.values())):
                return None
            shared = metadata
    if not plain_json([record.payload for record in records]) or (own and not plain_json(own)):
        return None
    new = object.__new__
    made: list[list[list[Record]]] = []
    for _ in range(count):
        memo: dict[int, Any] = {}  # id(original) -> its copy, within this copy
        copied: list[list[Record]] = []
        for batch in batches:
            row: list[Record] = []
            for source in batch:
                record = new(Record)  # as records.pulled_records does
                record.payload = _plain_copy(source.payload, memo)
                metadata = source._metadata
                if type(metadata) is not SharedMetadata:  # shared: read only, scalars only
                    metadata = _plain_copy(metadata, memo)
                record._metadata = metadata
                record._id, record._inlet_name = source._id, source._inlet_name
                row.append(record)
            copied.append(row)
        made.append(copied)
    return made


def _plain_copy(value: Any, memo: dict[int, Any]) -> Any:
    """A deep copy of what ``_plain_copies`` accepts: a scalar (itself), or a dict of
    scalars and flat lists of them; each object copied once (``memo``)."""
    if type(value) is not dict:
        return value
    found = memo.get(id(value))
    if found is None:
        found = memo[id(value)] = dict(value)
        for key, item in value.items():
            if type(item) is list:
                copy_ = memo.get(id(item))
                if copy_ is None:
                    copy_ = memo[id(item)] = item[:]
                found[key] = copy_
    return found
