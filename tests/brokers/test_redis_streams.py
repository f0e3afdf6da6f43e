"""RedisStreamInlet and RedisStreamOutlet against the machine's Redis server."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from core_fakes import ListInlet, RecordingOutlet

from databay_bus import Link, Record, Update
from databay_bus.errors import BrokerError
from databay_bus.inlets import RedisStreamInlet
from databay_bus.outlets import RedisStreamOutlet
from databay_bus.queue import MemoryQueue


@pytest.fixture
def client(redis_url: str) -> Iterator[Any]:
    import redis

    found = redis.Redis.from_url(redis_url, decode_responses=True)
    yield found
    found.close()


def started(link: Link) -> Link:
    link.on_start()
    return link


def test_the_outlet_adds_entries_with_the_record_id(
    stream: str, redis_url: str, client: Any
) -> None:
    outlet = RedisStreamOutlet(stream, url=redis_url)
    link = started(
        Link(
            ListInlet(name="items", value=[{"n": 1, "tags": ["a"]}, 7]),
            outlet,
            1,
            tags="w",
            queue=MemoryQueue(),
        )
    )
    link.transfer()
    link.on_shutdown()
    entries = client.xrange(stream)
    assert [fields for _, fields in entries] == [
        {"n": "1", "tags": '["a"]', "databay_id": entries[0][1]["databay_id"]},
        {"payload": "7", "databay_id": entries[1][1]["databay_id"]},
    ]
    assert entries[0][1]["databay_id"] != entries[1][1]["databay_id"]


def test_entries_are_acknowledged_only_once_stored(
    stream: str, redis_url: str, client: Any
) -> None:
    for n in range(5):
        client.xadd(stream, {"n": str(n)})
    inlet = RedisStreamInlet(stream, "g", consumer="c1", url=redis_url, count=3)
    keep, queue = RecordingOutlet(name="keep"), MemoryQueue()
    broken = {"on": True}

    def fail_while_broken(records: list[Record]) -> list[Record]:
        if broken["on"]:
            raise RuntimeError("the store is down")
        return records

    link = started(Link(inlet, keep, 1, tags="r", queue=queue, processors=[fail_while_broken]))
    with pytest.raises(RuntimeError):
        link.transfer()
    assert client.xpending(stream, "g")["pending"] == 3  # read, never acknowledged
    broken["on"] = False
    link.transfer()  # the same three again, from the pending list, then acknowledged
    assert client.xpending(stream, "g")["pending"] == 0
    link.transfer()
    link.on_shutdown()
    assert [r.payload["n"] for r in keep.records] == ["0", "1", "2", "3", "4"]
    assert keep.records[0].metadata["redis_stream"] == stream
    assert keep.records[0].metadata["redis_id"].count("-") == 1


def test_a_restarted_consumer_reads_what_it_never_acknowledged(
    stream: str, redis_url: str, client: Any
) -> None:
    client.xadd(stream, {"n": "0"})
    first = RedisStreamInlet(stream, "g", consumer="worker", url=redis_url)
    first.on_start()
    assert [r.payload for r in first.pull(Update(["x"], 0))] == [{"n": "0"}]
    first.on_shutdown()  # "crashed" before the records were safe: no XACK
    second = RedisStreamInlet(stream, "g", consumer="worker", url=redis_url)
    keep = RecordingOutlet(name="keep")
    link = started(Link(second, keep, 1, tags="r", queue=MemoryQueue()))
    link.transfer()
    link.on_shutdown()
    assert [r.payload for r in keep.records] == [{"n": "0"}]
    assert client.xpending(stream, "g")["pending"] == 0


def test_an_unreachable_server_is_a_broker_error_without_the_password() -> None:
    inlet = RedisStreamInlet("s", "g", url="redis://:s3cret@127.0.0.1:1/0")
    with pytest.raises(
        BrokerError, match=r"RedisStreamInlet\(stream='s'.*redis://:\*\*\*@127"
    ) as caught:
        inlet.on_start()
    assert "s3cret" not in str(caught.value)
    outlet = RedisStreamOutlet("s", url="redis://127.0.0.1:1/0")
    with pytest.raises(BrokerError, match="RedisStreamOutlet"):
        outlet.on_start()
