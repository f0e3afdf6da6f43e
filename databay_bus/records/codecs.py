"""Codecs: how a record queue turns a record's payload and metadata into bytes and back.

:class:`JsonCodec` stores plain JSON data exactly (``None``, ``bool``,
``int``, ``float``, ``str``, lists, dicts with string keys) and tags the few other values
records commonly carry so they come back with their type: ``tuple``, ``datetime``, ``date``,
``time``, ``timedelta``, ``bytes``, ``bytearray`` and ``Decimal``. Anything else (a set, an
object, a dict with non-string keys) raises :class:`~databay_bus.errors.RecordEncodeError`
instead of being changed silently.

:class:`OrjsonCodec` (the ``orjson`` extra) writes and reads the same format as JsonCodec,
faster, under the same codec name: a queue may switch between the two.

A queue given no codec uses :func:`default_codec`: OrjsonCodec when orjson can be imported,
else JsonCodec. Since both store the same bytes under the name ``json``, which one a
process picked never shows in the data; pass ``codec=JsonCodec()`` to force the standard
library.

:class:`PickleCodec` stores any picklable object. It is never the default: loading a pickle
runs code named in the data, so only use it for queue files nobody else can write.
"""

from __future__ import annotations

import datetime as _dt
import itertools
import json
import json.encoder
import operator
import pickle
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Protocol, TypeGuard

from databay_bus.errors import CodecError, MissingDependencyError, RecordEncodeError
from databay_bus.records.metadata import INLET_KEY
from databay_bus.records.record import SharedMetadata

if TYPE_CHECKING:
    from databay_bus.records.record import Record

__all__ = [
    "TAG",
    "Codec",
    "CodecError",
    "JsonCodec",
    "OrjsonCodec",
    "PickleCodec",
    "default_codec",
    "encode_record",
]

#: The key that marks a tagged value in JsonCodec's output: ``{TAG: kind, "v": value}``.
TAG = "$databay_bus"
_TAG_BYTES = json.dumps(TAG).encode("utf-8")
# Between two records' documents in one list, and how it looks encoded there.
_SEPARATOR = "\x1e"
_SEPARATOR_JSON = "," + json.dumps(_SEPARATOR) + ","
_PAYLOAD = operator.attrgetter("payload")
_METADATA = operator.attrgetter("_metadata")


class Codec(Protocol):
    """Turns ``(payload, metadata)`` into bytes and back; ``name`` is stored with each record.

    ``encode`` raises :class:`~databay_bus.errors.CodecError` (or any exception) for what it
    cannot store;
    the queue turns that into a :class:`~databay_bus.errors.RecordEncodeError`.

    A codec may also offer batch forms the queue uses when present: ``encode_records(records)``
    (the bytes of each record, as ``encode`` gives them) and ``decode_many(encoded)`` (what
    ``decode`` gives for each, as 2-item sequences). They must agree with ``encode`` and
    ``decode`` exactly.
    """

    name: str

    def encode(self, payload: Any, metadata: dict[str, Any]) -> bytes:
        """Return bytes from which ``decode`` rebuilds an equal payload and metadata."""

    def decode(self, data: bytes) -> tuple[Any, dict[str, Any]]:
        """Rebuild ``(payload, metadata)`` from ``encode``'s bytes."""


def encode_record(codec: Codec, payload: Any, metadata: dict[str, Any]) -> bytes:
    """Encode with ``codec``, raising RecordEncodeError naming the inlet and the type."""
    try:
        return codec.encode(payload, metadata)
    except Exception as exc:
        inlet = metadata.get(INLET_KEY) if isinstance(metadata, dict) else None
        if isinstance(exc, CodecError):
            where, value, reason = exc.path, exc.value, exc.reason
        else:
            where, value, reason = "record", payload, f"{type(exc).__name__}: {exc}"
        raise RecordEncodeError(codec.name, inlet, where, type(value), reason) from exc


