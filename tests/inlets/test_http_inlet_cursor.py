"""HttpInlet's cursor parameter: "since=" style APIs, the next cursor taken from the response."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from core_fakes import RecordingOutlet
from http_server import LocalServer

from databay_bus import Link
from databay_bus.errors import ConfigurationError
from databay_bus.inlets import HttpInlet
from databay_bus.inlets.http_inlet import _json_path
from databay_bus.queue import MemoryQueue


@pytest.fixture
def server() -> Iterator[LocalServer]:
    with LocalServer() as running:
        yield running


def test_the_cursor_is_sent_and_the_next_one_taken_from_the_response(server: LocalServer) -> None:
    def next_page(echo: Any) -> int:
        return int(echo["query"].get("since", "0")) + 10

    inlet = HttpInlet(
        server.url("/echo"),
        params={"limit": "5"},
        cursor_param="since",
        next_cursor=next_page,
        name="feed",
    )
    queue, collect = MemoryQueue(), RecordingOutlet()
    link = Link(inlet, collect, 1, tags="feed", queue=queue)
    link.on_start()
    try:
        for _ in range(3):
            link.transfer()
    finally:
        link.on_shutdown()
    assert [r.payload["query"] for r in collect.records] == [
        {"limit": "5"},
        {"limit": "5", "since": "10"},
        {"limit": "5", "since": "20"},
    ]
    stored = queue.cursor("feed", "feed")
    assert stored is not None and stored.value == 30


def test_json_paths() -> None:
    data = {"meta": {"next": "abc"}, "items": [{"id": 1}, {"id": 7}]}
    assert _json_path(data, "meta.next") == "abc"
    assert _json_path(data, "$.items[-1].id") == 7
    assert _json_path(data, "items[0]") == {"id": 1}
    assert _json_path(data, "meta.none") is None
    assert _json_path(data, "items[5].id") is None
    assert _json_path([1, 2], "[1]") == 2


def test_next_cursor_must_be_a_callable_or_a_path() -> None:
    with pytest.raises(ConfigurationError, match="next_cursor must be a callable or a JSON path"):
        HttpInlet("http://x", next_cursor=5)  # type: ignore[arg-type]
