"""The RecordQueue contract, run on every backend (memory, sqlite) through ``queue``."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable
from decimal import Decimal

import pytest

from databay_bus import Record
from databay_bus.errors import ConfigurationError, QueueError, RecordEncodeError
from databay_bus.queue import DeliveryState, RecordQueue, RetryPolicy
from databay_bus.records import JsonCodec
from databay_bus.testing import FakeClock


def recs(*payloads: object, inlet: str = "Src()") -> list[Record]:
    return [Record(p, {"__inlet__": inlet}) for p in payloads]


def payloads(records: list[Record]) -> list[object]:
    return [r.payload for r in records]


def never(_attempts: int) -> float | None:
    return None


class TestEnqueueAndDue:
    def test_ids_are_stable_increasing_strings(self, queue: RecordQueue) -> None:
        """Every stored record gets a distinct id, increasing in enqueue order."""
        ids = queue.enqueue("L", recs(1, 2, 3), [["a"]] * 3)
        more = queue.enqueue("L", recs(4), [["a"]])
        all_ids = [*ids, *more]
        assert all(isinstance(i, str) and i.startswith(queue.queue_id + "-") for i in all_ids)
        numbers = [int(str(i).rsplit("-", 1)[1]) for i in all_ids]
        assert numbers == sorted(numbers) and len(set(numbers)) == 4

    def test_due_in_enqueue_order_per_outlet_with_ids(self, queue: RecordQueue) -> None:
        """Each outlet sees its own due records, in order, each carrying its id."""
        ids = queue.enqueue("L", recs("x", "y", "z"), [["a", "b"], ["a"], ["b"]])
        due_a = queue.due("L", "a", 10)
        assert payloads(due_a) == ["x", "y"]
        assert [r.id for r in due_a] == ids[:2]
        assert payloads(queue.due("L", "b", 10)) == ["x", "z"]
        assert queue.due("L", "c", 10) == []
        assert queue.due("other", "a", 10) == []

    def test_due_is_bounded_and_changes_nothing(self, queue: RecordQueue) -> None:
        """due() honours limit and does not claim records: asking again gives the same."""
        queue.enqueue("L", recs(*range(5)), [["a"]] * 5)
        assert payloads(queue.due("L", "a", 2)) == [0, 1]
        assert payloads(queue.due("L", "a", 2)) == [0, 1]
        assert queue.due("L", "a", 0) == []

    def test_due_hands_back_known_records_only_when_all_are_known(self, queue: RecordQueue) -> None:
        """due(known=...) returns the caller's records for what it just stored, untouched;
        if anything else is due, everything is decoded as usual. Acks work either way."""
        ids = queue.enqueue("L", recs(1, 2), [["a"]] * 2)
        assert all(i is not None for i in ids)
        known = {str(i): Record(f"known {n}", id=i) for n, i in enumerate(ids)}
        assert payloads(queue.due("L", "a", 10, known)) == ["known 0", "known 1"]
        assert payloads(queue.due("L", "a", 10, {str(ids[0]): known[str(ids[0])]})) == [1, 2]
        assert queue.ack("L", "a", ids) == 2

    def test_known_records_are_acked_by_their_own_ids(self, queue: RecordQueue) -> None:
        """Known records handed back for a part of an enqueue, for records with gaps
        between them, or after another enqueue, are acked as the records they are."""
        ids = queue.enqueue("L", recs(1, 2, 3), [["a"], ["b"], ["a"]])
        known = {str(i): Record(n, id=i) for n, i in enumerate(ids, 1)}
        queue.enqueue("M", recs(9), [["a"]])
        got = queue.due("L", "a", 10, known)
        assert [r.id for r in got] == [ids[0], ids[2]]
        assert queue.ack("L", "a", [r.id for r in got]) == 2
        more = queue.enqueue("L", recs(4, 5, 6), [["b"]] * 3)
        known = {str(i): Record(n, id=i) for n, i in enumerate(more, 4)}
        assert payloads(queue.due("L", "b", 2, known)) == [2, 4]  # 2 is older: decoded
        queue.ack("L", "b", ids[1:2])
        got = queue.due("L", "b", 2, known)
        assert payloads(got) == [4, 5] and [r.id for r in got] == more[:2]
        assert queue.ack("L", "b", [r.id for r in got]) == 2
        assert payloads(queue.due("L", "b", 10)) == [6]
        assert queue.due("L", "a", 10) == []

    @pytest.mark.parametrize("codec", [None, JsonCodec], ids=["default-codec", "JsonCodec"])
    def test_records_round_trip_through_the_codec(
        self, make_queue: Callable[..., RecordQueue], codec: type[JsonCodec] | None
    ) -> None:
        """Payload and metadata come back equal, tagged types included, with the default
        codec (OrjsonCodec when installed) and with the standard library's."""
        queue = make_queue() if codec is None else make_queue(codec=codec())
        payload = {
            "when": dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc),
            "raw": b"\x00\xff",
            "price": Decimal("10.10"),
            "pair": (1, "a"),
        }
        queue.enqueue("L", [Record(payload, {"__inlet__": "I", "k": [1, 2]})], [["a"]])
        (got,) = queue.due("L", "a", 1)
        assert got.payload == payload and got.metadata == {"__inlet__": "I", "k": [1, 2]}

    def test_each_due_call_returns_fresh_copies(self, queue: RecordQueue) -> None:
        """Outlets never share record objects: each due() decodes anew."""
        queue.enqueue("L", recs({"n": 1}), [["a", "b"]])
        first, second = queue.due("L", "a", 1)[0], queue.due("L", "b", 1)[0]
        first.payload["n"] = 99
        assert second.payload == {"n": 1}

    def test_encode_error_names_inlet_and_type_and_stores_nothing(self, queue: RecordQueue) -> None:
        """One bad record fails the whole enqueue before anything is stored."""
        bad = Record({"s": {1, 2}}, {"__inlet__": "PricesInlet()"})
        with pytest.raises(RecordEncodeError) as info:
            queue.enqueue("L", [*recs(1), bad], [["a"], ["a"]])
        assert "PricesInlet()" in str(info.value) and "set" in str(info.value)
        assert queue.due("L", "a", 10) == []
        assert queue.stats().records == 0

    def test_encode_error_callback_skips_the_bad_record(self, queue: RecordQueue) -> None:
        """With on_encode_error the bad record is reported and the rest stored."""
        seen: list[RecordEncodeError] = []
        ids = queue.enqueue(
            "L",
            [*recs(1), Record(object(), {}), *recs(3)],
            [["a"]] * 3,
            on_encode_error=lambda record, exc: seen.append(exc),
        )
        assert ids[1] is None and ids[0] and ids[2]
        assert len(seen) == 1
        assert payloads(queue.due("L", "a", 10)) == [1, 3]

    def test_mismatched_targets_rejected(self, queue: RecordQueue) -> None:
        with pytest.raises(ConfigurationError):
            queue.enqueue("L", recs(1, 2), [["a"]])