class JsonCodec:
    """JSON with tags for tuples, datetimes, bytes and Decimals, by the standard library.

    Floats keep ``nan`` and ``inf`` (Python's JSON extension). A dict that happens to use
    the tag key is itself stored tagged, so no user data is ever mistaken for a tag.
    """

    name = "json"

    def __init__(self) -> None:
        self._encoder = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))
        self._chunks = chunks = _c_encoder()
        self._encode: Callable[[Any], str] = self._encoder.encode
        if chunks is not None:
            self._encode = lambda document: "".join(chunks(document, 0))
        self._decoder = json.JSONDecoder(object_hook=_untag)
        self._plain = json.JSONDecoder()

    def encode(self, payload: Any, metadata: dict[str, Any]) -> bytes:
        try:
            document = [_tagged(payload), _tagged(metadata)]
        except CodecError:  # walk again to say where the bad value sits
            document = [_tagged_at(payload, "payload"), _tagged_at(metadata, "metadata")]
        return self._encode(document).encode("utf-8")

    def encode_records(self, records: Sequence[Record]) -> list[bytes]:
        """``[encode(r.payload, r.metadata) for r in records]``, without a call per record.

        Raises what ``encode`` raises for the first record it cannot store.
        """
        # The records of one pull share their metadata: it is tagged and encoded once, and
        # joined to each payload (see _documents and _tails).
        prepared = self._documents(records)
        if prepared is None:
            return [self.encode(r.payload, r.metadata) for r in records]
        return self._encode_documents(*prepared)

    def _encode_documents(self, documents: list[Any], tails: str | list[str]) -> list[bytes]:
        """Each record's bytes from ``_documents``' payloads and tails.

        One C encoder call for all the payloads, a separator string between them, then a
        split: the separator's JSON form is only ever ours if it occurs exactly once between
        each two payloads (else: one call per record).
        """
        count = (len(documents) + 1) // 2
        encode = self._encode
        text = encode(documents)
        if isinstance(tails, str):
            # All in C: each separator becomes the end of one record and the start of the
            # next, with a newline (never in compact JSON) to split the bytes on.
            joined = text[:-1].replace(_SEPARATOR_JSON, tails + "\n[") + tails
            encoded = joined.encode().split(b"\n")
            if len(encoded) == count:
                return encoded
        parts = text[1:-1].split(_SEPARATOR_JSON)
        if len(parts) != count:
            parts = [encode(payload) for payload in documents[::2]]
        if isinstance(tails, str):
            tails = [tails] * len(parts)
        return [f"[{part}{tail}".encode() for part, tail in zip(parts, tails, strict=True)]

    def _documents(
        self, records: Sequence[Record]
    ) -> tuple[list[Any], str | list[str]] | None:
        """The payloads to encode in one call, ``_SEPARATOR`` between each two, and the
        records' tails (see ``_tails``); None for fewer than two records or one that
        cannot be stored (then each is encoded on its own, to say which)."""
        if len(records) < 2:
            return None
        try:
            payloads = list(map(_PAYLOAD, records))
            documents: list[Any] = [_SEPARATOR] * (2 * len(records) - 1)
            documents[::2] = payloads if _untouched(payloads) else map(_tagged, payloads)
            return documents, self._tails(list(map(_METADATA, records)))
        except CodecError:
            return None

    def _tails(self, metadatas: list[dict[str, Any]]) -> str | list[str]:
        """Each record's ``',<metadata>]'``; one string when all share one metadata dict."""
        first = metadatas[0]
        if all(map(operator.is_, metadatas, itertools.repeat(first))):
            return self._tail(first)
        tails: list[str] = []
        last: Any = None
        tail = ""
        for metadata in metadatas:
            if metadata is not last:
                last, tail = metadata, self._tail(metadata)
            tails.append(tail)
        return tails

    def _tail(self, metadata: dict[str, Any]) -> str:
        plain = dict(metadata) if type(metadata) is SharedMetadata else metadata
        return "," + self._encode(_tagged(plain)) + "]"

    def decode(self, data: bytes) -> tuple[Any, dict[str, Any]]:
        text = data.decode("utf-8")
        # Most records hold no tagged value: skip the per-dict hook for them, and call the
        # C scanner directly (what JSONDecoder.decode does after a whitespace regex).
        decoder = self._decoder if _TAG_BYTES in data else self._plain
        try:
            document, end = decoder.scan_once(text, 0)  # type: ignore[attr-defined]
        except StopIteration:
            end = -1
        if end != len(text):
            document = decoder.decode(text)  # not our output: let json report the error
        payload, metadata = document
        return payload, metadata

    def decode_many(self, encoded: Sequence[bytes]) -> list[Sequence[Any]]:
        """``[decode(d) for d in encoded]``, faster: one JSON scan of all of them.

        Each item is a ``(payload, metadata)`` pair, as a tuple or a two-item list.

        Each of ``encode``'s outputs is exactly one JSON array ``[payload, metadata]``, so
        joined with commas inside brackets they form one array of those. Anything else (not
        this codec's output, corrupt data) is decoded one by one, raising what ``decode``
        raises.
        """
        if len(encoded) > 1:
            joined = b"[" + b",".join(encoded) + b"]"
            decoder = self._decoder if _TAG_BYTES in joined else self._plain
            try:
                documents = decoder.decode(joined.decode("utf-8"))
            except ValueError:
                documents = None
            if _pairs(documents, len(encoded)):
                return documents
        return [self.decode(data) for data in encoded]

    def __repr__(self) -> str:
        return "JsonCodec()"


