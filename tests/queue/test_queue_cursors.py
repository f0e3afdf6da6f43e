"""The cursor part of the RecordQueue contract: stored with the records, versioned."""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest

from databay_bus import Record
from databay_bus.errors import (
    ConfigurationError,
    CursorConflictError,
    CursorError,
    CursorTypeError,
)
from databay_bus.queue import RecordQueue, SqliteQueue
from databay_bus.queue.cursors import ANY_VERSION, CursorWrite, encode_cursor


@pytest.fixture
def queue(queue: RecordQueue) -> RecordQueue:
    """Every backend that stores cursors (the others raise QueueError when one is used)."""
    if type(queue)._do_write_cursors is RecordQueue._do_write_cursors:
        pytest.skip(f"{type(queue).__name__} does not store inlet cursors yet")
    return queue


def recs(*payloads: object) -> list[Record]:
    return [Record(p) for p in payloads]


def test_no_cursor_until_one_is_written(queue: RecordQueue) -> None:
    assert queue.cursor("l", "in") is None
    assert queue.cursors() == {}


def test_cursors_are_stored_with_the_records_and_versioned(queue: RecordQueue) -> None:
    queue.enqueue("l", recs(1, 2), [["o"], ["o"]], cursors={"in": CursorWrite('{"at":2}', 0)})
    stored = queue.cursor("l", "in")
    assert stored is not None and stored.value == {"at": 2} and stored.version == 1
    assert queue.waiting("l") == 2
    queue.enqueue("l", recs(3), [["o"]], cursors={"in": CursorWrite('{"at":3}', 1)})
    again = queue.cursor("l", "in")
    assert again is not None and again.value == {"at": 3} and again.version == 2
    assert set(queue.cursors()) == {("l", "in")}
    assert queue.cursors("other") == {}


def test_a_stale_cursor_stores_nothing_of_its_transfer(queue: RecordQueue) -> None:
    queue.enqueue("l", recs(1), [["o"]], cursors={"in": CursorWrite("1", 0)})
    with pytest.raises(CursorConflictError, match="'in' of link 'l' is at version 1, not 0"):
        queue.enqueue(
            "l",
            recs(2, 3),
            [["o"], ["o"]],
            cursors={"second": CursorWrite('"x"', 0), "in": CursorWrite("2", 0)},
        )
    assert queue.waiting("l") == 1
    stored = queue.cursor("l", "in")
    assert stored is not None and stored.value == 1 and stored.version == 1
    assert queue.cursor("l", "second") is None
    assert [r.payload for r in queue.due("l", "o", 10)] == [1]


def test_an_idle_pull_moves_a_cursor_without_records(queue: RecordQueue) -> None:
    assert queue.enqueue("l", [], [], cursors={"in": CursorWrite('"t0"', 0)}) == []
    stored = queue.cursor("l", "in")
    assert stored is not None and stored.value == "t0"
    assert queue.waiting("l") == 0


def test_set_and_reset_by_an_operator(queue: RecordQueue) -> None:
    queue.set_cursor("l", "in", [1, "a"])
    queue.set_cursor("l", "in", None)  # None is a value; reset forgets
    stored = queue.cursor("l", "in")
    assert stored is not None and stored.value is None and stored.version == 2
    with pytest.raises(CursorConflictError):
        queue.set_cursor("l", "in", 5, expected=1)
    assert queue.reset_cursor("l", "in") is True
    assert queue.cursor("l", "in") is None
    assert queue.reset_cursor("l", "in", expected=ANY_VERSION) is False


@pytest.mark.parametrize(
    "value", [{1, 2}, (1, 2), math.nan, math.inf, {1: "a"}, object(), [b"x"], {"a": (1,)}]
)
def test_only_json_values_are_cursors(queue: RecordQueue, value: object) -> None:
    with pytest.raises(CursorError, match="my-inlet: a cursor must"):
        encode_cursor(value, "my-inlet")
    with pytest.raises(CursorError):
        queue.set_cursor("l", "in", value)
    assert queue.cursor("l", "in") is None


def test_cursors_survive_a_reopen(make_sqlite: Callable[..., SqliteQueue]) -> None:
    first = make_sqlite()
    first.enqueue("l", recs(1), [["o"]], cursors={"in": CursorWrite('{"page":4}', 0)})
    first.close()
    second = make_sqlite()
    stored = second.cursor("l", "in")
    assert stored is not None and stored.value == {"page": 4} and stored.version == 1


@pytest.mark.parametrize(
    ("link", "inlet", "error"),
    [("", "feed", ConfigurationError), ("prices", "", ConfigurationError), (5, "feed", TypeError)],
)
def test_an_operator_names_a_link_and_an_inlet(
    queue: RecordQueue, link: object, inlet: object, error: type[Exception]
) -> None:
    """An empty or non-string key is refused, not stored as a cursor nothing reads."""
    for call in (
        lambda: queue.set_cursor(link, inlet, 1),  # type: ignore[arg-type]
        lambda: queue.reset_cursor(link, inlet),  # type: ignore[arg-type]
        lambda: queue.cursor(link, inlet),  # type: ignore[arg-type]
    ):
        with pytest.raises(error, match="must be a non-empty str"):
            call()
    assert queue.cursors() == {}


@pytest.mark.parametrize("value", [{1, 2}, b"x", (1, 2), {1: "a"}, object()])
def test_a_cursor_of_the_wrong_type_is_also_a_type_error(queue: RecordQueue, value: object) -> None:
    with pytest.raises(CursorTypeError, match="a cursor must") as caught:
        queue.set_cursor("L", "feed", value)
    assert isinstance(caught.value, CursorError) and isinstance(caught.value, TypeError)
    with pytest.raises(CursorError) as nan:
        queue.set_cursor("L", "feed", math.nan)
    assert not isinstance(nan.value, TypeError)  # a float, of a value JSON cannot hold
