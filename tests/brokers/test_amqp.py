"""AmqpInlet and AmqpOutlet against the machine's RabbitMQ."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from core_fakes import ListInlet, RecordingOutlet

from databay_bus import Link, Record, Update
from databay_bus.errors import BrokerError
from databay_bus.inlets import AmqpInlet
from databay_bus.outlets import AmqpOutlet
from databay_bus.queue import MemoryQueue


def run(coro: Any) -> Any:
    return asyncio.run(coro)


async def _messages(url: str, queue: str) -> list[Any]:
    """Every message of ``queue`` (taken and acknowledged)."""
    import aio_pika

    connection = await aio_pika.connect(url, timeout=5)
    channel = await connection.channel()
    found = []
    declared = await channel.declare_queue(queue, durable=True)
    while (message := await declared.get(fail=False, no_ack=True)) is not None:
        found.append(message)
    await connection.close()
    return found


async def _count(url: str, queue: str) -> int:
    import aio_pika

    connection = await aio_pika.connect(url, timeout=5)
    channel = await connection.channel()
    declared = await channel.declare_queue(queue, durable=True, passive=True)
    count = declared.declaration_result.message_count
    await connection.close()
    return int(count or 0)


def publish(url: str, queue: str, payloads: list[Any]) -> None:
    link = Link(
        ListInlet(name="items", value=payloads),
        AmqpOutlet(queue, url=url, declare_queue=queue),
        1,
        tags="pub",
    )
    link.on_start()
    link.transfer()
    link.on_shutdown()


def test_the_outlet_publishes_confirmed_persistent_json(amqp_url: str, amqp_queue: str) -> None:
    outlet = AmqpOutlet(amqp_queue, url=amqp_url, declare_queue=amqp_queue)
    link = Link(
        ListInlet(name="items", value=[{"n": 1}, "two"]), outlet, 1, tags="pub", queue=MemoryQueue()
    )
    link.on_start()
    link.transfer()
    link.on_shutdown()
    messages = run(_messages(amqp_url, amqp_queue))
    assert [json.loads(m.body) for m in messages] == [{"n": 1}, "two"]
    assert all(m.delivery_mode == 2 and m.content_type == "application/json" for m in messages)
    assert messages[0].message_id and messages[0].message_id != messages[1].message_id


def test_messages_are_acknowledged_only_once_stored(amqp_url: str, amqp_queue: str) -> None:
    publish(amqp_url, amqp_queue, [{"n": n} for n in range(4)])
    inlet = AmqpInlet(amqp_queue, url=amqp_url, count=10)
    keep = RecordingOutlet(name="keep")
    broken = {"on": True}

    def fail_while_broken(records: list[Record]) -> list[Record]:
        if broken["on"]:
            raise RuntimeError("the store is down")
        return records

    link = Link(inlet, keep, 1, tags="r", queue=MemoryQueue(), processors=[fail_while_broken])
    link.on_start()
    try:
        with pytest.raises(RuntimeError):
            link.transfer()
        assert run(_count(amqp_url, amqp_queue)) == 4  # rejected back: nothing acknowledged
        broken["on"] = False
        link.transfer()
        assert run(_count(amqp_url, amqp_queue)) == 0  # stored, then acknowledged
    finally:
        link.on_shutdown()
    assert sorted(r.payload["n"] for r in keep.records) == [0, 1, 2, 3]
    assert keep.records[0].metadata["amqp_queue"] == amqp_queue


def test_unacknowledged_messages_come_back_after_a_crash(amqp_url: str, amqp_queue: str) -> None:
    publish(amqp_url, amqp_queue, ["a", "b"])
    first = AmqpInlet(amqp_queue, url=amqp_url)
    first.on_start()
    taken = asyncio.run(_pull(first))
    assert [r.payload for r in taken] == ["a", "b"]
    first.on_shutdown()  # the connection closes before the records were safe
    second = AmqpInlet(amqp_queue, url=amqp_url)
    keep = RecordingOutlet(name="keep")
    link = Link(second, keep, 1, tags="r", queue=MemoryQueue())
    link.on_start()
    link.transfer()
    link.on_shutdown()
    assert sorted(r.payload for r in keep.records) == ["a", "b"]
    assert run(_count(amqp_url, amqp_queue)) == 0


async def _pull(inlet: AmqpInlet) -> list[Record]:
    return await inlet.pull(Update(["x"], 0))


def test_an_unreachable_broker_is_a_broker_error_without_the_password() -> None:
    inlet = AmqpInlet("q", url="amqp://guest:s3cret@127.0.0.1:1/", timeout=2)
    with pytest.raises(BrokerError, match=r"AmqpInlet\(queue='q'.*amqp://guest:\*\*\*@") as caught:
        inlet.on_start()
    assert "s3cret" not in str(caught.value)
    with pytest.raises(BrokerError, match="AmqpOutlet"):
        AmqpOutlet("q", url="amqp://guest:guest@127.0.0.1:1/", timeout=2).on_start()
