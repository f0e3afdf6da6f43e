"""Record, Update, MetadataKey, the metadata merge rule and record copying."""

from __future__ import annotations

import pickle
import threading

import pytest

from databay_bus import MetadataKey, Record, Update
from databay_bus.records import INLET_KEY, merge_metadata
from databay_bus.records.copying import _BY_HAND, _plain_copies, copies, copy_batches
from databay_bus.records.record import SharedMetadata, pulled_records


class TestRecord:
    def test_payload_and_metadata_default_to_a_fresh_dict(self) -> None:
        first, second = Record(1), Record(2)
        assert first.payload == 1
        assert first.metadata == {}
        assert first.metadata is not second.metadata
        assert first.id is None

    def test_metadata_is_kept_by_reference(self) -> None:
        metadata = {"a": 1}
        assert Record("x", metadata).metadata is metadata

    def test_payload_and_metadata_are_assignable(self) -> None:
        # Databay's own processor docs assign record.payload; here that works.
        record = Record(1.234, {"a": 1})
        record.payload = round(record.payload, 1)
        record.metadata = {"b": 2}
        assert record.payload == 1.2
        assert record.metadata == {"b": 2}

    def test_id_is_read_only(self) -> None:
        record = Record(1, id="abc")
        assert record.id == "abc"
        with pytest.raises(AttributeError):
            record.id = "other"  # type: ignore[misc]

    def test_repr_matches_databay(self) -> None:
        assert repr(Record({"a": 1}, {"m": "x"})) == "Record(payload={'a': 1}, metadata={'m': 'x'})"
        assert repr(Record(1)) == "Record(payload=1, metadata={})"
        assert repr(Record(1, id="7")) == "Record(payload=1, metadata={}, id='7')"
        # the payload as str(), as Databay prints it: no quotes around a string
        assert repr(Record("test")) == "Record(payload=test, metadata={})"

    def test_equality_is_by_value(self) -> None:
        assert Record(1, {"a": 1}) == Record(1, {"a": 1})
        assert Record(1, {"a": 1}) != Record(1, {"a": 2})
        assert Record(1) != Record(2)
        assert Record(1, id="a") != Record(1, id="b")
        assert Record(1) != 1

    def test_records_are_unhashable(self) -> None:
        with pytest.raises(TypeError):
            hash(Record(1))

    def test_pickle_round_trip_keeps_everything(self) -> None:
        record = Record([1, {"x": 2}], {"m": 1}, id="r1")
        clone = pickle.loads(pickle.dumps(record))
        assert clone == record
        assert clone is not record
        assert clone.id == "r1"


class TestUpdate:
    @pytest.mark.parametrize(
        ("tags", "number", "text"),
        [(["a", "b"], 3, "a.b.3"), ([], 0, "0"), (["twitter_link"], 16, "twitter_link.16")],
    )
    def test_str_and_repr(self, tags: list[str], number: int, text: str) -> None:
        update = Update(tags, number)
        assert str(update) == text
        assert repr(update) == text
        assert update.tags == tags
        assert update.transfer_number == number

    def test_tags_are_copied(self) -> None:
        tags = ["a"]
        update = Update(tags, 0)
        tags.append("b")
        assert update.tags == ["a"]

    def test_equality(self) -> None:
        assert Update(["a"], 1) == Update(("a",), 1)
        assert Update(["a"], 1) != Update(["a"], 2)
        assert Update(["a"], 1) != "a.1"


class TestMetadata:
    def test_metadata_key_is_a_str(self) -> None:
        key = MetadataKey("CsvOutlet.CSV_FILE")
        assert isinstance(key, str)
        assert key == "CsvOutlet.CSV_FILE"
        assert {"CsvOutlet.CSV_FILE": 1}[key] == 1

    def test_merge_local_wins_and_inlet_key_is_last(self) -> None:
        global_metadata = {"a": 1, "b": 1}
        merged = merge_metadata(global_metadata, {"b": 2, INLET_KEY: "forged"}, "MyInlet()")
        assert merged == {"a": 1, "b": 2, "__inlet__": "MyInlet()"}
        assert global_metadata == {"a": 1, "b": 1}

    def test_merge_without_local(self) -> None:
        assert merge_metadata({}, None, "x") == {"__inlet__": "x"}


