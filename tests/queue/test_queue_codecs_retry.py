"""Codecs (JSON with tags, through orjson by default when installed; pickle opt-in) and
RetryPolicy."""

from __future__ import annotations

import datetime as dt
import enum
import math
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from databay_bus.errors import (
    ConfigurationError,
    DatabayBusError,
    MissingDependencyError,
    RecordEncodeError,
)
from databay_bus.queue import MemoryQueue, RetryPolicy, SqliteQueue
from databay_bus.records import (
    JsonCodec,
    MetadataKey,
    OrjsonCodec,
    PickleCodec,
    Record,
    default_codec,
)
from databay_bus.records.codecs import TAG, CodecError, encode_record
from databay_bus.records.record import SharedMetadata, pulled_records


class Colour(enum.IntEnum):
    RED = 1


#: What JsonCodec (and OrjsonCodec) must give back equal and of the same type.
ROUND_TRIP = [
    None,
    True,
    3,
    2.5,
    "é",
    [1, [2]],
    {"a": {"b": None}},
    (1, (2, "x")),
    dt.datetime(2024, 5, 6, 7, 8, 9, 123456),
    dt.datetime(2024, 5, 6, tzinfo=dt.timezone(dt.timedelta(hours=2))),
    dt.date(2024, 5, 6),
    dt.time(7, 8, 9),
    dt.timedelta(days=-1, seconds=5),
    b"\x00\x01",
    bytearray(b"ab"),
    Decimal("-1.500"),
    {TAG: "datetime", "v": "not a tag"},
]


