"""One transfer: order of stages, concurrency, copies, and what happens when a stage fails."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from typing import Any

import pytest
from core_fakes import (
    AsyncListInlet,
    AsyncRecordingOutlet,
    FailingInlet,
    FailingOutlet,
    GateOutlet,
    ListInlet,
    RecordingOutlet,
    payloads,
)

from databay_bus import Inlet, Link, Record, Update
from databay_bus._concurrency import INLINE_BUDGET
from databay_bus.errors import ConfigurationError, TransferError


class TestOrder:
    def test_pull_process_group_outlet_process_push(self) -> None:
        log: list[str] = []

        def processor(name: str) -> Any:
            def run(records: list[Record]) -> list[Record]:
                log.append(f"{name}:{payloads(records)}")
                return records

            return run

        def grouper(batches: list[list[Record]]) -> list[list[Record]]:
            log.append(f"group:{[payloads(b) for b in batches]}")
            return [[r] for r in batches[0]]

        inlets = [ListInlet([1], name="a", log=log), ListInlet([2], name="b", log=log)]
        outlet = RecordingOutlet(name="out", log=log, processors=processor("outlet-proc"))
        link = Link(
            inlets, outlet, 1, processors=[processor("p1"), processor("p2")], groupers=grouper
        )
        link.transfer()
        assert sorted(log[:2]) == ["pull:a", "pull:b"]
        assert log[2:] == [
            "p1:[1, 2]",
            "p2:[1, 2]",
            "group:[[1, 2]]",
            "outlet-proc:[1]",
            "push:out:[1]",
            "outlet-proc:[2]",
            "push:out:[2]",
        ]

    def test_records_keep_inlet_order_whatever_finishes_first(self) -> None:
        second_done = threading.Event()

        def slow(update: Update) -> list[int]:
            assert second_done.wait(10)
            return [1, 2]

        def fast(update: Update) -> list[int]:
            second_done.set()
            return [3]

        outlet = RecordingOutlet()
        Link([ListInlet(slow), ListInlet(fast)], outlet, 1).transfer()
        assert outlet.payloads == [[1, 2, 3]]

    def test_processors_transform_and_filter(self) -> None:
        outlet = RecordingOutlet()
        link = Link(
            ListInlet([1, 2, 3, 4]),
            outlet,
            1,
            processors=[
                lambda rs: [r for r in rs if r.payload % 2 == 0],
                lambda rs: [Record(r.payload * 10, r.metadata) for r in rs],
            ],
        )
        link.transfer()
        assert outlet.payloads == [[20, 40]]

    def test_each_batch_is_a_push_in_grouper_order(self) -> None:
        def pairs(batches: list[list[Record]]) -> list[list[Record]]:
            records = batches[0]
            return [records[i : i + 2] for i in range(0, len(records), 2)]

        def reverse(batches: list[list[Record]]) -> list[list[Record]]:
            return list(reversed(batches))

        outlets = [RecordingOutlet(), AsyncRecordingOutlet()]
        Link(ListInlet([1, 2, 3, 4, 5]), outlets, 1, groupers=[pairs, reverse]).transfer()
        for outlet in outlets:
            assert outlet.payloads == [[5], [3, 4], [1, 2]]

    def test_update_tags_and_transfer_number(self) -> None:
        inlet, outlet = ListInlet([1]), RecordingOutlet()
        link = Link(inlet, outlet, 1, tags=["a", "b"])
        link.transfer()
        link.transfer()
        assert [str(u) for u in inlet.pulls] == ["a.b.0", "a.b.1"]
        assert [str(u) for u in outlet.updates] == ["a.b.0", "a.b.1"]
        assert inlet.pulls[0] is outlet.updates[0]
        assert link.transfer_number == 1


class TestEmptyTransfers:
    def test_push_called_with_empty_list(self) -> None:
        outlets = [RecordingOutlet(), AsyncRecordingOutlet()]
        Link(ListInlet([]), outlets, 1).transfer()
        assert [o.batches for o in outlets] == [[[]], [[]]]

    def test_push_called_without_inlets(self) -> None:
        outlet = RecordingOutlet()
        Link([], outlet, 1).transfer()
        assert outlet.batches == [[]]

    def test_processor_filtering_everything_still_pushes(self) -> None:
        outlet = RecordingOutlet()
        Link(ListInlet([1]), outlet, 1, processors=lambda rs: []).transfer()
        assert outlet.batches == [[]]


class TestConcurrency:
    def test_sync_inlets_pull_side_by_side(self) -> None:
        barrier = threading.Barrier(3, timeout=10)

        def meet(update: Update) -> int:
            barrier.wait()  # breaks (BrokenBarrierError) unless all three pull at once
            return 1

        outlet = RecordingOutlet()
        Link([ListInlet(meet) for _ in range(3)], outlet, 1, inlet_concurrency=3).transfer()
        assert outlet.payloads == [[1, 1, 1]]

    def test_inlet_concurrency_bounds_sync_pulls(self) -> None:
        lock = threading.Lock()
        running = [0]
        peak = [0]
        pairs = threading.Barrier(2, timeout=10)

        def pull(update: Update) -> int:
            with lock:
                running[0] += 1
                peak[0] = max(peak[0], running[0])
            try:
                pairs.wait()  # two at a time must be possible...
                threading.Event().wait(0.02)  # ...and a third would be counted here
            finally:
                with lock:
                    running[0] -= 1
            return 1

        outlet = RecordingOutlet()
        Link([ListInlet(pull) for _ in range(4)], outlet, 1, inlet_concurrency=2).transfer()
        assert outlet.payloads == [[1, 1, 1, 1]]
        assert peak[0] == 2

    def test_inlet_concurrency_bounds_async_pulls(self) -> None:
        running = [0]
        peak = [0]

        class Counting(Inlet):
            async def pull(self, update: Update) -> int:
                running[0] += 1
                peak[0] = max(peak[0], running[0])
                await asyncio.sleep(0.01)
                running[0] -= 1
                return 1

        outlet = RecordingOutlet()
        Link([Counting() for _ in range(5)], outlet, 1, inlet_concurrency=2).transfer()
        assert outlet.payloads == [[1] * 5]
        assert peak[0] == 2

    def test_async_inlets_overlap(self) -> None:
        class Meeting(Inlet):
            arrived = 0
            everyone: asyncio.Event | None = None

            async def pull(self, update: Update) -> int:
                if Meeting.everyone is None:
                    Meeting.everyone = asyncio.Event()
                Meeting.arrived += 1
                if Meeting.arrived == 3:
                    Meeting.everyone.set()
                await asyncio.wait_for(Meeting.everyone.wait(), 10)
                return 1

        outlet = RecordingOutlet()
        Link([Meeting(), Meeting(), Meeting()], outlet, 1).transfer()
        assert outlet.payloads == [[1, 1, 1]]

    def test_outlets_are_lanes_a_slow_outlet_does_not_delay_others(self) -> None:
        slow = GateOutlet(name="slow")
        fast = RecordingOutlet(name="fast")
        link = Link(ListInlet([1]), [slow, fast], 1)
        thread = threading.Thread(target=link.transfer)
        thread.start()
        try:
            assert fast.pushed.wait(10)
            assert slow.entered.wait(10)
            assert not slow.finished.is_set()
        finally:
            slow.release.set()
            thread.join(10)
        assert slow.payloads == [[1]]

    def test_quick_lanes_run_inline_a_lane_that_proves_slow_moves_to_a_thread(self) -> None:
        """Lanes start on the calling thread; one that blocks hands the lanes after it to
        threads, and from then on starts on a thread itself until it is quick again."""
        first, last = RecordingOutlet(name="first"), RecordingOutlet(name="last")
        slow = GateOutlet(name="slow")
        link = Link(ListInlet([1]), [first, slow, last], 1)
        for transfer in range(2):
            first.pushed.clear()
            last.pushed.clear()
            slow.entered.clear()
            slow.release.clear()
            thread = threading.Thread(target=link.transfer)
            thread.start()
            try:
                assert slow.entered.wait(10)
                assert first.pushed.wait(10) and last.pushed.wait(10), transfer
                time.sleep(10 * INLINE_BUDGET)  # the slow push lasts well over the budget
            finally:
                slow.release.set()
                thread.join(10)
            assert link._slow_outlets == {slow}, transfer
        slow.release.set()  # quick from now on
        link.transfer()
        assert link._slow_outlets == set()
        assert slow.payloads == [[1], [1], [1]] and last.payloads == [[1], [1], [1]]

    def test_sync_push_does_not_block_async_nodes(self) -> None:
        # The sync inlet waits for an event only the async inlet sets; with the sync pull
        # running on the loop's thread this would deadlock (and time out).
        released = threading.Event()

        class Setter(Inlet):
            async def pull(self, update: Update) -> str:
                await asyncio.sleep(0.01)
                released.set()
                return "async"

        def waiter(update: Update) -> str:
            assert released.wait(10), "the sync pull blocked the event loop"
            return "sync"

        outlet = AsyncRecordingOutlet()
        Link([ListInlet(waiter), Setter()], outlet, 1).transfer()
        assert outlet.payloads == [["sync", "async"]]

    def test_sync_outlet_does_not_block_async_outlet(self) -> None:
        released = threading.Event()

        class AsyncSetter(AsyncRecordingOutlet):
            async def push(self, records: list[Record], update: Update) -> None:
                await asyncio.sleep(0.01)
                released.set()
                await super().push(records, update)

        waiting = RecordingOutlet(
            on_push=lambda records, update: released.wait(10) or pytest.fail("loop blocked")
        )
        setter = AsyncSetter()
        Link(ListInlet([1]), [waiting, setter], 1).transfer()
        assert waiting.payloads == [[1]] and setter.payloads == [[1]]


class TestCopies:
    def test_each_outlet_gets_its_own_copy(self) -> None:
        def mutate(records: list[Record], update: Update) -> None:
            records[0].payload["seen"] = True
            records[0].metadata["seen"] = True
            records.append(Record("extra"))

        mutator = RecordingOutlet(on_push=mutate)
        watchers = [RecordingOutlet(), AsyncRecordingOutlet()]
        inlet = ListInlet(lambda update: [{"n": 1}])
        Link(inlet, [mutator, *watchers], 1).transfer()
        for watcher in watchers:
            (batch,) = watcher.batches
            assert payloads(batch) == [{"n": 1}]
            assert "seen" not in batch[0].metadata

    def test_last_outlet_gets_the_originals(self) -> None:
        original = Record({"n": 1})
        first, last = RecordingOutlet(), RecordingOutlet()
        Link(ListInlet([original]), [first, last], 1).transfer()
        assert last.batches[0][0] is original
        assert first.batches[0][0] is not original
        assert first.batches[0][0] == original

    def test_single_outlet_is_not_copied(self) -> None:
        original = Record({"n": 1})
        outlet = RecordingOutlet()
        Link(ListInlet([original]), outlet, 1).transfer()
        assert outlet.batches[0][0] is original

    def test_copy_records_false_shares_records(self) -> None:
        original = Record({"n": 1})
        outlets = [RecordingOutlet(), RecordingOutlet()]
        Link(ListInlet([original]), outlets, 1, copy_records=False).transfer()
        assert outlets[0].batches[0][0] is original
        assert outlets[1].batches[0][0] is original

    def test_uncopyable_payload_raises_unless_ignored(
        self, databay_logs: pytest.LogCaptureFixture
    ) -> None:
        outlets = [RecordingOutlet(), RecordingOutlet()]
        inlet = ListInlet(lambda update: [threading.Lock()])
        with pytest.raises(TypeError):
            Link(inlet, outlets, 1).transfer()
        assert [o.batches for o in outlets] == [[], []]
        Link(inlet, outlets, 1, ignore_exceptions=True).transfer()
        assert [len(o.batches) for o in outlets] == [1, 1]
        assert "could not be copied" in databay_logs.text


class TestFailuresRaised:
    """ignore_exceptions=False: the transfer finishes what it can, then raises."""

    def test_failing_inlet_does_not_cancel_siblings(self) -> None:
        error = ValueError("bad inlet")
        sibling_started = threading.Event()

        def slow(update: Update) -> list[int]:
            sibling_started.set()
            threading.Event().wait(0.05)
            return [1]

        outlet = RecordingOutlet()
        link = Link([ListInlet(slow), FailingInlet(error)], outlet, 1)
        with pytest.raises(ValueError, match="bad inlet") as caught:
            link.transfer()
        assert caught.value is error
        assert outlet.payloads == [[1]]

    def test_failing_processor_raises_before_push(self) -> None:
        def broken(records: list[Record]) -> list[Record]:
            raise KeyError("proc")

        outlet = RecordingOutlet()
        with pytest.raises(KeyError):
            Link(ListInlet([1]), outlet, 1, processors=broken).transfer()
        assert outlet.batches == []

    def test_failing_grouper_raises_before_push(self) -> None:
        def broken(batches: list[list[Record]]) -> list[list[Record]]:
            raise KeyError("grouper")

        outlet = RecordingOutlet()
        with pytest.raises(KeyError):
            Link(ListInlet([1]), outlet, 1, groupers=broken).transfer()
        assert outlet.batches == []

    def test_failing_outlet_stops_its_lane_only(self) -> None:
        failing = FailingOutlet(ValueError("down"))
        healthy = RecordingOutlet()
        link = Link(
            ListInlet([1, 2]),
            [failing, healthy],
            1,
            groupers=lambda batches: [[r] for r in batches[0]],
        )
        with pytest.raises(ValueError, match="down"):
            link.transfer()
        assert failing.payloads == [[1]]  # the later batch is not pushed to the failed outlet
        assert healthy.payloads == [[1], [2]]

    def test_failing_outlet_processor_is_an_outlet_failure(self) -> None:
        def broken(records: list[Record]) -> list[Record]:
            raise ZeroDivisionError()

        failing = RecordingOutlet(processors=broken)
        healthy = RecordingOutlet()
        with pytest.raises(ZeroDivisionError):
            Link(ListInlet([1]), [failing, healthy], 1).transfer()
        assert failing.batches == []
        assert healthy.payloads == [[1]]

    def test_several_failures_are_one_transfer_error(self) -> None:
        errors = [ValueError("in"), OSError("out")]
        link = Link(FailingInlet(errors[0]), FailingOutlet(errors[1]), 1, tags="t")
        with pytest.raises(TransferError, match=r"t\.0: 2 nodes failed") as caught:
            link.transfer()
        assert caught.value.errors == errors

    @pytest.mark.parametrize(
        ("processors", "groupers"),
        [(lambda rs: None, None), (None, lambda bs: [1]), (None, lambda bs: None)],
    )
    def test_bad_return_values(self, processors: Any, groupers: Any) -> None:
        link = Link(ListInlet([1]), RecordingOutlet(), 1, processors=processors, groupers=groupers)
        with pytest.raises(ConfigurationError, match="must return a list"):
            link.transfer()

    def test_async_failures_behave_the_same(self) -> None:
        failing = AsyncRecordingOutlet()
        failing.on_push = lambda records, update: (_ for _ in ()).throw(OSError("async down"))
        healthy = RecordingOutlet()
        inlets = [AsyncListInlet([1]), FailingInlet(ValueError("x"))]
        with pytest.raises(TransferError) as caught:
            Link(inlets, [failing, healthy], 1).transfer()
        assert [type(e) for e in caught.value.errors] == [ValueError, OSError]
        assert healthy.payloads == [[1]]

    def test_link_still_usable_after_a_failure(self) -> None:
        calls = [0]

        def flaky(update: Update) -> int:
            calls[0] += 1
            if calls[0] == 1:
                raise RuntimeError("once")
            return calls[0]

        outlet = RecordingOutlet()
        link = Link(ListInlet(flaky), outlet, 1)
        with pytest.raises(RuntimeError):
            link.transfer()
        link.transfer()
        assert outlet.payloads == [[], [2]]


class TestIgnoredFailures:
    """ignore_exceptions=True: each failure is logged and the rest of the transfer goes on."""

    def test_failing_inlet_is_logged_and_others_delivered(
        self, databay_logs: pytest.LogCaptureFixture
    ) -> None:
        outlet = RecordingOutlet()
        link = Link(
            [FailingInlet(ValueError("bad inlet")), ListInlet([1])],
            outlet,
            1,
            tags="t",
            ignore_exceptions=True,
        )
        link.transfer()
        assert outlet.payloads == [[1]]
        (record,) = [r for r in databay_logs.records if r.levelno == logging.ERROR]
        assert "t.0" in record.getMessage() and "FailingInlet" in record.getMessage()
        assert record.exc_info is not None and record.exc_info[1] is link.inlets[0].error

    def test_failing_processor_passes_its_input_on(
        self, databay_logs: pytest.LogCaptureFixture
    ) -> None:
        def broken(records: list[Record]) -> list[Record]:
            raise KeyError("proc")

        outlet = RecordingOutlet()
        link = Link(
            ListInlet([1, 2]),
            outlet,
            1,
            processors=[broken, lambda rs: rs[:1]],
            ignore_exceptions=True,
        )
        link.transfer()
        assert outlet.payloads == [[1]]
        assert "processor" in databay_logs.text and "KeyError" in databay_logs.text

    def test_failing_grouper_passes_its_input_on(
        self, databay_logs: pytest.LogCaptureFixture
    ) -> None:
        def broken(batches: list[list[Record]]) -> list[list[Record]]:
            raise KeyError("grouper")

        outlet = RecordingOutlet()
        Link(ListInlet([1, 2]), outlet, 1, groupers=broken, ignore_exceptions=True).transfer()
        assert outlet.payloads == [[1, 2]]
        assert "grouper" in databay_logs.text

    def test_failing_outlet_keeps_its_later_batches(
        self, databay_logs: pytest.LogCaptureFixture
    ) -> None:
        failing = FailingOutlet()
        healthy = AsyncRecordingOutlet()
        Link(
            ListInlet([1, 2]),
            [failing, healthy],
            1,
            groupers=lambda batches: [[r] for r in batches[0]],
            ignore_exceptions=True,
        ).transfer()
        assert failing.payloads == [[1], [2]]
        assert healthy.payloads == [[1], [2]]
        errors = [r for r in databay_logs.records if r.levelno == logging.ERROR]
        assert len(errors) == 1  # the same outlet failing again is one failure streak
