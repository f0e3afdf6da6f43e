"""Copying record batches so that each outlet gets its own, cheaply.

``copy.deepcopy`` is the reference; a pickle round trip makes the same independent copy of
plain data (dicts, lists, strings, numbers, datetimes, Records) about four times faster, so it
is tried first, and anything pickle refuses (locks, lambdas, generators) falls back to deepcopy.
For batches of records, ``marshal`` goes before pickle when the data holds builtin types only
(it keeps tuples, sets and shared objects as they are, and refuses everything else), and a
batch of a few records holding plain JSON data is copied by hand, without serialising. Pickled
and marshalled bytes never leave the process, so the usual risk of loading them does not apply.
"""

from __future__ import annotations

import copy
import marshal
import pickle
from collections.abc import Callable
from typing import Any, TypeVar

from databay_bus.records.codecs import _PLAIN_TYPES, _flat_lists  # same package
from databay_bus.records.record import Record, SharedMetadata

__all__ = ["copies", "copy_batches"]

T = TypeVar("T")

# Batches of at most this many records are copied by hand when plain. Two copies of the
# usual record (scalars and a short list): 2.2 us against 6.1 through marshal, of 8 such
# records 11.6 against 16.9; of 8 records holding ten lists each 39 against 32 us (a list
# costs the hand copy more than marshal), a gap that grows with the batch (issue 19).
_BY_HAND = 8


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
    objects, which pickle copies); a batch of up to ``_BY_HAND`` plain records is copied by
    hand (see ``_plain_copies``).
    Batches holding anything but plain :class:`Record` objects are copied by :func:`copies`
    (a subclass keeps its class). One record placed in two batches (by a grouper) becomes
    two records sharing one payload, in every way.
    """
    if count <= 0:
        return []
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
    """:func:`copy_batches` by hand for a few usual records, or None for any other batches.

    Usual: at most ``_BY_HAND`` plain Records whose payloads and metadata dicts are scalars
    or dicts of str keys holding scalars and flat lists of scalars, whose shared metadata
    holds only scalars, and where no dict or list is held twice (a record in two batches, a
    list two payloads hold: those go to marshal, which keeps them shared in each copy, as
    pickle would). A copy then needs a new dict per dict and a new list per list, not new
    strings or numbers (immutable). Shared metadata of scalars is shared by the copies as it
    is: it is never changed in place (a record copies it into a dict of its own before any
    change). Two copies of a one-record batch: 6.1 us through marshal, 2.2 by hand (issue
    19: scenario 2's 3-outlet copy_records=True case).
    """
    # One pass checks every record and notes, for each dict to copy, the keys holding lists,
    # so the copies need no check, no memo and no call per value: two copies of one record
    # 42.9k -> 27.1k instructions against a memo and a call per dict in each copy (issue 19).
    plans: list[list[tuple[Any, tuple[str, ...] | None, Any, tuple[str, ...] | None, Record]]]
    plans = []
    dicts: list[Any] = []  # the dicts the copies renew: all must be different objects
    lists: list[Any] = []  # the same for lists
    renew: tuple[str, ...] | None  # the keys of a payload dict holding lists (None: a scalar)
    shared: Any = None  # the last shared metadata found to hold scalars only
    scalars = _PLAIN_TYPES
    left = _BY_HAND
    for batch in batches:
        left -= len(batch)  # not sum(map(len, batches)): 1.5k instructions less
        if left < 0:
            return None
        plan = []
        for record in batch:
            if type(record) is not Record:
                return None
            payload = record.payload
            if type(payload) is dict:
                dicts.append(payload)
                renew = _flat_lists(payload, lists)
                if renew is None:
                    return None
            elif type(payload) in scalars:
                renew = None  # kept as it is: immutable
            else:
                return None
            metadata = record._metadata
            if type(metadata) is SharedMetadata:
                own = None  # shared as it is: read only (else: keys holding lists, as renew)
                if metadata is not shared:
                    for item in metadata.values():  # not frozenset.issuperset: 0.8k less
                        if type(item) not in scalars:
                            return None
                    shared = metadata
            elif type(metadata) is dict:
                dicts.append(metadata)
                own = _flat_lists(metadata, lists)
                if own is None:
                    return None
            else:
                return None
            plan.append((payload, renew, metadata, own, record))
        plans.append(plan)
    # Only two dicts or two lists can be one object: no set built for one record.
    if (len(dicts) > 1 and len(set(map(id, dicts))) != len(dicts)) or (
        len(lists) > 1 and len(set(map(id, lists))) != len(lists)
    ):
        return None
    new = object.__new__
    made: list[list[list[Record]]] = []
    for _ in range(count):
        copied: list[list[Record]] = []
        for plan in plans:
            row: list[Record] = []
            for payload, renew, metadata, own, source in plan:
                record = new(Record)  # as records.pulled_records does
                # .copy(), not dict(x) or x[:]: 0.5k instructions less per dict and list.
                if renew is not None:
                    payload = payload.copy()
                    for key in renew:
                        payload[key] = payload[key].copy()
                if own is not None:
                    metadata = metadata.copy()
                    for key in own:
                        metadata[key] = metadata[key].copy()
                record.payload = payload
                record._metadata = metadata
                record._id = source._id
                record._inlet_name = source._inlet_name
                row.append(record)
            copied.append(row)
        made.append(copied)
    return made
