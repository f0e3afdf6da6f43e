"""A queued link that survives a failing outlet and a restart.

What it shows: records are stored in a SqliteQueue before any outlet sees them. In the
first "process" the warehouse outlet is down: the console outlet gets every record while
the warehouse's deliveries wait in the queue file. The queue is closed (as if the process
had ended) and opened again by a brand-new link with the same tags; the warehouse is back
up and receives everything it missed, each record with the same ``record.id``.

Run::

    python examples/durable_queue.py                 # 3 transfers per run, temp file
    python examples/durable_queue.py --transfers 5 --path /tmp/demo.db
    python examples/durable_queue.py --codec json    # force the standard library's JSON

Prints the queue's codec (by default OrjsonCodec when orjson is installed, else JsonCodec;
the same format either way), then, for each run, what each outlet received and the queue's
pending counts, e.g.::

    codec: OrjsonCodec
    run 1: console got 9 records, warehouse got 0; pending for warehouse: 9
    run 2: console got 0 records, warehouse got 9; pending for warehouse: 0
"""

from __future__ import annotations

import argparse
import logging
import tempfile
from pathlib import Path

from databay_bus import Inlet, Link, Outlet, Record, Update
from databay_bus.queue import RetryPolicy, SqliteQueue
from databay_bus.records import Codec, JsonCodec, OrjsonCodec, default_codec

__all__ = ["main"]


class ReadingsInlet(Inlet):
    """Three readings per pull."""

    def __init__(self, start: int = 0) -> None:
        super().__init__(name="sensor")
        self.next = start

    def pull(self, update: Update) -> list[dict[str, float]]:
        values = [{"n": n, "celsius": 20 + n / 10} for n in range(self.next, self.next + 3)]
        self.next += 3
        return values


class CollectingOutlet(Outlet):
    """Keeps what it receives, by record id; raises while ``down``."""

    def __init__(self, name: str, down: bool = False) -> None:
        super().__init__(name=name)
        self.down = down
        self.received: dict[str, object] = {}

    def push(self, records: list[Record], update: Update) -> None:
        if self.down:
            raise ConnectionError(f"{self.name} is unreachable")
        for record in records:
            assert record.id is not None
            self.received[record.id] = record.payload  # keyed by id: redelivery is harmless


def run(
    path: Path, codec: Codec, transfers: int, warehouse_down: bool, pull: bool, number: int
) -> None:
    queue = SqliteQueue(path, codec=codec)
    console, warehouse = CollectingOutlet("console"), CollectingOutlet("warehouse", warehouse_down)
    link = Link(
        ReadingsInlet() if pull else [],
        [console, warehouse],
        60,
        tags="readings",
        queue=queue,
        retry=RetryPolicy(max_attempts=None, initial_delay=0),
    )
    for _ in range(transfers):
        link.transfer()
    pending = queue.stats().pending("readings", "warehouse")
    print(
        f"run {number}: console got {len(console.received)} records, warehouse got "
        f"{len(warehouse.received)}; pending for warehouse: {pending}"
    )
    queue.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="A queued link surviving a restart.")
    parser.add_argument("--transfers", type=int, default=3, help="transfers in the first run")
    parser.add_argument("--path", default=None, help="queue file (default: a temp file)")
    parser.add_argument(
        "--codec",
        choices=["default", "json", "orjson"],
        default="default",
        help="how records are stored: the queue's default (orjson when installed, else the "
        "standard library), the standard library's JSON, or the same format through orjson "
        "(faster; needs the orjson extra)",
    )
    args = parser.parse_args(argv)
    makers = {"default": default_codec, "json": JsonCodec, "orjson": OrjsonCodec}
    codec: Codec = makers[args.codec]()
    print(f"codec: {type(codec).__name__}")
    logging.getLogger("databay_bus").setLevel(logging.ERROR)  # hide the expected warnings
    with tempfile.TemporaryDirectory() as temp:
        path = Path(args.path) if args.path else Path(temp) / "readings.db"
        run(path, codec, args.transfers, warehouse_down=True, pull=True, number=1)
        run(path, codec, 1, warehouse_down=False, pull=False, number=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