class OrjsonCodec(JsonCodec):
    """JsonCodec's format, written and read by ``orjson`` (the ``orjson`` extra): faster.

    The same JSON with the same tags, stored under the same codec name, ``'json'``: either
    codec reads what the other wrote, so a queue can switch between them both ways, and a
    databay_bus without orjson still reads the records. What orjson would not keep exactly
    is left to the standard library, record by record: ``nan`` and ``inf`` (orjson writes
    ``null``), integers beyond 64 bits, values orjson refuses (a float subclass), and, when
    reading, tagged values and numbers of 19 digits or more (orjson reads them as floats).

    Raises:
        MissingDependencyError: orjson is not installed.
    """

    def __init__(self) -> None:
        super().__init__()
        try:
            import orjson
        except ImportError as exc:
            raise MissingDependencyError("orjson", "orjson", "OrjsonCodec") from exc
        self._dumps: Callable[[Any], bytes] = orjson.dumps
        self._loads: Callable[[bytes], Any] = orjson.loads
        self._separator = b"," + orjson.dumps(_SEPARATOR) + b","

    def encode(self, payload: Any, metadata: dict[str, Any]) -> bytes:
        # The metadata through json, as in encode_records: orjson refuses str subclasses
        # as keys, and metadata keys often are MetadataKeys.
        try:
            tagged, tail = _tagged(payload), self._tail(metadata)
        except CodecError:
            return super().encode(payload, metadata)  # raises, saying where
        return b"[" + self._dump(tagged) + tail.encode()

    def _encode_documents(self, documents: list[Any], tails: str | list[str]) -> list[bytes]:
        # As JsonCodec does it: one orjson call for all the payloads, then a split.
        payloads = documents[::2]
        try:
            data = self._dumps(documents)
        except TypeError:  # something only the standard library stores: see each
            data = b""
        parts = data[1:-1].split(self._separator)
        if len(parts) != len(payloads):
            parts = list(map(self._dump, payloads))
        elif b"null" in data:  # None, or a nan or inf orjson wrote as null: see those
            parts = [
                self._dump(payload) if b"null" in part else part
                for payload, part in zip(payloads, parts, strict=True)
            ]
        if isinstance(tails, str):
            tail = tails.encode()
            return [b"[" + part + tail for part in parts]
        return [b"[" + p + t.encode() for p, t in zip(parts, tails, strict=True)]

    def _dump(self, value: Any) -> bytes:
        """orjson's JSON of plain JSON data, or json's where orjson's would differ."""
        try:
            data = self._dumps(value)
        except TypeError:  # an int beyond 64 bits, a float subclass, deep nesting, ...
            return self._encode(value).encode()
        if b"null" in data and not _finite(value):  # orjson wrote nan or inf as null
            return self._encode(value).encode()
        return data

    def decode(self, data: bytes) -> tuple[Any, dict[str, Any]]:
        if _TAG_BYTES in data or _LONG_NUMBER in data.translate(_DIGITS):
            return super().decode(data)
        try:
            document = self._loads(data)
        except ValueError:  # not orjson's JSON (nan, inf), or not JSON: json decides
            return super().decode(data)
        payload, metadata = document
        return payload, metadata

    def decode_many(self, encoded: Sequence[bytes]) -> list[Sequence[Any]]:
        """``[decode(d) for d in encoded]``, faster: one orjson call for all of them."""
        if len(encoded) > 1:
            joined = b"[" + b",".join(encoded) + b"]"
            if _TAG_BYTES not in joined and _LONG_NUMBER not in joined.translate(_DIGITS):
                try:
                    documents = self._loads(joined)
                except ValueError:
                    documents = None
                if _pairs(documents, len(encoded)):
                    return documents
        return super().decode_many(encoded)

    def __repr__(self) -> str:
        return "OrjsonCodec()"


