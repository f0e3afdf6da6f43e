"""Issue 4 proof (a): a planner with a queued link, killed with SIGKILL at random moments.

A subprocess (tests/queue/crash_worker.py) runs an ApsPlanner moving a counting inlet to
two file outlets (one failing 20 % of the time) through a SqliteQueue. It is killed with
SIGKILL at a random moment and restarted, ``KILLS`` times; a last run drains what is
pending. Then every stored record must be in every outlet's file, with the id the queue
gave it, the inlet must have left no gap, duplicates may only come from the batch in
flight at each kill, and ``PRAGMA integrity_check`` must say ok.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
from pathlib import Path

import pytest

WORKER = Path(__file__).parent / "queue" / "crash_worker.py"
KILLS = 22

sys.path.insert(0, str(WORKER.parent))
from crash_worker import verify  # noqa: E402

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL (POSIX)")


def _run(mode: str, directory: Path) -> subprocess.Popen[str]:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    return subprocess.Popen(
        [sys.executable, str(WORKER), mode, str(directory)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
    )


def kill_repeatedly(directory: Path, kills: int, rng: random.Random) -> None:
    """Start the worker and SIGKILL it ``kills`` times at random moments."""
    for _ in range(kills):
        worker = _run("run", directory)
        try:
            if rng.random() < 0.15:
                delay = rng.uniform(0.0, 0.3)  # sometimes during start-up or recovery
            else:
                assert worker.stdout is not None
                assert worker.stdout.readline().strip() == "ready", "worker did not start"
                delay = rng.uniform(0.02, 0.4)
            try:
                worker.wait(delay)
                pytest.fail(f"worker exited by itself with {worker.returncode}")
            except subprocess.TimeoutExpired:
                pass
        finally:
            worker.send_signal(signal.SIGKILL)
            worker.wait(30)
            if worker.stdout is not None:
                worker.stdout.close()
        assert worker.returncode == -signal.SIGKILL


def drain(directory: Path) -> None:
    """Run the worker without new pulls until everything pending is delivered."""
    worker = _run("drain", directory)
    try:
        assert worker.wait(120) == 0, "drain run failed"
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait(30)
        if worker.stdout is not None:
            worker.stdout.close()


def test_sigkill_loses_nothing(tmp_path: Path) -> None:
    """Every stored record reaches both outlets after 22 SIGKILLs; the file stays sound."""
    kill_repeatedly(tmp_path, KILLS, random.Random(20240))
    drain(tmp_path)
    figures = verify(tmp_path, KILLS)
    assert figures["records"] > 100, f"too little happened to prove anything: {figures}"