class TestAckAndFail:
    def test_ack_removes_from_due_for_that_outlet_only(self, queue: RecordQueue) -> None:
        """Acking one outlet's delivery leaves the other outlet's pending."""
        ids = queue.enqueue("L", recs(1, 2), [["a", "b"]] * 2)
        assert queue.ack("L", "a", ids[:1]) == 1
        assert payloads(queue.due("L", "a", 10)) == [2]
        assert payloads(queue.due("L", "b", 10)) == [1, 2]

    def test_acks_of_parts_of_a_due_batch_settle_exactly_those(self, queue: RecordQueue) -> None:
        """Acks of a run of what due() handed out, of the same ids out of order, of the batch
        of another outlet, or mixed with foreign ids settle exactly the records named."""
        ids = queue.enqueue("L", recs(*range(8)), [["a", "b"]] * 8)
        due = [r.id for r in queue.due("L", "a", 10)]
        assert due == ids and [r.id for r in queue.due("L", "b", 10)] == ids
        assert queue.ack("L", "a", due[2:4]) == 2
        assert queue.ack("L", "a", [due[5], due[4]]) == 2
        assert queue.ack("L", "b", due[2:4]) == 2
        assert queue.ack("L", "a", ["nope-1", due[0], None]) == 1
        assert payloads(queue.due("L", "a", 10)) == [1, 6, 7]
        assert payloads(queue.due("L", "b", 10)) == [0, 1, 4, 5, 6, 7]
        assert queue.ack("L", "a", list(reversed(ids))) == 3
        assert queue.due("L", "a", 10) == []
        assert queue.ack("L", "b", due[6:]) == 2  # the batch's end: its ids are let go
        assert ("L", "b") not in queue._handed_out

    def test_ack_twice_and_foreign_ids_change_nothing(self, queue: RecordQueue) -> None:
        ids = queue.enqueue("L", recs(1), [["a"]])
        assert queue.ack("L", "a", ids) == 1
        assert queue.ack("L", "a", ids) == 0
        assert queue.ack("L", "a", ["nope-1", None]) == 0
        assert queue.ack("M", "a", ids) == 0

    def test_fail_schedules_retry_with_backoff(self, queue: RecordQueue, clock: FakeClock) -> None:
        """A failed delivery is not due until its retry time; then it is due again."""
        policy = RetryPolicy(max_attempts=5, initial_delay=10, multiplier=2, jitter=0)
        ids = queue.enqueue("L", recs(1, 2), [["a"]] * 2)
        assert queue.fail("L", "a", ids[:1], ConnectionError("down"), policy.next_delay) == (1, 0)
        assert payloads(queue.due("L", "a", 10)) == [2]
        clock.advance(9.99)
        assert payloads(queue.due("L", "a", 10)) == [2]
        clock.advance(0.01)
        assert payloads(queue.due("L", "a", 10)) == [1, 2]
        queue.fail("L", "a", ids[:1], "again", policy.next_delay)  # 2nd failure: 20 s
        clock.advance(19.9)
        assert payloads(queue.due("L", "a", 10)) == [2]
        clock.advance(0.1)
        assert payloads(queue.due("L", "a", 10)) == [1, 2]

    def test_dead_after_max_attempts_then_replay(
        self, queue: RecordQueue, clock: FakeClock
    ) -> None:
        """After max_attempts the delivery is dead; replay makes it due again, attempts reset."""
        policy = RetryPolicy(max_attempts=3, initial_delay=1, jitter=0)
        ids = queue.enqueue("L", recs("p"), [["a", "b"]])
        for expected in [(1, 0), (1, 0), (0, 1)]:
            assert queue.fail("L", "a", ids, RuntimeError("boom"), policy.next_delay) == expected
            clock.advance(100)
        assert queue.due("L", "a", 10) == []
        assert payloads(queue.due("L", "b", 10)) == ["p"]
        (letter,) = queue.dead_letters()
        assert (letter.id, letter.link, letter.outlet, letter.attempts) == (ids[0], "L", "a", 3)
        assert letter.last_error == "RuntimeError: boom"
        assert letter.record is not None and letter.record.payload == "p"
        assert queue.stats().dead("L", "a") == 1
        assert queue.fail("L", "a", ids, "x", policy.next_delay) == (0, 0)  # dead: untouched
        assert queue.ack("L", "a", ids) == 0
        assert queue.replay(link="L", outlet="a") == 1
        assert payloads(queue.due("L", "a", 10)) == ["p"]
        assert queue.dead_letters() == []
        queue.fail("L", "a", ids, "x", policy.next_delay)
        assert queue.stats().pending("L", "a") == 1  # attempts were reset: not dead yet

    def test_fail_names_the_records_that_died(self, queue: RecordQueue) -> None:
        """fail() returns the ids of the deliveries it dead-lettered, and only those."""
        ids = queue.enqueue("L", recs(1, 2, 3, 4), [["a"]] * 4)
        queue.fail("L", "a", ids[:1], "x", never)  # already dead before the next call
        queue.fail("L", "a", ids[1:2], "x", lambda n: 5.0)  # its next failure is its 2nd
        result = queue.fail("L", "a", ids, "y", lambda n: None if n == 1 else 5.0)
        assert result == (1, 2)
        assert (result.retrying, result.dead) == (1, 2)
        assert result.dead_ids == tuple(ids[2:])
        assert queue.fail("L", "a", [], "z", never).dead_ids == ()

    def test_replay_and_drop_filters(self, queue: RecordQueue) -> None:
        """replay/drop select by link, outlet and ids; drop defaults to dead deliveries only."""
        ids = queue.enqueue("L", recs(1, 2, 3), [["a", "b"]] * 3)
        queue.fail("L", "a", ids, "x", never)
        queue.fail("L", "b", ids[:1], "x", never)
        assert len(queue.dead_letters()) == 4
        assert len(queue.dead_letters(outlet="b")) == 1
        assert len(queue.dead_letters(limit=2)) == 2
        assert queue.replay(ids=[str(ids[1])]) == 1
        assert queue.drop(outlet="a", ids=[str(ids[0])]) == 1
        assert queue.drop(link="other") == 0
        assert queue.drop() == 2  # a:3 and b:1
        assert queue.dead_letters() == []
        assert payloads(queue.due("L", "a", 10)) == [2]
        assert queue.stats().records == 2  # record 1 lost its last delivery and went too
        with pytest.raises(ConfigurationError):
            queue.replay(ids=["not-an-id"])

    def test_drop_pending_of_a_removed_outlet(self, queue: RecordQueue) -> None:
        """Pending deliveries are only dropped when asked for by state."""
        queue.enqueue("L", recs(1), [["gone"]])
        assert queue.drop(outlet="gone") == 0
        states = (DeliveryState.PENDING, DeliveryState.FAILED)
        assert queue.drop(outlet="gone", states=states) == 1
        assert queue.stats().records == 0

    def test_failing_outlet_never_holds_back_another(self, queue: RecordQueue) -> None:
        ids = queue.enqueue("L", recs(1, 2), [["a", "b"]] * 2)
        queue.fail("L", "a", ids, "x", lambda n: 3600.0)
        assert payloads(queue.due("L", "b", 10)) == [1, 2]
        queue.ack("L", "b", ids)
        assert queue.stats().pending("L", "b") == 0 and queue.stats().pending("L", "a") == 2

    def test_undecodable_record_is_dead_lettered_not_blocking(
        self, make_queue: Callable[..., RecordQueue]
    ) -> None:
        """A stored record the codec cannot read goes to dead letters; the rest flow."""
        queue = make_queue()
        queue.enqueue("L", recs(1, 2), [["a"]] * 2)

        class Broken:
            name = queue.codec.name

            def encode(self, payload: object, metadata: dict[str, object]) -> bytes:
                raise AssertionError

            def decode(self, data: bytes) -> tuple[object, dict[str, object]]:
                if data.startswith(b"[1"):
                    raise ValueError("corrupt")
                return queue_codec.decode(data)

        queue_codec = queue.codec
        queue.codec = Broken()
        assert payloads(queue.due("L", "a", 10)) == [2]
        (letter,) = queue.dead_letters()
        assert letter.record is None and "corrupt" in str(letter.last_error)