class TestCopies:
    def test_copies_are_deep_and_independent(self) -> None:
        batches = [[Record({"n": [1]}, {"m": 1})]]
        made = copies(batches, 2)
        assert len(made) == 2
        assert made[0] == batches and made[1] == batches
        made[0][0][0].payload["n"].append(2)
        assert batches[0][0].payload == {"n": [1]}
        assert made[1][0][0].payload == {"n": [1]}

    def test_unpicklable_values_fall_back_to_deepcopy(self) -> None:
        value = [Record({"f": lambda: 1, "data": [1]})]
        made = copies(value, 1)[0]
        made[0].payload["data"].append(2)
        assert value[0].payload["data"] == [1]

    def test_uncopyable_values_raise(self) -> None:
        with pytest.raises(TypeError):
            copies([Record(threading.Lock())], 1)

    def test_zero_copies(self) -> None:
        assert copies([1], 0) == []
        assert copy_batches([[Record(1)]], 0) == []


class TestCopyBatches:
    def test_copies_keep_every_field_and_are_independent(self) -> None:
        pulled = pulled_records([{"n": [1]}, {"n": [2]}], SharedMetadata({"m": [0]}), "source")
        own = Record({"n": [3]}, {"k": [4]}, id="q-1")
        batches = [pulled, [own]]
        made = copy_batches(batches, 2)
        assert made == [batches, batches]
        for copy_ in made:
            first, second = copy_[0]
            assert [first.inlet_name, second.inlet_name, copy_[1][0].inlet_name] == [
                "source",
                "source",
                None,
            ]
            assert copy_[1][0].id == "q-1"
            # One pull's records still share one copy-on-read metadata, of their own.
            assert type(first._metadata) is SharedMetadata
            assert first._metadata is second._metadata
            assert first._metadata is not pulled[0]._metadata
            assert type(copy_[1][0]._metadata) is dict
        made[0][0][0].payload["n"].append(9)
        made[0][0][0]._metadata["m"].append(9)
        made[0][1][0].metadata["k"].append(9)
        assert pulled[0].payload == {"n": [1]} and made[1][0][0].payload == {"n": [1]}
        assert pulled[0]._metadata["m"] == [0] and made[1][0][0]._metadata["m"] == [0]
        assert own.metadata == {"k": [4]} and made[1][1][0].metadata == {"k": [4]}

    def test_a_dict_two_records_hold_stays_shared_as_pickle_keeps_it(self) -> None:
        metadata = {"a": 1}
        (batch,) = copy_batches([[Record(1, metadata), Record(2, metadata)]], 1)[0]
        assert batch[0]._metadata is batch[1]._metadata
        assert type(batch[0]._metadata) is dict

    def test_record_subclasses_and_unpicklable_values_still_copy(self) -> None:
        class Tagged(Record):
            __slots__ = ()

        tagged = Tagged({"data": [1]})
        unpicklable = Record({"f": lambda: 1, "data": [1]})
        (made,) = copy_batches([[tagged], [unpicklable]], 1)
        assert type(made[0][0]) is Tagged
        made[0][0].payload["data"].append(2)
        made[1][0].payload["data"].append(2)
        assert tagged.payload["data"] == [1] and unpicklable.payload["data"] == [1]


