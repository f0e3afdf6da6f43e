"""update.cursor / update.commit_cursor through a link, with and without a queue, and the
on_records_safe / on_records_failed hooks."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from databay_bus import Inlet, Link, Outlet, Record, Update
from databay_bus.errors import (
    ArgumentTypeError,
    CursorConflictError,
    CursorError,
    InvalidNodeError,
    MissingNodeError,
)
from databay_bus.queue import MemoryQueue, RecordQueue, SqliteQueue

SOURCE = list(range(10))


class PageInlet(Inlet):
    """Reads up to ``size`` items of SOURCE after the committed cursor; records every hook."""

    def __init__(self, size: int = 3, name: str | None = None, **behaviour: Any) -> None:
        super().__init__(name=name)
        self.size = size
        self.behaviour = behaviour
        self.safe: list[list[Any]] = []
        self.failed: list[tuple[list[Any], BaseException | None]] = []
        self.seen: list[Any] = []

    def pull(self, update: Update) -> list[int]:
        start = update.cursor or 0
        self.seen.append(update.cursor)
        items = SOURCE[start : start + self.size]
        update.commit_cursor(self.behaviour.get("cursor", start + len(items)))
        if self.behaviour.get("twice"):
            update.commit_cursor(start)
        if self.behaviour.get("raise_after_commit"):
            raise RuntimeError("pull failed after its commit")
        hook = self.behaviour.get("during_pull")
        if hook is not None:
            hook(update)
        return items

    def on_records_safe(self, records: list[Record], update: Update) -> None:
        self.safe.append([r.payload for r in records])

    def on_records_failed(
        self, records: list[Record], update: Update, error: BaseException | None
    ) -> None:
        self.failed.append(([r.payload for r in records], error))


class AsyncPageInlet(PageInlet):
    async def pull(self, update: Update) -> list[int]:  # type: ignore[override]
        return super().pull(update)

    async def on_records_safe(self, records: list[Record], update: Update) -> None:  # type: ignore[override]
        super().on_records_safe(records, update)


class Sink(Outlet):
    def __init__(self, fail: bool = False, name: str | None = None) -> None:
        super().__init__(name=name)
        self.fail = fail
        self.got: list[Any] = []

    def push(self, records: list[Record], update: Update) -> None:
        if self.fail:
            raise ConnectionError("sink down")
        self.got.extend(r.payload for r in records)


@pytest.fixture(params=["memory", "sqlite", None])
def queue(request: pytest.FixtureRequest, tmp_path: Any) -> Any:
    if request.param == "memory":
        yield MemoryQueue()
    elif request.param == "sqlite":
        opened = SqliteQueue(tmp_path / "q.db")
        yield opened
        opened.close()
    else:
        yield None


def make_link(inlet: Inlet, outlet: Outlet, queue: RecordQueue | None, **kw: Any) -> Link:
    return Link(inlet, outlet, 1, tags="pages", queue=queue, **kw)


def test_each_pull_reads_the_last_committed_cursor(queue: RecordQueue | None) -> None:
    inlet, sink = PageInlet(), Sink()
    link = make_link(inlet, sink, queue)
    for _ in range(5):
        link.transfer()
    assert inlet.seen == [None, 3, 6, 9, 10]
    assert sink.got == SOURCE
    assert inlet.safe == [[0, 1, 2], [3, 4, 5], [6, 7, 8], [9]]
    if queue is not None:
        stored = queue.cursor("pages", "PageInlet")
        assert stored is not None and stored.value == 10


def test_cursors_survive_a_restart(tmp_path: Any) -> None:
    first = SqliteQueue(tmp_path / "q.db")
    make_link(PageInlet(), Sink(), first).transfer()
    first.close()
    second = SqliteQueue(tmp_path / "q.db")
    inlet = PageInlet()
    make_link(inlet, Sink(), second).transfer()
    second.close()
    assert inlet.seen == [3]


def test_without_a_queue_the_cursor_moves_only_when_every_outlet_took_the_records() -> None:
    inlet, good, bad = PageInlet(), Sink(name="good"), Sink(fail=True, name="bad")
    link = Link(inlet, [good, bad], 1, tags="pages", ignore_exceptions=True)
    link.transfer()
    link.transfer()
    assert inlet.seen == [None, None]  # the window is read again
    assert [payloads for payloads, _ in inlet.failed] == [[0, 1, 2], [0, 1, 2]]
    assert isinstance(inlet.failed[0][1], Exception)
    bad.fail = False
    link.transfer()
    link.transfer()
    assert inlet.seen == [None, None, None, 3]
    assert inlet.safe == [[0, 1, 2], [3, 4, 5]]
    assert good.got == [0, 1, 2] * 3 + [3, 4, 5]  # at least once: the window came again


def test_with_a_queue_a_failing_outlet_does_not_hold_the_cursor_back(queue: Any) -> None:
    if queue is None:
        pytest.skip("queued links only")
    inlet, sink = PageInlet(), Sink(fail=True)
    link = make_link(inlet, sink, queue)
    link.transfer()
    link.transfer()
    assert inlet.seen == [None, 3]
    assert inlet.safe == [[0, 1, 2], [3, 4, 5]]  # stored: safe before any push
    assert inlet.failed == []


def test_a_failed_enqueue_moves_no_cursor_and_tells_the_inlet(queue: Any) -> None:
    if queue is None:
        pytest.skip("queued links only")
    inlet = PageInlet()
    link = make_link(inlet, Sink(), queue, processors=[lambda rs: [Record(object())]])
    with pytest.raises(Exception, match="object"):
        link.transfer()
    assert queue.cursor("pages", "PageInlet") is None
    assert inlet.safe == []
    assert [p for p, _ in inlet.failed] == [[0, 1, 2]]


def test_records_the_codec_refuses_are_never_called_safe() -> None:
    class Mixed(PageInlet):
        def pull(self, update: Update) -> list[Any]:
            update.commit_cursor(1)
            return [1, {2}, 3]

    inlet = Mixed()
    link = make_link(inlet, Sink(), MemoryQueue(), ignore_exceptions=True)
    link.transfer()
    assert inlet.safe == [[1, 3]]
    assert [p for p, _ in inlet.failed] == [[{2}]]


def test_an_idle_pull_can_move_the_cursor(queue: Any) -> None:
    class Idle(PageInlet):
        def pull(self, update: Update) -> list[int]:
            self.seen.append(update.cursor)
            update.commit_cursor("2026-12-06T10:00")
            return []

    inlet, sink = Idle(), Sink()
    link = make_link(inlet, sink, queue)
    link.transfer()
    link.transfer()
    assert inlet.seen == [None, "2026-12-06T10:00"]
    assert sink.got == [] and inlet.safe == []


def test_a_pull_that_raises_after_committing_moves_no_cursor(queue: Any) -> None:
    inlet = PageInlet(raise_after_commit=True)
    link = make_link(inlet, Sink(), queue)
    for _ in range(2):
        with pytest.raises(RuntimeError):
            link.transfer()
    assert inlet.seen == [None, None]


@pytest.mark.parametrize(
    ("behaviour", "match"),
    [
        ({"cursor": {1, 2}}, r"PageInlet\(\): a cursor must be JSON-storable.*\{1, 2\} \(set\)"),
        ({"cursor": float("nan")}, "must be JSON-storable"),
        ({"cursor": (1, 2)}, "must come back equal from JSON"),
        ({"twice": True}, r"PageInlet\(\): update.commit_cursor called twice in one pull"),
    ],
)
def test_bad_cursors_fail_the_pull_naming_the_inlet(behaviour: Any, match: str) -> None:
    queue = MemoryQueue()
    link = make_link(PageInlet(**behaviour), Sink(), queue)
    with pytest.raises(CursorError, match=match):
        link.transfer()
    assert queue.waiting("pages") == 0 and queue.cursor("pages", "PageInlet") is None


def test_cursors_outside_a_pull_are_refused() -> None:
    kept: list[Update] = []

    class Keeper(PageInlet):
        def pull(self, update: Update) -> list[int]:
            kept.append(update)
            return []

    class Peeker(Sink):
        def push(self, records: list[Record], update: Update) -> None:
            update.commit_cursor(5)

    link = make_link(Keeper(), Sink(), None)
    with pytest.raises(CursorError, match=r"pages.0: update.commit_cursor\(5 \(int\)\) is only"):
        Link(PageInlet(), Peeker(), 1, tags="pages").transfer()
    link.transfer()
    with pytest.raises(CursorError, match="only available inside an inlet's pull"):
        _ = kept[0].cursor
    with pytest.raises(CursorError):
        Update(["x"], 0).commit_cursor(1)


def test_inlets_keep_their_own_cursors_and_names_must_differ(queue: Any) -> None:
    a, b = PageInlet(name="a"), PageInlet(size=1, name="b")
    link = Link([a, b], Sink(), 1, tags="pages", queue=queue)
    link.transfer()
    link.transfer()
    assert (a.seen, b.seen) == ([None, 3], [None, 1])
    twins = Link([PageInlet(), PageInlet()], Sink(), 1, tags="twins", queue=queue)
    with pytest.raises(CursorError, match="two inlets named 'PageInlet'"):
        twins.transfer()


def test_a_stale_writer_stores_nothing(tmp_path: Any) -> None:
    queue = SqliteQueue(tmp_path / "q.db")
    moved = threading.Event()

    def another_process_moves_it(update: Update) -> None:
        if not moved.is_set():
            moved.set()
            queue.set_cursor("pages", "PageInlet", 7)

    inlet = PageInlet(during_pull=another_process_moves_it)
    link = make_link(inlet, Sink(), queue)
    with pytest.raises(CursorConflictError, match="version 1, not 0"):
        link.transfer()
    assert queue.waiting("pages") == 0
    link.transfer()
    assert inlet.seen == [None, 7]
    queue.close()


def test_async_inlets_use_cursors_and_async_hooks(queue: Any) -> None:
    inlet, sink = AsyncPageInlet(), Sink()
    link = make_link(inlet, sink, queue)
    for _ in range(3):
        link.transfer()
    assert inlet.seen == [None, 3, 6]
    assert inlet.safe == [[0, 1, 2], [3, 4, 5], [6, 7, 8]]


def test_async_hooks_need_an_async_pull() -> None:
    class Wrong(PageInlet):
        async def on_records_safe(self, records: list[Record], update: Update) -> None:  # type: ignore[override]
            pass

    with pytest.raises(InvalidNodeError, match="may be async only when pull is async"):
        Wrong()


def test_operators_set_and_reset_through_the_link_only_while_it_does_not_run(queue: Any) -> None:
    inlet = PageInlet()
    link = make_link(inlet, Sink(), queue)
    link.transfer()
    stored = link.cursor("PageInlet")
    assert stored is not None and stored.value == 3
    link.set_cursor("PageInlet", 8)
    link.transfer()
    link.reset_cursor("PageInlet")
    link.transfer()
    assert inlet.seen == [None, 8, None]
    with pytest.raises(CursorError, match="a cursor must be JSON-storable"):
        link.set_cursor("PageInlet", {1})
    link.set_job(object())  # scheduled by a planner
    with pytest.raises(
        CursorError, match=r"cannot set the cursor of inlet 'PageInlet' to 1 \(int\)"
    ):
        link.set_cursor("PageInlet", 1)
    link.set_job(None)

    links: list[Link] = []

    def during_pull(update: Update) -> None:
        links[0].reset_cursor("PageInlet")  # its own link, in the middle of a transfer

    # Another key: the first link still owns 'pages' on this queue.
    busy = Link(PageInlet(during_pull=during_pull), Sink(), 1, tags="busy", queue=queue)
    links.append(busy)
    with pytest.raises(CursorError, match="while the link runs"):
        busy.transfer()


@pytest.mark.parametrize("method", ["cursor", "set_cursor", "reset_cursor"])
def test_operators_name_an_inlet_of_the_link(method: str, queue: Any) -> None:
    """A typo or a non-name is an error naming the link and the value, never a cursor stored
    (or read) for an inlet the link does not have."""
    link = make_link(PageInlet(), Sink(), queue)
    args: tuple[Any, ...] = (1,) if method == "set_cursor" else ()
    with pytest.raises(MissingNodeError, match=r"no inlet named 'Pagelnet' \(str\).*'PageInlet'"):
        getattr(link, method)("Pagelnet", *args)
    with pytest.raises(ArgumentTypeError, match=r"inlet name must be a string, got 5 \(int\)"):
        getattr(link, method)(5, *args)
    assert queue is None or queue.cursors() == {}
