"""Issue 20 proof for AmqpInlet: killed with SIGKILL at random points, every message still reaches
the outlet (nothing is acknowledged to the broker before its record is stored), at least once.

Workers are forked by a multiprocessing forkserver (databay_bus imported once), as in
tests/cursors/test_cursors_crash.py.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import random
import signal
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from amqp_crash_worker import link_for, work

KILLS = 15
MESSAGES = 300

pytestmark = pytest.mark.skipif(
    not hasattr(signal, "SIGKILL") or "forkserver" not in multiprocessing.get_all_start_methods(),
    reason="needs SIGKILL and the forkserver start method (POSIX)",
)


async def _publish(url: str, queue: str) -> None:
    import aio_pika

    connection = await aio_pika.connect(url, timeout=5)
    channel = await connection.channel()
    await channel.declare_queue(queue, durable=True)
    for n in range(MESSAGES):
        body = json.dumps({"id": f"m-{n}"}).encode()
        await channel.default_exchange.publish(aio_pika.Message(body), routing_key=queue)
    await connection.close()


def delivered(directory: Path) -> list[str]:
    out = directory / "out.txt"
    return out.read_text(encoding="utf-8").split() if out.exists() else []


def test_sigkill_never_loses_a_message(tmp_path: Path, amqp_url: str, amqp_queue: str) -> None:
    asyncio.run(_publish(amqp_url, amqp_queue))
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["databay_bus", "amqp_crash_worker"])
    rng = random.Random(5)
    for _ in range(KILLS):
        transfers = context.Value("i", 0)
        worker = context.Process(
            target=work, args=(str(tmp_path), amqp_url, amqp_queue, transfers), daemon=True
        )
        worker.start()
        try:
            target, deadline = rng.randint(1, 4), time.monotonic() + 60
            while transfers.value < target:
                assert worker.is_alive(), f"the worker exited by itself with {worker.exitcode}"
                assert time.monotonic() < deadline, "the worker made no progress"
                time.sleep(0.002)
            time.sleep(rng.uniform(0, 0.01))
        finally:
            worker.kill()
            worker.join(30)
        worker.close()
    # A last, unkilled run takes what is left (the broker requeued what the dead held).
    link, queue = link_for(tmp_path, amqp_url, amqp_queue)
    link.on_start()
    try:
        deadline = time.monotonic() + 60
        while len(set(delivered(tmp_path))) < MESSAGES and time.monotonic() < deadline:
            link.transfer()
    finally:
        link.on_shutdown()
        queue.close()
    ids = delivered(tmp_path)
    assert set(ids) == {f"m-{n}" for n in range(MESSAGES)}, "a message was lost"
    assert len(ids) >= MESSAGES