class TestJsonCodec:
    @pytest.mark.parametrize(
        "value",
        ROUND_TRIP,
        ids=repr,
    )
    def test_round_trip(self, value: object) -> None:
        """Each supported value comes back equal and of the same type."""
        codec = JsonCodec()
        payload, metadata = codec.decode(codec.encode(value, {"__inlet__": "I"}))
        assert payload == value and type(payload) is type(value)
        assert metadata == {"__inlet__": "I"}

    def test_nan_survives(self) -> None:
        codec = JsonCodec()
        assert math.isnan(codec.decode(codec.encode(float("nan"), {}))[0])

    def test_str_subclasses_are_stored_by_value(self) -> None:
        codec = JsonCodec()
        key = MetadataKey("Out.KEY")
        assert codec.decode(codec.encode(Colour.RED, {key: 1})) == (1, {"Out.KEY": 1})

    @pytest.mark.parametrize(
        ("value", "type_name"),
        [({1, 2}, "set"), ({1: "a"}, "int"), (object(), "object"), ([complex(1, 2)], "complex")],
    )
    def test_unstorable_values_raise_naming_inlet_and_type(
        self, value: object, type_name: str
    ) -> None:
        """No silent conversion: the error names the inlet, the place and the type."""
        with pytest.raises(RecordEncodeError) as info:
            encode_record(JsonCodec(), value, {"__inlet__": "HttpInlet(name='prices')"})
        message = str(info.value)
        assert "HttpInlet(name='prices')" in message and type_name in message
        assert info.value.inlet == "HttpInlet(name='prices')"

    def test_encode_error_fields_say_codec_place_type_and_reason(self) -> None:
        with pytest.raises(RecordEncodeError) as info:
            encode_record(JsonCodec(), {"x": [{1}]}, {"__inlet__": "I"})
        error = info.value
        assert (error.codec, error.inlet, error.path, error.value_type) == (
            "json",
            "I",
            "payload['x'][0]",
            set,
        )
        assert "JSON cannot store it" in error.reason
        assert isinstance(error.__cause__, CodecError)
        assert isinstance(error.__cause__, DatabayBusError)

    def test_bad_metadata_is_reported_too(self) -> None:
        with pytest.raises(RecordEncodeError, match="metadata"):
            encode_record(JsonCodec(), 1, {"__inlet__": "I", "x": {1}})

    def test_tagging_copies_only_what_changes_and_never_the_input(self) -> None:
        """A tagged value deep inside is found; the caller's containers are left as they were."""
        when = dt.date(2024, 1, 2)
        payload = {"plain": [1, "a"], "deep": [[{"k": [when, 2]}]], TAG: 1}
        before = repr(payload)
        codec = JsonCodec()
        assert codec.decode(codec.encode(payload, {})) == (payload, {})
        assert repr(payload) == before

    def test_deep_nesting_stays_linear(self) -> None:
        """Each level is walked once, not once more per tagged level below it."""
        value: object = dt.date(2024, 1, 2)
        for _ in range(60):
            value = [value]
        codec = JsonCodec()
        assert codec.decode(codec.encode(value, {}))[0] == value

    def test_batch_forms_agree_with_single_ones(self) -> None:
        """encode_records and decode_many give exactly what encode and decode give."""
        codec = JsonCodec()
        records = [
            Record({"n": n, "t": (n, "x"), "when": dt.date(2024, 1, n + 1)}, {"__inlet__": "I"})
            for n in range(5)
        ] + [
            Record([1.5, None, True], {}),
            Record(["a", "\x1e", "b"], {}),  # the separator's JSON form inside a payload
            Record(["\x1e", {"\x1e": "\x1e"}], {"k": "\x1e"}),
        ]
        encoded = codec.encode_records(records)
        assert encoded == [codec.encode(r.payload, r.metadata) for r in records]
        assert [tuple(d) for d in codec.decode_many(encoded)] == [codec.decode(d) for d in encoded]
        assert codec.decode_many([]) == []
        assert codec.encode_records([]) == []
        for record in records:  # one record alone, and each next to a tricky one
            assert codec.encode_records([record]) == [codec.encode(record.payload, record.metadata)]
            pair = [record, records[-1]]
            assert codec.encode_records(pair) == [codec.encode(r.payload, r.metadata) for r in pair]

    def test_batch_of_flat_dicts_still_tags_or_refuses_the_odd_one(self) -> None:
        """Flat dicts of plain values skip the walk as a batch; one record among them that
        needs a tag (deep or shallow) or must be refused still is, as encode does it."""
        codec = JsonCodec()
        plain = [
            {"n": n, "s": f"x{n}", "f": n / 3, "b": True, "l": ["a", 1, None]} for n in range(3)
        ]
        for odd in (
            {"l": ["a", (1, 2)]},
            {"d": {"t": (1,)}},
            {TAG: 1},
            {"f": float("nan"), "i": -float("inf")},
            [1, 2],
            "\x1e",
            {"m": MetadataKey("k"), MetadataKey("key"): 1},
        ):
            records = [Record(p, {"__inlet__": "I"}) for p in [*plain, odd, *plain]]
            encoded = codec.encode_records(records)
            assert encoded == [codec.encode(r.payload, r.metadata) for r in records]
            decoded = [codec.decode(d)[0] for d in encoded]
            assert same(decoded[3], codec.decode(codec.encode(odd, {}))[0])
            assert decoded[:3] == plain
        for bad in ({1: "a"}, {"x": {1, 2}}, {"l": [b"x", object()]}):
            with pytest.raises(CodecError):
                codec.encode_records([Record(p, {}) for p in [*plain, bad]])

    def test_batch_encoding_of_pulled_records_keeps_each_ones_metadata(self) -> None:
        """Records of one pull share their metadata until read; the batch form must still
        store each record's own metadata, also when pulls interleave or one was changed."""
        codec = JsonCodec()
        first = pulled_records([1, 2, 3], SharedMetadata({"when": dt.date(2024, 1, 2)}), "first")
        second = pulled_records([4, 5], SharedMetadata({"__inlet__": "second"}), "second")
        first[1].metadata["changed"] = (1, 2)
        records = [first[0], second[0], first[1], first[2], second[1]]
        encoded = codec.encode_records(records)
        assert encoded == [codec.encode(r.payload, r.metadata) for r in records]
        assert [codec.decode(d)[1] for d in encoded] == [
            {"when": dt.date(2024, 1, 2)},
            {"__inlet__": "second"},
            {"when": dt.date(2024, 1, 2), "changed": (1, 2)},
            {"when": dt.date(2024, 1, 2)},
            {"__inlet__": "second"},
        ]

    def test_decode_many_falls_back_to_one_by_one(self) -> None:
        """Bytes that are not one [payload, metadata] array each are decoded one by one,
        so a broken one raises as decode would and nothing is misattributed."""
        codec = JsonCodec()
        good = codec.encode(1, {})
        with pytest.raises(ValueError):
            codec.decode_many([good, b"[2,{}],[3,{}]"])
        with pytest.raises(ValueError):
            codec.decode_many([good, b"not json"])
        assert [tuple(d) for d in codec.decode_many([good, b'"ab"'])] == [(1, {}), ("a", "b")]

    def test_encode_records_names_the_bad_record(self) -> None:
        codec = JsonCodec()
        records = [Record(1, {}), Record({"x": [{1}]}, {})]
        with pytest.raises(CodecError, match=r"payload\['x'\]\[0\]"):
            codec.encode_records(records)


