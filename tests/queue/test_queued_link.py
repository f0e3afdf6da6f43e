"""Link(queue=...): store first, deliver per outlet, retry, dead-letter, backpressure."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

import pytest
from core_fakes import ManualPlanner
from queue_fakes import CountingInlet, FlakyOutlet, ListOutlet, ValuesInlet

from databay_bus import Link, Outlet, Record, Update
from databay_bus.errors import (
    ArgumentTypeError,
    ConfigurationError,
    InvalidNodeError,
    QueueIdentityError,
    RecordEncodeError,
)
from databay_bus.planners import ApsPlanner
from databay_bus.queue import DeliveryState, MemoryQueue, RecordQueue, RetryPolicy, SqliteQueue
from databay_bus.routing import MetadataRouter
from databay_bus.testing import FakeClock

NO_JITTER = RetryPolicy(max_attempts=5, initial_delay=10, multiplier=2, jitter=0)


def make_link(queue: RecordQueue, inlets: Any, outlets: Any, **options: Any) -> Link:
    options.setdefault("tags", "prices")
    return Link(inlets, outlets, 1, queue=queue, **options)


class TestDelivery:
    def test_outlets_get_records_with_ids_stored_before_push(self, queue: RecordQueue) -> None:
        """Each record is stored (with an id) before any outlet sees it."""
        stored_at_push: list[int] = []

        class Probe(ListOutlet):
            def push(self, records: list[Record], update: Update) -> None:
                stored_at_push.append(queue.stats().records)
                super().push(records, update)

        a, b = Probe("a"), ListOutlet("b")
        link = make_link(queue, CountingInlet(3), [a, b])
        link.transfer()
        assert stored_at_push == [3]
        assert a.payloads == b.payloads == [0, 1, 2]
        assert all(r.id is not None for r in a.records)
        assert [r.id for r in a.records] == [r.id for r in b.records]
        assert a.records[0] is not b.records[0]  # each outlet its own copy
        assert queue.stats().pending() == 0

    def test_last_outlet_gets_the_stored_records_without_decoding_them(
        self, queue: RecordQueue, clock: FakeClock
    ) -> None:
        """Fresh records reach the last outlet as pulled (same payload objects, with ids);
        the other outlets, and any redelivery, get copies decoded from storage."""
        payload_a, payload_b = {"n": 1}, {"n": 2}
        failing = [True]
        first = ListOutlet("first")
        last = ListOutlet("last", fail=lambda: failing[0])
        link = make_link(queue, ValuesInlet([payload_a], [payload_b]), [first, last])
        link.transfer()  # last fails: its record waits for a retry
        assert first.records[0].payload == payload_a
        assert first.records[0].payload is not payload_a
        failing[0] = False
        clock.advance(3600)
        link.transfer()  # last: the retried record (decoded) and the new one, decoded too
        assert [r.payload for r in last.records] == [payload_a, payload_b]
        assert last.records[0].payload is not payload_a
        assert last.records[1].payload is not payload_b
        link.add_inlets(ValuesInlet([payload_a]))
        link.transfer()  # nothing older waits: the last outlet gets the pulled object
        assert last.records[-1].payload is payload_a
        assert last.records[-1].id == first.records[-1].id is not None
        assert first.records[-1].payload is not payload_a

    def test_transfers_deliver_in_enqueue_order_bounded_by_batch_size(
        self, queue: RecordQueue
    ) -> None:
        """With drain_budget=0, batch_size bounds each outlet's share of a transfer; the rest
        comes next time (a draining transfer goes on: tests/queue/test_backlog_drain.py)."""
        out = ListOutlet("a")
        link = make_link(queue, CountingInlet(5), out, batch_size=3, drain_budget=0)
        link.transfer()
        assert out.payloads == [0, 1, 2]
        link.transfer()
        assert out.payloads == [0, 1, 2, 3, 4, 5]
        assert queue.stats().pending() == 4

    def test_a_backlog_drains_in_one_transfer_chunk_by_chunk(self, queue: RecordQueue) -> None:
        """After an outage, one transfer delivers the backlog in chunks of batch_size, in
        enqueue order (every backend: each due() after the acks hands out the next ones)."""
        out = ListOutlet("a", fail=True)
        link = make_link(
            queue,
            CountingInlet(7),
            out,
            batch_size=3,
            isolate_poison=False,
            retry=RetryPolicy(max_attempts=None, initial_delay=0, jitter=0),
        )
        for _ in range(3):
            link.transfer()  # 21 queued; each transfer's first chunk failed
        out.fail = False
        link.transfer()  # pulls 7 more, then drains all 28
        assert out.payloads == list(range(28))
        assert [len(batch) for batch in out.batches] == [3] * 9 + [1]
        assert queue.stats().pending() == 0

    def test_groupers_and_outlet_processors_apply(self, queue: RecordQueue) -> None:
        """Groupers split what is due into batches, each acked on its own push."""
        doubled = lambda records: [Record(r.payload * 2, r.metadata) for r in records]  # noqa: E731
        out = ListOutlet("a", processors=[doubled])
        pairs = lambda batches: [b[i : i + 2] for b in batches for i in range(0, len(b), 2)]  # noqa: E731
        link = make_link(queue, CountingInlet(5), out, groupers=[pairs])
        link.transfer()
        assert [[r.payload for r in b] for b in out.batches] == [[0, 2], [4, 6], [8]]
        assert queue.stats().pending() == 0

    def test_async_outlet(self, queue: RecordQueue) -> None:
        class AsyncOut(Outlet):
            def __init__(self) -> None:
                super().__init__(name="async")
                self.got: list[Any] = []

            async def push(self, records: list[Record], update: Update) -> None:
                await asyncio.sleep(0)
                self.got.extend(r.payload for r in records)

        out = AsyncOut()
        make_link(queue, CountingInlet(2), out).transfer()
        assert out.got == [0, 1] and queue.stats().pending() == 0

    def test_router_decides_which_deliveries_are_stored(self, queue: RecordQueue) -> None:
        """Routing happens before enqueue: only routed outlets get deliveries."""
        a, b = ListOutlet("a"), ListOutlet("b")
        inlet = ValuesInlet([1, 2, 3], name="src")
        router = MetadataRouter("kind", {"x": "a"}, default=("a", "b"))
        link = make_link(queue, inlet, [a, b], router=router, processors=[_tag_odd_as_x])
        link.transfer()
        assert a.payloads == [1, 2, 3] and b.payloads == [2]
        assert queue.stats().pending() == 0 and queue.stats().records == 3


def _tag_odd_as_x(records: list[Record]) -> list[Record]:
    for record in records:
        if record.payload % 2:
            record.metadata["kind"] = "x"
    return records


class TestFailures:
    def test_flaky_outlet_eventually_receives_everything(
        self, queue: RecordQueue, clock: FakeClock
    ) -> None:
        """(b) An outlet failing 30 % of the time at random still gets every record."""
        flaky, steady = FlakyOutlet(0.3, seed=7, name="flaky"), ListOutlet("steady")
        policy = RetryPolicy(max_attempts=None, initial_delay=1, max_delay=8, seed=3)
        link = make_link(queue, CountingInlet(4), [flaky, steady], retry=policy, batch_size=10)
        for _ in range(60):
            link.transfer()
            clock.advance(5)
        link.remove_inlets(link.inlets)
        for _ in range(200):
            if queue.stats().pending() == 0:
                break
            link.transfer()
            clock.advance(10)
        expected = list(range(240))
        assert sorted(set(flaky.payloads)) == expected
        assert steady.payloads == expected  # once each, in order
        assert flaky.attempts > len(flaky.batches)  # it did fail, and was retried
        assert queue.stats().pending() == 0

    def test_dead_after_max_attempts_then_replay(
        self, queue: RecordQueue, clock: FakeClock, databay_logs: pytest.LogCaptureFixture
    ) -> None:
        """(c) An always-failing outlet ends dead-lettered; the others got everything;
        replay delivers to it once it works."""
        broken, ok = ListOutlet("broken", fail=True), ListOutlet("ok")
        policy = RetryPolicy(max_attempts=3, initial_delay=1, jitter=0)
        link = make_link(queue, CountingInlet(2), [broken, ok], retry=policy)
        for _ in range(6):
            link.transfer()  # failures never fail the transfer
            clock.advance(100)
        link.remove_inlets(link.inlets)
        for _ in range(3):  # the last records' remaining attempts
            link.transfer()
            clock.advance(100)
        assert ok.payloads == list(range(12))
        stats = queue.stats()
        assert stats.dead("prices", "broken") == 12 and stats.pending() == 0
        assert {d.attempts for d in queue.dead_letters()} == {3}
        assert "dead-lettered" in databay_logs.text
        broken.fail = False
        assert queue.replay(link="prices", outlet="broken") == 12
        link.transfer()
        assert broken.payloads == list(range(12))
        assert ok.payloads == list(range(12))  # no duplicates for the healthy outlet
        assert queue.dead_letters() == []

    def test_backoff_is_respected_with_injected_clock(
        self, queue: RecordQueue, clock: FakeClock
    ) -> None:
        """(d) A failed delivery is retried only when its backoff has passed; no sleeping."""
        out = ListOutlet("a", fail=True)
        link = make_link(queue, ValuesInlet([1]), out, retry=NO_JITTER)
        link.transfer()
        assert out.attempts == 1
        link.transfer()
        clock.advance(9.9)
        link.transfer()
        assert out.attempts == 1  # not due before 10 s
        clock.advance(0.1)
        link.transfer()
        assert out.attempts == 2  # second failure: next after 20 s
        clock.advance(19.9)
        link.transfer()
        assert out.attempts == 2
        out.fail = False
        clock.advance(0.1)
        link.transfer()
        assert out.payloads == [1] and queue.stats().pending() == 0

    def test_per_outlet_policy_overrides_the_link_policy(
        self, queue: RecordQueue, clock: FakeClock
    ) -> None:
        a, b = ListOutlet("a", fail=True), ListOutlet("b", fail=True)
        link = make_link(
            queue,
            ValuesInlet([1]),
            [a, b],
            retry=RetryPolicy(max_attempts=5, initial_delay=1, jitter=0),
            outlet_retry={"b": RetryPolicy(max_attempts=1)},
        )
        link.transfer()
        assert queue.stats().dead("prices", "b") == 1
        assert queue.stats().dead("prices", "a") == 0
        clock.advance(1)
        link.transfer()
        assert (a.attempts, b.attempts) == (2, 1)

    def test_failing_outlet_stops_only_its_lane(self, queue: RecordQueue) -> None:
        """After a failed batch its later batches wait; the other outlet gets all batches."""
        singles = lambda batches: [[r] for b in batches for r in b]  # noqa: E731
        calls = {"n": 0}

        def second_fails() -> bool:
            calls["n"] += 1
            return calls["n"] == 2

        a, b = ListOutlet("a", fail=second_fails), ListOutlet("b")
        link = make_link(queue, ValuesInlet([1, 2, 3]), [a, b], groupers=[singles])
        link.transfer()
        assert a.payloads == [1] and b.payloads == [1, 2, 3]
        assert queue.stats().pending("prices", "a") == 2

    def test_encode_error_raises_and_stores_nothing(self, queue: RecordQueue) -> None:
        out = ListOutlet("a")
        link = make_link(queue, ValuesInlet([1, {2}], name="src"), out)
        with pytest.raises(RecordEncodeError, match=r"'src'.*set"):
            link.transfer()
        assert queue.stats().records == 0 and out.records == []

    def test_encode_error_ignored_queues_the_rest(
        self, queue: RecordQueue, databay_logs: pytest.LogCaptureFixture
    ) -> None:
        out = ListOutlet("a")
        link = make_link(queue, ValuesInlet([1, {2}, 3], name="src"), out, ignore_exceptions=True)
        link.transfer()
        assert out.payloads == [1, 3]
        assert "record not queued" in databay_logs.text and "'src'" in databay_logs.text


class TestIdentityAndOutlets:
    def test_duplicate_outlet_names_rejected(self, queue: RecordQueue) -> None:
        with pytest.raises(InvalidNodeError, match="'same'"):
            make_link(queue, CountingInlet(), [ListOutlet("same"), ListOutlet("same")])
        link = make_link(queue, CountingInlet(), [ListOutlet("same")])
        with pytest.raises(InvalidNodeError, match="'same'"):
            link.add_outlets(ListOutlet("same"))

    def test_link_without_identity_rejected(self, queue: RecordQueue) -> None:
        with pytest.raises(QueueIdentityError, match=r"tags=\.\.\. or key="):
            Link(CountingInlet(), ListOutlet(), 1, queue=queue)
        link = Link(CountingInlet(), ListOutlet(), 1, queue=queue, key="explicit")
        link.transfer()
        assert queue.stats().outlets[0].link == "explicit"

    def test_bad_options_rejected(self, queue: RecordQueue) -> None:
        with pytest.raises(ConfigurationError, match="max_pending: only for a queued link; pass"):
            Link(CountingInlet(), ListOutlet(), 1, tags="t", max_pending=3)
        with pytest.raises(ConfigurationError, match="unknown option"):
            make_link(queue, CountingInlet(), ListOutlet(), retries=3)
        with pytest.raises(ConfigurationError, match="batch_size"):
            make_link(queue, CountingInlet(), ListOutlet(), batch_size=0)
        with pytest.raises(ConfigurationError, match="max_pending"):
            make_link(queue, CountingInlet(), ListOutlet(), max_pending=0)
        with pytest.raises(ConfigurationError, match="outlet_retry"):
            make_link(queue, CountingInlet(), ListOutlet(), outlet_retry={"a": 3})
        with pytest.raises(ArgumentTypeError, match="retry must be a RetryPolicy or None"):
            make_link(queue, CountingInlet(), ListOutlet(), retry=5)
        with pytest.raises(ArgumentTypeError, match="outlet_retry must be a dict of outlet name"):
            make_link(queue, CountingInlet(), ListOutlet(), outlet_retry=[RetryPolicy()])

    def test_removed_outlet_deliveries_kept_and_reported(
        self, queue: RecordQueue, databay_logs: pytest.LogCaptureFixture
    ) -> None:
        """Deliveries for an outlet the link lost are kept, warned about, and resume."""
        a, b = ListOutlet("a"), ListOutlet("b", fail=True)
        link = make_link(queue, CountingInlet(2), [a, b], retry=NO_JITTER)
        link.transfer()
        link.remove_outlets(b)
        link.transfer()
        assert "no longer has" in databay_logs.text and "'b'" in databay_logs.text
        assert queue.stats().pending("prices", "b") == 2
        restored = ListOutlet("b")
        link.add_outlets(restored)
        link.transfer()
        assert restored.payloads == [4, 5]  # 0, 1 failed once and wait for their retry
        assert queue.stats().pending("prices", "b") == 2

    def test_restart_resumes_from_the_file(
        self, make_sqlite: Callable[..., SqliteQueue], clock: FakeClock
    ) -> None:
        """A new process (new Link, reopened file) delivers what the old one left pending."""
        queue = make_sqlite()
        down = ListOutlet("a", fail=True)
        make_link(queue, ValuesInlet([1, 2]), down, retry=NO_JITTER).transfer()
        queue.close()
        clock.advance(60)
        reopened = make_sqlite()
        up = ListOutlet("a")
        make_link(reopened, ValuesInlet(), up).transfer()
        assert up.payloads == [1, 2]
        assert reopened.stats().pending() == 0


class TestBackpressure:
    def test_stops_pulling_at_max_pending_and_resumes(
        self, queue: RecordQueue, databay_logs: pytest.LogCaptureFixture, clock: FakeClock
    ) -> None:
        inlet = CountingInlet(3)
        out = ListOutlet("a", fail=True)
        link = make_link(queue, inlet, out, max_pending=5, retry=RetryPolicy(max_attempts=None))
        link.transfer()
        link.transfer()
        assert inlet.pulls == 2 and queue.waiting("prices") == 6
        link.transfer()
        assert inlet.pulls == 2  # bound reached: no pull
        assert link._delivery.backpressure_skips == 1  # type: ignore[attr-defined]
        assert "not pulling" in databay_logs.text
        out.fail = False
        clock.advance(10_000)
        link.transfer()  # no pull, but the backlog drains
        assert inlet.pulls == 2 and out.payloads == list(range(6))
        link.transfer()
        assert inlet.pulls == 3

    def test_planner_metrics_include_the_queue(self, queue: RecordQueue) -> None:
        link = make_link(queue, CountingInlet(2), ListOutlet("a", fail=True))
        planner = ManualPlanner(link)
        link.transfer()
        entry = planner.metrics()["links"][0]["queue"]
        assert entry["pending"] == 2 and entry["outlets"]["a"]["retrying"] == 2


class TestPlannerIntegration:
    def test_planner_purges_delivered_records(
        self, make_sqlite: Callable[..., SqliteQueue], wait_until: Callable[..., None]
    ) -> None:
        """Retention runs on the planner's maintenance thread, not in transfers."""
        queue = make_sqlite(retention=0, purge_interval=0.05)
        clock: FakeClock = queue.clock  # type: ignore[assignment]
        link = make_link(queue, CountingInlet(3), ListOutlet("a"))
        planner = ManualPlanner(link)
        planner.start(block=False)
        try:
            clock.advance(1)
            wait_until(lambda: queue.stats().records == 0, message="purge by the planner")
            assert any(t.name == "databay_bus-queue-maintenance" for t in threading.enumerate())
        finally:
            planner.shutdown()
        assert not any(t.name == "databay_bus-queue-maintenance" for t in threading.enumerate())

    def test_links_on_worker_threads_share_one_file(
        self, make_sqlite: Callable[..., SqliteQueue], wait_until: Callable[..., None]
    ) -> None:
        """Several links, transferring on several planner threads, share one SqliteQueue."""
        queue = make_sqlite()
        outlets = {i: [ListOutlet("a"), ListOutlet("b")] for i in range(4)}
        inlets = {i: CountingInlet(5) for i in range(4)}
        links = [Link(inlets[i], outlets[i], 0.02, tags=f"link{i}", queue=queue) for i in range(4)]
        planner = ApsPlanner(links, threads=4)
        planner.start(block=False)
        try:
            wait_until(lambda: all(i.pulls >= 8 for i in inlets.values()), timeout=60)
        finally:
            planner.shutdown(wait=True)
        for link in links:  # deliver whatever the last transfers left
            link.remove_inlets(link.inlets)
            link.transfer()
        for i in range(4):
            produced = list(range(inlets[i].next))
            for outlet in outlets[i]:
                assert outlet.payloads == produced
        assert queue.stats().pending() == 0 and queue.integrity_check() == "ok"


def test_drop_states_accepts_enum(queue: RecordQueue) -> None:
    queue.enqueue("L", [Record(1, {})], [["x"]])
    assert queue.drop(states=[DeliveryState.PENDING]) == 1


def test_a_policy_for_an_outlet_the_link_lacks_is_refused() -> None:
    """A typo in outlet_retry would silently leave the outlet on the link's policy."""
    with pytest.raises(ConfigurationError, match=r"outlet_retry names 'snk' \(str\).*'sink'"):
        Link(
            CountingInlet(),
            ListOutlet("sink"),
            1,
            tags="t",
            queue=MemoryQueue(),
            outlet_retry={"snk": RetryPolicy()},
        )