class TestPlainCopies:
    """copy_batches copies the usual records (plain JSON data) by hand instead of pickling;
    the copies must be what the pickle path makes."""

    def test_plain_records_are_copied_by_hand_and_others_are_not(self) -> None:
        plain = pulled_records(
            [{"n": 1, "tags": ["a"]}, "text", 3.5], SharedMetadata({"m": 1}), "source"
        )
        assert _plain_copies([plain], 1) is not None
        for odd in (
            pulled_records(
                [{"n": (1, 2)}], SharedMetadata({}), "source"
            ),  # a tuple: tagged by the codec
            pulled_records([{1: "int key"}], SharedMetadata({}), "source"),
            pulled_records([{"n": [[1]]}], SharedMetadata({}), "source"),  # a nested list
            pulled_records(
                [{"n": 1}], SharedMetadata({"m": [1]}), "source"
            ),  # shared metadata with a list
            [Record({"n": 1}, {"k": {"deep": 1}})],
        ):
            assert _plain_copies([odd], 1) is None
            (made,) = copy_batches([odd], 1)
            assert made == [odd] and made[0][0].payload is not odd[0].payload

    def test_hand_copies_are_independent(self) -> None:
        pulled = pulled_records(
            [{"n": 1, "tags": ["a"]}, {"n": 2, "tags": ["b"], "more": [1.5]}],
            SharedMetadata({"m": 1}),
            "s",
        )
        own = Record({"n": 3}, {"k": [4], "j": 5}, id="q-1")
        batches = [pulled, [own, Record("text")]]
        made = _plain_copies(batches, 2)
        assert made is not None
        for copy_ in made:  # before anything reads metadata (records copy it on reading)
            first, second = copy_[0]
            # Shared metadata of scalars is never changed in place: the copies share it.
            assert first._metadata is second._metadata is pulled[0]._metadata
            assert first.metadata is not second.metadata  # each record reads its own dict
        assert made == [batches, batches]
        assert made[0][0][0].payload["tags"] is not made[1][0][0].payload["tags"]
        for copy_ in made:
            first, second = copy_[0]
            assert first.inlet_name == "s" and copy_[1][0].id == "q-1"
            assert type(copy_[1][0]._metadata) is dict
            assert copy_[1][1].payload == "text" and copy_[1][1].metadata == {}
        made[0][0][0].payload["tags"].append("x")
        made[0][0][1].payload["more"].append(9.5)
        made[0][0][0].metadata["m"] = 2
        made[0][1][0].metadata["k"].append(9)
        made[0][1][0].metadata["j"] = 0
        made[0][0][1].payload["n"] = 0
        assert pulled[0].payload["tags"] == ["a"] and made[1][0][0].payload["tags"] == ["a"]
        assert pulled[1].payload["more"] == [1.5] and made[1][0][1].payload["more"] == [1.5]
        assert own.metadata == {"k": [4], "j": 5} and made[1][1][0].metadata == {"k": [4], "j": 5}
        assert pulled[1].payload["n"] == 2 and made[1][0][1].payload["n"] == 2
        assert pulled[0].metadata == {"m": 1} and made[1][0][0].metadata == {"m": 1}

    def test_objects_held_twice_stay_shared_in_each_copy(self) -> None:
        """Anything held twice goes to marshal, which keeps it shared, as pickle would."""
        tags = ["a"]
        within = Record({"a": tags, "b": tags})  # one list under two keys
        (made,) = copy_batches([[within]], 1)
        assert made[0][0].payload["a"] is made[0][0].payload["b"] is not tags
        across = pulled_records([{"t": tags}, {"t": tags}], SharedMetadata({"m": 1}), "s")
        (made,) = copy_batches([across], 1)
        assert made[0][0].payload["t"] is made[0][1].payload["t"] is not tags
        record = Record({"n": 1, "tags": ["x"]}, {"k": 1})
        (made,) = copy_batches([[record], [Record(2), record]], 1)  # a grouper may do this
        assert made[1][1] is not made[0][0]  # two records, sharing everything
        assert made[1][1].payload is made[0][0].payload is not record.payload
        assert made[1][1]._metadata is made[0][0]._metadata is not record._metadata
        one = {"n": 1}
        (made,) = copy_batches([[Record(one), Record(2, one)]], 1)  # payload and metadata
        assert made[0][0].payload is made[0][1]._metadata is not one
        for batches in (
            [[within]],
            [across],
            [[record], [Record(2), record]],
            [[Record(one), Record(2, one)]],
            [[Record({"n": 1}, {"m": tags}), Record({"t": tags})]],
        ):
            assert _plain_copies(batches, 1) is None
            (made,) = copy_batches(batches, 1)
            assert made == batches
        shared = {"m": tags}
        (made,) = copy_batches([[Record({"n": 1}, shared), Record({"t": tags})]], 1)
        assert made[0][0]._metadata["m"] is made[0][1].payload["t"] is not tags

    def test_every_shared_metadata_is_checked(self) -> None:
        good = pulled_records([{"n": 1}], SharedMetadata({"m": 1}), "a")
        bad = pulled_records([{"n": 2}], SharedMetadata({"m": [1]}), "b")
        for batches in ([good, bad], [bad, good], [good + bad]):
            assert _plain_copies(batches, 1) is None
            (made,) = copy_batches(batches, 1)
            assert made == batches
            (copied,) = [r for batch in made for r in batch if r.payload == {"n": 2}]
            copied._metadata["m"].append(2)
            assert bad[0]._metadata["m"] == [1]

    def test_dict_subclasses_keep_their_type(self) -> None:
        from collections import OrderedDict

        for record in (
            Record(OrderedDict(n=1)),
            Record({"n": 1}, OrderedDict(m=1)),
            Record(SharedMetadata(n=1)),
        ):
            assert _plain_copies([[record]], 1) is None
            (made,) = copy_batches([[record]], 1)
            assert made == [[record]]
            assert type(made[0][0].payload) is type(record.payload)
            assert type(made[0][0]._metadata) is type(record._metadata)
            assert made[0][0].payload is not record.payload

    @pytest.mark.parametrize("size", [1, 2, 3, _BY_HAND - 1, _BY_HAND, _BY_HAND + 1, 20])
    def test_by_hand_up_to_the_limit_over_all_batches(self, size: int) -> None:
        pulled = pulled_records(
            [{"n": i, "tags": ["a"]} for i in range(size)], SharedMetadata({"m": 1}), "s"
        )
        for batches in ([pulled], [pulled[: size // 2], pulled[size // 2 :]]):
            made = copy_batches(batches, 2)
            assert made == [batches, batches]
            # The hand copies share the pull's scalar-only metadata; marshal makes a new one.
            by_hand = made[0][-1][-1]._metadata is pulled[0]._metadata
            assert by_hand == (size <= _BY_HAND)
            assert (_plain_copies(batches, 2) is not None) == (size <= _BY_HAND)
            made[0][-1][-1].payload["tags"].append("x")
            assert pulled[-1].payload["tags"] == ["a"] == made[1][-1][-1].payload["tags"]

    def test_larger_batches_keep_types_and_sharing_through_marshal_or_pickle(self) -> None:
        import datetime

        shared = [1]
        payloads = [{"t": (1, 2), "s": {3}, "l": shared}, {"l": shared}, {"b": b"x"}]
        builtin = pulled_records(payloads, SharedMetadata({"m": 1}), "source")
        when = pulled_records(
            [*payloads, {"at": datetime.date(2026, 12, 6)}], SharedMetadata({}), "source"
        )
        for batch in (builtin, when):  # marshal, then pickle (it refuses the date)
            (made,) = copy_batches([batch], 1)
            assert made == [batch]
            first, second = made[0][0], made[0][1]
            assert type(first.payload["t"]) is tuple and first.payload["s"] == {3}
            assert first.payload["l"] is second.payload["l"] is not shared
            assert type(first._metadata) is SharedMetadata
            assert first._metadata is second._metadata is not batch[0]._metadata
        assert type(made[0][3].payload["at"]) is datetime.date