def same(value: object, other: object) -> bool:
    """Equal, of the same type all the way down (1, 1.0 and True differ), nan included."""
    return type(value) is type(other) and repr(value) == repr(other)


#: Values orjson alone would not keep: OrjsonCodec leaves them to the standard library.
ORJSON_EDGES = [
    [float("nan"), float("inf"), -float("inf"), None],
    {"f": float("nan"), "n": None},
    [2**64 - 1, 2**64, -(2**63) - 1, 10**30, -0.0, 1e16, 1e-7],
    "\x1e",
    ["a", "\x1e", "b"],
    [Colour.RED, MetadataKey("k")],
    {"nulls": [None, "null"], "t": (None,)},
]


class TestOrjsonCodec:
    @pytest.mark.parametrize("value", ROUND_TRIP + ORJSON_EDGES, ids=repr)
    def test_round_trip_and_both_codecs_read_each_others_records(self, value: object) -> None:
        """What JsonCodec keeps, OrjsonCodec keeps; each reads the other's bytes."""
        fast, standard = OrjsonCodec(), JsonCodec()
        expected = JsonCodec().decode(standard.encode(value, {}))[0]  # enums: by value
        for writer in (fast, standard):
            data = writer.encode(value, {"__inlet__": "I", "when": dt.date(2024, 1, 2)})
            for reader in (fast, standard):
                payload, metadata = reader.decode(data)
                assert same(payload, expected), (writer, reader, payload)
                assert metadata == {"__inlet__": "I", "when": dt.date(2024, 1, 2)}

    def test_deep_nesting_beyond_orjsons_limit(self) -> None:
        value: object = 1
        for _ in range(300):
            value = [value]
        codec = OrjsonCodec()
        assert codec.decode(codec.encode(value, {}))[0] == value

    def test_batch_forms_agree_with_single_ones(self) -> None:
        """encode_records and decode_many give what encode and decode give, also for a batch
        mixing values orjson stores with ones it leaves to json, and shared metadata."""
        codec = OrjsonCodec()
        pulled = pulled_records(
            [{"n": n, "x": [n * 0.5, "a"]} for n in range(4)], SharedMetadata({"i": 1}), "I"
        )
        pulled[2].metadata["changed"] = (1, 2)
        for batch in (
            pulled,
            pulled[:2] + [Record(value, {"__inlet__": "I"}) for value in ORJSON_EDGES],
            [Record(v, {}) for v in ROUND_TRIP],
            [Record(2**70, {}), Record(1, {})],  # orjson refuses the batch: json, one by one
            [Record(float("nan"), {}), Record([None, -float("inf")], {}), Record(None, {})],
            [Record(["a", "\x1e", "b"], {}), Record("\x1e", {}), Record(1, {})],
        ):
            encoded = codec.encode_records(batch)
            singles = [codec.decode(codec.encode(r.payload, r.metadata)) for r in batch]
            assert same([codec.decode(d) for d in encoded], singles)
            assert same([tuple(d) for d in codec.decode_many(encoded)], singles)
            assert same([tuple(d) for d in JsonCodec().decode_many(encoded)], singles)

    def test_refuses_what_json_codec_refuses_naming_the_place(self) -> None:
        codec = OrjsonCodec()
        with pytest.raises(RecordEncodeError) as info:
            encode_record(codec, {"x": [{1}]}, {"__inlet__": "I"})
        assert (info.value.codec, info.value.path, info.value.value_type) == (
            "json",
            "payload['x'][0]",
            set,
        )
        with pytest.raises(RecordEncodeError, match="int"):
            encode_record(codec, {1: "a"}, {"__inlet__": "I"})
        with pytest.raises(CodecError, match=r"payload\['x'\]\[0\]"):
            codec.encode_records([Record(1, {}), Record({"x": [{1}]}, {})])

    def test_decode_falls_back_to_json_for_what_orjson_cannot_read(self) -> None:
        codec = OrjsonCodec()
        assert math.isnan(codec.decode(b"[NaN,{}]")[0])
        assert (
            codec.decode(b"[123456789012345678901234567890,{}]")[0]
            == 123456789012345678901234567890
        )
        assert codec.decode(b"[-9223372036854775809,{}]")[0] == -(2**63) - 1
        with pytest.raises(ValueError):
            codec.decode(b"not json")
        with pytest.raises(ValueError):
            codec.decode_many([codec.encode(1, {}), b"[2,{}],[3,{}]"])

    def test_a_queue_switches_codecs_both_ways(self, tmp_path: Path) -> None:
        """Records keep the codec name 'json': a queue written by one codec is delivered by
        the other, and back."""
        path = tmp_path / "q.sqlite3"
        first = [(1, "x"), {"when": dt.date(2024, 1, 2)}, float("nan")]
        with SqliteQueue(path, codec=JsonCodec()) as queue:
            queue.enqueue("L", [Record(v, {"__inlet__": "I"}) for v in first], [["a"]] * 3)
        with SqliteQueue(path, codec=OrjsonCodec()) as queue:
            assert same([r.payload for r in queue.due("L", "a", 10)], first)
            queue.enqueue("L", [Record(v, {}) for v in ["y", 2**70]], [["a"]] * 2)
            assert queue.stored_codecs() == {"json"}
        with SqliteQueue(path, codec=JsonCodec()) as queue:
            assert same([r.payload for r in queue.due("L", "a", 10)], [*first, "y", 2**70])

    def test_missing_orjson_names_the_extra(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setitem(sys.modules, "orjson", None)
        with pytest.raises(MissingDependencyError, match=r"databay_bus\[orjson\]"):
            OrjsonCodec()


class TestDefaultCodec:
    def test_orjson_when_it_imports(self) -> None:
        codec = default_codec()
        assert type(codec) is OrjsonCodec and codec.name == "json"
        assert type(MemoryQueue().codec) is OrjsonCodec

    def test_json_codec_when_orjson_does_not_import(
        self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
    ) -> None:
        monkeypatch.setitem(sys.modules, "orjson", None)
        assert type(default_codec()) is JsonCodec
        assert type(MemoryQueue().codec) is JsonCodec
        with SqliteQueue(tmp_path / "q.sqlite3") as queue:
            assert type(queue.codec) is JsonCodec
            assert queue.file_codec() == "json"

    def test_an_explicit_codec_is_kept(self) -> None:
        assert type(MemoryQueue(codec=JsonCodec()).codec) is JsonCodec
        assert repr(MemoryQueue(codec=JsonCodec()).codec) == "JsonCodec()"

    @pytest.mark.parametrize("writer_default", [True, False], ids=["default-first", "json-first"])
    def test_default_and_json_codec_queues_read_each_others_records(
        self, tmp_path: Path, writer_default: bool
    ) -> None:
        """A file written by the default codec is delivered by a JsonCodec queue, and the
        other way round; both store the codec name 'json'."""
        path = tmp_path / "q.sqlite3"
        values = [*ROUND_TRIP, *ORJSON_EDGES]
        metadata = {"__inlet__": "I", "when": dt.date(2024, 1, 2), "n": 2**70}
        first, second = (None, JsonCodec()) if writer_default else (JsonCodec(), None)
        with SqliteQueue(path, codec=first) as queue:
            assert type(queue.codec) is (OrjsonCodec if writer_default else JsonCodec)
            queue.enqueue("L", [Record(v, metadata) for v in values], [["a"]] * len(values))
            assert queue.file_codec() == "json"
        with SqliteQueue(path, codec=second) as queue:
            assert type(queue.codec) is (JsonCodec if writer_default else OrjsonCodec)
            got = queue.due("L", "a", len(values))
            expected = [JsonCodec().decode(JsonCodec().encode(v, {}))[0] for v in values]
            assert same([r.payload for r in got], expected)
            assert all(r.metadata == metadata for r in got)
            assert queue.stored_codecs() == {"json"}


class TestPickleCodec:
    def test_opt_in_stores_any_picklable_object(self) -> None:
        queue = MemoryQueue(codec=PickleCodec())
        value = {1, 2, frozenset({3})}
        queue.enqueue("L", [Record(value, {})], [["a"]])
        assert queue.due("L", "a", 1)[0].payload == value

    def test_unpicklable_raises_encode_error(self) -> None:
        with pytest.raises(RecordEncodeError, match=r"lambda|pickle|local"):
            encode_record(PickleCodec(), lambda: 1, {"__inlet__": "I"})

    def test_json_queue_refuses_pickled_rows(self) -> None:
        """A queue configured for JSON never unpickles: such rows are dead-lettered."""
        queue = MemoryQueue(codec=PickleCodec())
        queue.enqueue("L", [Record(1, {})], [["a"]])
        queue.codec = JsonCodec()
        assert queue.due("L", "a", 1) == []
        assert "pickle" in str(queue.dead_letters()[0].last_error)


class TestRetryPolicy:
    def test_exponential_backoff_capped(self) -> None:
        policy = RetryPolicy(
            max_attempts=None, initial_delay=2, multiplier=3, max_delay=50, jitter=0
        )
        assert [policy.delay(n) for n in (1, 2, 3, 4, 5000)] == [2, 6, 18, 50, 50]

    def test_jitter_only_shortens_within_bounds(self) -> None:
        policy = RetryPolicy(initial_delay=10, jitter=0.5, seed=1)
        delays = [policy.delay(1) for _ in range(200)]
        assert all(5 <= d <= 10 for d in delays) and len(set(delays)) > 100

    def test_next_delay_none_at_max_attempts(self) -> None:
        policy = RetryPolicy(max_attempts=3, jitter=0)
        assert policy.next_delay(2) is not None and policy.next_delay(3) is None
        assert RetryPolicy(max_attempts=None).next_delay(10**6) is not None

    def test_timedelta_accepted(self) -> None:
        policy = RetryPolicy(initial_delay=dt.timedelta(minutes=1), jitter=0)
        assert policy.delay(1) == 60

    @pytest.mark.parametrize(
        "kwargs",
        [
            {"max_attempts": 0},
            {"max_attempts": True},
            {"initial_delay": -1},
            {"multiplier": 0.5},
            {"jitter": 2},
            {"max_delay": "x"},
        ],
    )
    def test_bad_values_rejected(self, kwargs: dict[str, object]) -> None:
        with pytest.raises(ConfigurationError, match="RetryPolicy"):
            RetryPolicy(**kwargs)  # type: ignore[arg-type]
