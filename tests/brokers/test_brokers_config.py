"""Broker nodes and the tail mode named in a pipeline file (nothing connects before start)."""

from __future__ import annotations

from databay_bus.config import loads
from databay_bus.inlets import AmqpInlet, FileInlet, FileInletMode, RedisStreamInlet
from databay_bus.outlets import AmqpOutlet, RedisStreamOutlet


def test_short_names_build_broker_nodes_without_connecting(tmp_path: object) -> None:
    pipeline = loads(
        """
        [queue]
        kind = "memory"

        [[links]]
        tags = ["brokers"]
        interval = "5s"
        outlets = [
            { type = "amqp", routing_key = "out", name = "amqp" },
            { type = "redis_stream", stream = "copy", maxlen = 1000, name = "redis" },
        ]

        [[links.inlets]]
        type = "redis_stream"
        stream = "events"
        group = "g"
        consumer = "c1"
        url = "redis://:${REDIS_PASSWORD}@127.0.0.1:1/0"
        name = "events"

        [[links.inlets]]
        type = "amqp"
        queue = "orders"
        count = 50
        name = "orders"

        [[links.inlets]]
        type = "file"
        filepath = "app.log"
        read_mode = "tail"
        max_lines = 10
        name = "log"
        """,
        env={"REDIS_PASSWORD": "pw-secret"},
    )
    redis_in, amqp_in, tail = pipeline.links[0].inlets
    assert isinstance(redis_in, RedisStreamInlet) and redis_in.consumer == "c1"
    assert isinstance(amqp_in, AmqpInlet) and amqp_in.count == 50
    assert isinstance(tail, FileInlet) and tail.read_mode is FileInletMode.TAIL
    amqp_out, redis_out = pipeline.links[0].outlets
    assert isinstance(amqp_out, AmqpOutlet) and isinstance(redis_out, RedisStreamOutlet)
    shown = pipeline.describe()
    assert "pw-secret" not in shown and "redis://:***@127.0.0.1:1/0" in shown