class TestOperations:
    def test_stats_per_link_and_outlet(self, queue: RecordQueue, clock: FakeClock) -> None:
        ids = queue.enqueue("L", recs(1, 2), [["a", "b"]] * 2)
        clock.advance(30)
        queue.enqueue("M", recs(3), [["a"]])
        queue.ack("L", "a", ids)
        queue.fail("L", "b", ids[:1], "x", lambda n: 5.0)
        clock.advance(12)
        stats = queue.stats()
        assert stats.records == 3
        by_key = {(s.link, s.outlet): s for s in stats.outlets}
        assert by_key["L", "a"].delivered == 2 and by_key["L", "a"].pending == 0
        assert by_key["L", "a"].oldest_pending_age is None
        assert by_key["L", "b"].pending == 2 and by_key["L", "b"].retrying == 1
        assert by_key["L", "b"].oldest_pending_age == pytest.approx(42)
        assert by_key["M", "a"].oldest_pending_age == pytest.approx(12)
        assert stats.pending() == 3 and stats.pending("L") == 2
        assert stats.oldest_pending_age() == pytest.approx(42)
        assert stats.as_dict()["records"] == 3

    def test_waiting_counts_distinct_records(self, queue: RecordQueue) -> None:
        ids = queue.enqueue("L", recs(1, 2, 3), [["a", "b"]] * 3)
        assert queue.waiting("L") == 3
        queue.ack("L", "a", ids)
        assert queue.waiting("L") == 3
        queue.ack("L", "b", ids[:2])
        assert queue.waiting("L") == 1
        queue.fail("L", "b", ids[2:], "x", never)
        assert queue.waiting("L") == 0
        assert queue.waiting_outlets("L") == []

    def test_waiting_outlets(self, queue: RecordQueue) -> None:
        ids = queue.enqueue("L", recs(1), [["a", "b"]])
        queue.ack("L", "a", ids)
        assert queue.waiting_outlets("L") == ["b"]

    def test_retention_purges_delivered_after_life_span(
        self, make_queue: Callable[..., RecordQueue], clock: FakeClock
    ) -> None:
        """Delivered entries stay for ``retention`` seconds, then purge() removes them."""
        queue = make_queue(retention=60)
        ids = queue.enqueue("L", recs(1, 2), [["a", "b"]] * 2)
        queue.ack("L", "a", ids)
        queue.ack("L", "b", ids[:1])
        clock.advance(59)
        assert queue.purge() == 0
        clock.advance(2)
        assert queue.purge() == 3
        stats = queue.stats()
        assert stats.records == 1  # record 2 still waits for b
        assert payloads(queue.due("L", "b", 10)) == [2]
        queue.ack("L", "b", ids[1:])
        clock.advance(61)
        assert queue.purge() == 1
        assert queue.stats().records == 0

    def test_retention_none_keeps_everything(
        self, make_queue: Callable[..., RecordQueue], clock: FakeClock
    ) -> None:
        queue = make_queue(retention=None)
        queue.ack("L", "a", queue.enqueue("L", recs(1), [["a"]]))
        clock.advance(10**9)
        assert queue.purge() == 0 and queue.stats().records == 1

    def test_dead_letters_survive_purge(
        self, make_queue: Callable[..., RecordQueue], clock: FakeClock
    ) -> None:
        queue = make_queue(retention=0)
        queue.fail("L", "a", queue.enqueue("L", recs(1), [["a"]]), "x", never)
        clock.advance(100)
        queue.purge()
        assert len(queue.dead_letters()) == 1

    def test_closed_queue_refuses_work(self, make_queue: Callable[..., RecordQueue]) -> None:
        queue = make_queue()
        queue.close()
        with pytest.raises(QueueError):
            queue.enqueue("L", recs(1), [["a"]])

    def test_bad_options_rejected(self, make_queue: Callable[..., RecordQueue]) -> None:
        with pytest.raises(ConfigurationError):
            make_queue(retention=-1)
        with pytest.raises(ConfigurationError):
            make_queue(purge_interval=0)


