"""Redis Streams in and out: entries acknowledged only once their records are stored.

What it shows: a producer link writes readings to a Redis stream with ``RedisStreamOutlet``;
a consumer link reads them through a consumer group with ``RedisStreamInlet`` into a
SqliteQueue and an outlet. The first consumer transfer fails before the records are stored
(a processor raises), so nothing is acknowledged: the entries stay pending. The next transfer
reads them again and acknowledges them once they are in the queue (``XACK`` in
``on_records_safe``). Needs the ``redis`` extra and a Redis server (``--redis-url``, else
``DATABAY_BUS_REDIS_URL``, else redis://127.0.0.1:6379/0); without one it says so and exits 0.

Run::

    python examples/redis_streams.py                  # 3 readings per producer transfer
    python examples/redis_streams.py --transfers 2 --redis-url redis://127.0.0.1:6379/0

Prints what happens at each step, e.g.::

    produced 6 entries on stream databay_bus_example_...
    consumer transfer 1 failed (the store is down): 6 entries pending, none acknowledged
    consumer transfer 2: 6 records stored and delivered; pending entries: 0
"""

from __future__ import annotations

import argparse
import logging
import os
import tempfile
import uuid
from pathlib import Path

from databay_bus import Inlet, Link, Outlet, Record, Update
from databay_bus.queue import SqliteQueue

__all__ = ["main"]


class Readings(Inlet):
    """Three readings per pull."""

    def __init__(self) -> None:
        super().__init__(name="sensor")
        self.next = 0

    def pull(self, update: Update) -> list[dict[str, object]]:
        values = [{"n": n, "celsius": 20 + n / 10} for n in range(self.next, self.next + 3)]
        self.next += 3
        return values


class Collector(Outlet):
    def __init__(self) -> None:
        super().__init__(name="collector")
        self.records: list[Record] = []

    def push(self, records: list[Record], update: Update) -> None:
        self.records.extend(records)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Redis Streams in and out.")
    parser.add_argument("--transfers", type=int, default=2, help="producer transfers")
    parser.add_argument(
        "--redis-url",
        default=os.environ.get("DATABAY_BUS_REDIS_URL", "redis://127.0.0.1:6379/0"),
    )
    args = parser.parse_args(argv)
    logging.getLogger("databay_bus").setLevel(logging.CRITICAL)  # the failure is on purpose
    try:
        import redis

        from databay_bus.inlets import RedisStreamInlet
        from databay_bus.outlets import RedisStreamOutlet

        redis.Redis.from_url(args.redis_url, socket_connect_timeout=3).ping()
    except Exception as exc:
        print(f"no Redis server reachable at {args.redis_url} ({type(exc).__name__}); skipped")
        return 0
    stream = f"databay_bus_example_{uuid.uuid4().hex[:8]}"
    client = redis.Redis.from_url(args.redis_url, decode_responses=True)
    producer = Link(Readings(), RedisStreamOutlet(stream, url=args.redis_url), 60, tags="produce")
    store_down = {"on": True}

    def store_check(records: list[Record]) -> list[Record]:
        if store_down["on"]:
            raise ConnectionError("the store is down")
        return records

    collector = Collector()
    inlet = RedisStreamInlet(stream, "example", consumer="example-1", url=args.redis_url)
    with tempfile.TemporaryDirectory() as temp:
        queue = SqliteQueue(Path(temp) / "queue.db")
        consumer = Link(
            inlet, collector, 60, tags="consume", queue=queue, processors=[store_check]
        )
        try:
            producer.on_start()
            for _ in range(args.transfers):
                producer.transfer()
            print(f"produced {client.xlen(stream)} entries on stream {stream}")
            consumer.on_start()
            try:
                consumer.transfer()
            except ConnectionError as exc:
                pending = client.xpending(stream, "example")["pending"]
                print(
                    f"consumer transfer 1 failed ({exc}): {pending} entries pending, "
                    f"none acknowledged"
                )
            store_down["on"] = False
            consumer.transfer()
            pending = client.xpending(stream, "example")["pending"]
            print(
                f"consumer transfer 2: {len(collector.records)} records stored and delivered; "
                f"pending entries: {pending}"
            )
        finally:
            consumer.on_shutdown()
            producer.on_shutdown()
            queue.close()
            client.delete(stream)
            client.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
