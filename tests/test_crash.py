"""Issue 4 proof (a): a planner with a queued link, killed with SIGKILL at random moments.

A worker process (tests/queue/crash_worker.py) runs an ApsPlanner moving a counting inlet to
two file outlets (one failing 20 % of the time) through a SqliteQueue. It is killed with
SIGKILL at a random moment and restarted, ``KILLS`` times; a last run drains what is
pending. Then every stored record must be in every outlet's file, with the id the queue
gave it, the inlet must have left no gap, duplicates may only come from the batch in
flight at each kill, and ``PRAGMA integrity_check`` must say ok.

Each worker is forked by a multiprocessing forkserver that imported databay_bus once, so a
kill costs a fork, not an interpreter start (the worker's own start-up, which a kill may
still hit, is opening and recovering the queue and starting the planner).
"""

from __future__ import annotations

import multiprocessing
import random
import signal
import sys
from multiprocessing.context import ForkServerContext
from pathlib import Path

import pytest

WORKER = Path(__file__).parent / "queue" / "crash_worker.py"
KILLS = 22

sys.path.insert(0, str(WORKER.parent))
from crash_worker import main, verify  # noqa: E402

pytestmark = pytest.mark.skipif(
    not hasattr(signal, "SIGKILL") or "forkserver" not in multiprocessing.get_all_start_methods(),
    reason="needs SIGKILL and the forkserver start method (POSIX)",
)


def _context() -> ForkServerContext:
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["databay_bus", "crash_worker"])
    return context


def kill_repeatedly(directory: Path, kills: int, rng: random.Random) -> None:
    """Start the worker and SIGKILL it ``kills`` times at random moments."""
    context = _context()
    for _ in range(kills):
        ready = context.Event()
        worker = context.Process(target=main, args=(["run", str(directory)], ready), daemon=True)
        worker.start()
        try:
            if rng.random() < 0.15:
                delay = rng.uniform(0.0, 0.3)  # sometimes during start-up or recovery
            else:
                assert ready.wait(60), "worker did not start"
                delay = rng.uniform(0.02, 0.4)
            worker.join(delay)
            assert worker.exitcode is None, f"worker exited by itself with {worker.exitcode}"
        finally:
            worker.kill()  # SIGKILL
            worker.join(30)
        assert worker.exitcode == -signal.SIGKILL
        worker.close()


def drain(directory: Path) -> None:
    """Run the worker without new pulls until everything pending is delivered."""
    worker = _context().Process(target=main, args=(["drain", str(directory)],), daemon=True)
    worker.start()
    try:
        worker.join(120)
        assert worker.exitcode == 0, f"drain run failed: {worker.exitcode}"
    finally:
        if worker.exitcode is None:
            worker.kill()
            worker.join(30)
        worker.close()


def test_sigkill_loses_nothing(tmp_path: Path) -> None:
    """Every stored record reaches both outlets after 22 SIGKILLs; the file stays sound."""
    kill_repeatedly(tmp_path, KILLS, random.Random(20240))
    drain(tmp_path)
    figures = verify(tmp_path, KILLS)
    assert figures["records"] > 100, f"too little happened to prove anything: {figures}"