class TestThreads:
    def test_concurrent_links_on_threads(self, queue: RecordQueue) -> None:
        """Several threads enqueue, read and ack at once; nothing lost or doubled."""
        errors: list[BaseException] = []

        def work(link: str) -> None:
            try:
                for n in range(40):
                    queue.enqueue(link, recs(n, n), [["a", "b"]] * 2)
                    for outlet in ("a", "b"):
                        due = queue.due(link, outlet, 5)
                        queue.ack(link, outlet, [r.id for r in due])
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(f"L{i}",)) for i in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert not errors
        for i in range(4):
            link = f"L{i}"
            for outlet in ("a", "b"):
                while due := queue.due(link, outlet, 50):
                    queue.ack(link, outlet, [r.id for r in due])
            stats = queue.stats()
            assert stats.pending(link) == 0
            assert sum(s.delivered for s in stats.outlets if s.link == link) == 160


def test_waiting_records_lists_pending_and_retrying_and_claims_nothing(
    queue: RecordQueue,
) -> None:
    """Inspection: every waiting delivery in order, FAILED ones included; due() unchanged."""
    ids = queue.enqueue("L", recs(1, 2, 3), [["a", "b"], ["a"], ["a"]])
    queue.ack("L", "a", ids[:1])
    queue.fail("L", "a", ids[1:2], "down", lambda n: 3600.0)
    waiting = queue.waiting_records()
    assert [(w.id, w.outlet, w.state) for w in waiting] == [
        (ids[0], "b", DeliveryState.PENDING),
        (ids[1], "a", DeliveryState.FAILED),
        (ids[2], "a", DeliveryState.PENDING),
    ]
    assert waiting[1].attempts == 1 and waiting[1].record is not None
    assert [w.id for w in queue.waiting_records(outlet="a", limit=1)] == [ids[1]]
    assert queue.stored_codecs() == {queue.codec.name}
    assert payloads(queue.due("L", "a", 10)) == [3]


