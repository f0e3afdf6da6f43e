"""Issue 20 proof: a cursor-driven inlet killed with SIGKILL 50 times ingests every source item
exactly once (nothing lost, nothing enqueued twice), because its cursor is committed in the
same transaction as its records.

Each worker is a process forked by a multiprocessing forkserver that imported databay_bus once,
so a kill costs a fork, not an interpreter start.
"""

from __future__ import annotations

import multiprocessing
import random
import signal
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from cursor_crash_worker import ingested, work

KILLS = 50

pytestmark = pytest.mark.skipif(
    not hasattr(signal, "SIGKILL") or "forkserver" not in multiprocessing.get_all_start_methods(),
    reason="needs SIGKILL and the forkserver start method (POSIX)",
)


def test_sigkill_never_loses_or_repeats_a_window(tmp_path: Path) -> None:
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["databay_bus", "cursor_crash_worker"])
    rng = random.Random(20)
    progress = []
    for _ in range(KILLS):
        transfers = context.Value("i", 0)
        worker = context.Process(target=work, args=(str(tmp_path), transfers), daemon=True)
        worker.start()
        try:
            # Kill after a random number of transfers, at a random point of the next one.
            target, deadline = rng.randint(1, 12), time.monotonic() + 60
            while transfers.value < target:
                assert worker.is_alive(), f"the worker exited by itself with {worker.exitcode}"
                assert time.monotonic() < deadline, f"no progress: {transfers.value} transfers"
                time.sleep(0.001)
            time.sleep(rng.uniform(0, 0.003))
        finally:
            worker.kill()  # SIGKILL
            worker.join(30)
        assert worker.exitcode == -signal.SIGKILL
        worker.close()
        progress.append(len(ingested(tmp_path)[0]))
    payloads, cursor = ingested(tmp_path)
    assert payloads == list(range(len(payloads))), "an item was lost or ingested twice"
    assert cursor == len(payloads), "the cursor is not right after the last stored item"
    assert all(b > a for a, b in zip([0, *progress], progress, strict=False)), progress