def default_codec() -> JsonCodec:
    """The codec of a queue given none: :class:`OrjsonCodec` when orjson can be imported,
    else :class:`JsonCodec`.

    Either writes the same bytes under the name ``json`` and reads the other's records, so
    the choice only changes the speed. ``JsonCodec()`` forces the standard library.
    """
    try:
        return OrjsonCodec()
    except MissingDependencyError:
        return JsonCodec()


def _pairs(documents: Any, count: int) -> TypeGuard[list[Sequence[Any]]]:
    """True for a list of ``count`` two-item lists (what decode_many's callers expect)."""
    return (
        type(documents) is list
        and len(documents) == count
        and all(type(d) is list and len(d) == 2 for d in documents)
    )


# An integer orjson may not read exactly has 19 digits or more: every digit maps to "0".
_DIGITS = bytes.maketrans(b"123456789", b"000000000")
_LONG_NUMBER = b"0" * 19


def _finite(value: Any) -> bool:
    """False when a float inside plain JSON data is nan or infinite."""
    kind = type(value)
    if kind is float:
        return bool(value - value == 0.0)
    if kind is list:
        return all(map(_finite, value))
    if kind is dict:
        return all(map(_finite, value.values()))
    return True


class PickleCodec:
    """Stores any picklable payload. Opt-in only: unpickling can run arbitrary code.

    Args:
        protocol: the pickle protocol (default: the highest available).
    """

    name = "pickle"

    def __init__(self, protocol: int = pickle.HIGHEST_PROTOCOL) -> None:
        self.protocol = protocol

    def encode(self, payload: Any, metadata: dict[str, Any]) -> bytes:
        return pickle.dumps((payload, metadata), protocol=self.protocol)

    def decode(self, data: bytes) -> tuple[Any, dict[str, Any]]:
        payload, metadata = pickle.loads(data)  # the user opted in (see docs/queue.md)
        return payload, metadata

    def __repr__(self) -> str:
        return f"PickleCodec(protocol={self.protocol})"


def _c_encoder() -> Callable[[Any, int], list[str]] | None:
    """CPython's C encoder, built once (``JSONEncoder.encode`` rebuilds it on every call).

    Called as ``encoder(document, 0)`` it returns the JSON text in pieces; the same text
    as the JSONEncoder in :class:`JsonCodec`. ``_tagged`` has already turned every value
    into plain JSON data, so no ``default`` hook is ever needed.
    """
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:  # pragma: no cover - not CPython
        return None

    def refuse(value: Any) -> Any:
        raise TypeError(f"{type(value).__name__} is not JSON data")

    encoder: Callable[[Any, int], list[str]] = make(
        None, refuse, json.encoder.encode_basestring, None, ":", ",", False, False, True
    )
    return encoder


_PLAIN = (str, int, float, bool, type(None))


_PLAIN_TYPES = frozenset(_PLAIN)


def _untouched(values: list[Any]) -> bool:
    """True when ``_tagged`` would return each of ``values`` as it is, seen without a call
    per value for the usual record: a dict of str keys holding plain JSON values and flat
    lists of them. False may also mean: not sure (``_tagged`` decides)."""
    # A plain walk, not _tagged's call per value and container: the walk is a fifth of a
    # queued transfer's cost.
    plain, tag = _PLAIN_TYPES, TAG
    for value in values:
        if type(value) is not dict:
            if type(value) in plain:
                continue
            return False
        if tag in value or _flat_lists(value) is None:
            return False
    return True


def _flat_lists(value: dict[Any, Any], lists: list[Any] | None = None) -> tuple[str, ...] | None:
    """The keys of ``value`` that hold lists, when it holds only str keys, plain JSON
    values and flat lists of them (else None); with ``lists``, those lists are appended to
    it. The usual record's shape, checked by the codecs and by ``copying``'s hand copy."""
    plain = _PLAIN_TYPES
    found: tuple[str, ...] = ()
    for key, item in value.items():
        if type(key) is not str:
            return None
        kind = type(item)
        if kind in plain:
            continue
        if kind is not list:
            return None
        for element in item:
            if type(element) not in plain:
                return None
        if lists is not None:
            lists.append(item)
        found += (key,)
    return found