def test_delivered_records_lists_kept_deliveries_in_chunks_until_purged(
    make_queue: Callable[..., RecordQueue], clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Inspection: delivered deliveries in (record, outlet) order, read a few at a time across
    outlets, filtered and limited; changes nothing; gone once retention purges them."""
    monkeypatch.setattr("databay_bus.queue.base._DELIVERED_CHUNK", 2)
    queue = make_queue(retention=60)
    ids = queue.enqueue("L", recs(1, 2, 3), [["a", "b"]] * 3)
    other = queue.enqueue("M", recs(9), [["a"]])
    queue.ack("L", "a", ids)
    clock.advance(5)
    queue.ack("L", "b", ids[:2])
    queue.ack("M", "a", other)
    queue.fail("L", "b", ids[2:], "down", never)
    before = (queue.stats(), [(d.id, d.outlet) for d in queue.dead_letters()])
    listed = list(queue.delivered_records())
    assert [(d.id, d.link, d.outlet) for d in listed] == [
        (ids[0], "L", "a"),
        (ids[0], "L", "b"),
        (ids[1], "L", "a"),
        (ids[1], "L", "b"),
        (ids[2], "L", "a"),
        (other[0], "M", "a"),
    ]
    assert listed[0].record is not None and listed[0].record.payload == 1
    assert listed[0].decode_error is None and listed[0].attempts == 0
    assert listed[1].delivered_at == listed[0].delivered_at + 5
    assert [d.id for d in queue.delivered_records(link="L", outlet="b")] == ids[:2]
    assert [(d.id, d.outlet) for d in queue.delivered_records(limit=3)] == [
        (ids[0], "a"),
        (ids[0], "b"),
        (ids[1], "a"),
    ]
    assert list(queue.delivered_records(limit=0)) == []
    with pytest.raises(ConfigurationError, match="limit"):
        queue.delivered_records(limit="3")  # type: ignore[arg-type]
    assert (queue.stats(), [(d.id, d.outlet) for d in queue.dead_letters()]) == before
    clock.advance(56)  # the first acks are 61 s old, the later ones 56 s
    queue.purge()
    assert [(d.id, d.outlet) for d in queue.delivered_records()] == [
        (ids[0], "b"),
        (ids[1], "b"),
        (other[0], "a"),
    ]
    clock.advance(10)
    queue.purge()
    assert list(queue.delivered_records()) == []


def test_delivered_records_on_a_read_only_sqlite_queue(
    make_sqlite: Callable[..., RecordQueue], clock: FakeClock
) -> None:
    """A read-only SqliteQueue lists the delivered entries the writer stored."""
    writer = make_sqlite()
    ids = writer.enqueue("L", recs(1, 2), [["a"]] * 2)
    writer.ack("L", "a", ids[:1])
    reader = make_sqlite(read_only=True)
    assert reader.read_only
    listed = list(reader.delivered_records())
    assert [(d.id, d.outlet) for d in listed] == [(ids[0], "a")]
    assert listed[0].record is not None and listed[0].record.payload == 1