def _tagged(value: Any) -> Any:
    """Return ``value`` as plain JSON data, tagging the non-JSON types we support.

    Containers that hold only plain JSON data (the usual record) are returned as they are,
    uncopied; a container is copied only where something inside it had to be tagged.
    """
    kind = type(value)
    if kind in _PLAIN_TYPES:
        return value
    if kind is dict:
        changed: list[tuple[str, Any]] | None = None
        for key, item in value.items():
            if type(key) is not str and not isinstance(key, str):
                raise CodecError("", key, "dict keys must be str")
            kind = type(item)
            if kind in _PLAIN_TYPES:
                continue
            if kind is list:  # a flat list of plain values needs no call
                for element in item:
                    if type(element) not in _PLAIN_TYPES:
                        break
                else:
                    continue
            tagged = _tagged(item)
            if tagged is not item:
                if changed is None:
                    changed = []
                changed.append((key, tagged))
        if changed is None and TAG not in value:
            return value
        out = dict(value)
        if changed:
            out.update(changed)
        if TAG in out:
            return {TAG: "dict", "v": [[k, v] for k, v in out.items()]}
        return out
    if kind is list:
        for index, item in enumerate(value):
            if type(item) in _PLAIN_TYPES:
                continue
            tagged = _tagged(item)
            if tagged is not item:
                return [*value[:index], tagged, *[_tagged(rest) for rest in value[index + 1 :]]]
        return value
    if kind is tuple:
        return {TAG: "tuple", "v": [_tagged(item) for item in value]}
    if kind is _dt.datetime:
        return {TAG: "datetime", "v": value.isoformat()}
    if kind is _dt.date:
        return {TAG: "date", "v": value.isoformat()}
    if kind is _dt.time:
        if value.tzinfo is not None:
            raise CodecError("", value, "times with a tzinfo are not supported")
        return {TAG: "time", "v": value.isoformat()}
    if kind is _dt.timedelta:
        return {TAG: "timedelta", "v": [value.days, value.seconds, value.microseconds]}
    if kind is bytes:
        return {TAG: "bytes", "v": value.hex()}
    if kind is bytearray:
        return {TAG: "bytearray", "v": value.hex()}
    if kind is Decimal:
        return {TAG: "decimal", "v": str(value)}
    if isinstance(value, _PLAIN) and not isinstance(value, bool):
        return value  # str/int/float subclasses (enums, MetadataKey) are stored by value
    raise CodecError("", value, "JSON cannot store it; convert it, or opt in to PickleCodec")


def _tagged_at(value: Any, path: str) -> Any:
    """``_tagged``, but a CodecError says where in ``value`` the bad object sits."""
    try:
        return _tagged(value)
    except CodecError as exc:
        where = _locate(value, exc.value, path) or path
        raise CodecError(where, exc.value, exc.reason) from None


def _locate(value: Any, bad: Any, path: str) -> str | None:
    """The path of ``bad`` (found by identity) inside ``value``, e.g. ``payload['a'][2]``."""
    if value is bad:
        return path
    if isinstance(value, dict):
        for key, item in value.items():
            if key is bad:
                return f"{path} key {key!r}"
            found = _locate(item, bad, f"{path}[{key!r}]")
            if found:
                return found
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            found = _locate(item, bad, f"{path}[{index}]")
            if found:
                return found
    return None


def _untag(obj: dict[str, Any]) -> Any:
    if len(obj) != 2 or TAG not in obj:
        return obj
    kind, value = obj[TAG], obj["v"]
    if kind == "tuple":
        return tuple(value)
    if kind == "datetime":
        return _dt.datetime.fromisoformat(value)
    if kind == "date":
        return _dt.date.fromisoformat(value)
    if kind == "time":
        return _dt.time.fromisoformat(value)
    if kind == "timedelta":
        return _dt.timedelta(days=value[0], seconds=value[1], microseconds=value[2])
    if kind == "bytes":
        return bytes.fromhex(value)
    if kind == "bytearray":
        return bytearray.fromhex(value)
    if kind == "decimal":
        return Decimal(value)
    if kind == "dict":
        return {k: v for k, v in value}
    return obj
