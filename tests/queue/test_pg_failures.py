"""Failure proofs of PostgresQueue with real worker processes (tests/queue/pg_worker.py).

* SIGKILL one of three workers in the middle of pushes, again and again: no stored record is
  lost, duplicates stay within the batches the killed workers had claimed, and every tick
  that was pulled was pulled by one process only.
* ``pg_ctl restart`` under running workers (a private server, never the machine's): the
  workers reconnect, log the outage once, and lose nothing.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

import psycopg
import pytest

from tests.queue import pg_server
from tests.queue.pg_worker import BATCH_SIZE

WORKER = Path(__file__).with_name("pg_worker.py")
ROOT = Path(__file__).resolve().parents[2]


class Cluster:
    """Worker processes of one pipeline (one schema), and what they wrote."""

    def __init__(self, dsn: str, schema: str, folder: Path, **options: float) -> None:
        self.dsn, self.schema, self.folder = dsn, schema, folder
        self.options = [f"--{k.replace('_', '-')}={v}" for k, v in options.items()]
        self.procs: dict[str, subprocess.Popen[str]] = {}
        self.logs: list[IO[str]] = []
        self.kills = 0

    def start(self, name: str) -> None:
        log = open(self.folder / f"stderr-{name}-{len(self.logs)}.txt", "w")  # noqa: SIM115
        self.logs.append(log)
        proc = subprocess.Popen(
            [
                sys.executable,
                str(WORKER),
                self.dsn,
                self.schema,
                str(self.folder),
                name,
                *self.options,
            ],
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        assert proc.stdout is not None
        line = proc.stdout.readline()  # blocks until 'ready' or the process ends
        assert line.strip() == "ready", f"worker {name} did not start: {self.stderr()}"
        self.procs[name] = proc

    def kill(self, name: str) -> None:
        proc = self.procs.pop(name)
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
        self._close(proc)
        self.kills += 1

    @staticmethod
    def _close(proc: subprocess.Popen[str]) -> None:
        if proc.stdout is not None:
            proc.stdout.close()

    def waiting(self) -> int:
        with psycopg.connect(self.dsn) as conn:
            row = conn.execute(
                f'SELECT count(*) FROM "{self.schema}".deliveries WHERE state < 2'.encode()
            ).fetchone()
        return int(row[0]) if row else 0

    def finish(self, wait_until: Callable[..., None]) -> None:
        """No more pulls; wait until everything stored was delivered; stop the workers."""
        (self.folder / "stop").touch()
        wait_until(lambda: self.waiting() == 0, timeout=60, message="the queue to drain")
        (self.folder / "exit").touch()
        for name, proc in list(self.procs.items()):
            assert proc.wait(60) == 0, f"worker {name} failed: {self.stderr()}"
            self._close(proc)
        self.procs.clear()

    def stop_all(self) -> None:
        for proc in self.procs.values():
            proc.kill()
            proc.wait(30)
            self._close(proc)
        self.procs.clear()
        for log in self.logs:
            log.close()

    def stderr(self) -> str:
        return "".join(p.read_text() for p in sorted(self.folder.glob("stderr-*.txt")))

    def pulls(self) -> list[float]:
        ticks = []
        for path in self.folder.glob("pulls-*.log"):
            ticks += [float(line) for line in path.read_text().split()]
        return ticks

    def pushed(self) -> list[int]:
        ids = []
        for path in self.folder.glob("pushed-*.log"):
            ids += [int(line.rsplit("-", 1)[1]) for line in path.read_text().split()]
        return ids

    def stored(self) -> list[int]:
        with psycopg.connect(self.dsn) as conn:
            rows = conn.execute(f'SELECT number FROM "{self.schema}".records'.encode())
            return [int(row[0]) for row in rows]


@pytest.fixture
def cluster_factory(tmp_path: Path) -> Iterator[Callable[..., Cluster]]:
    made: list[Cluster] = []

    def make(dsn: str, schema: str, **options: float) -> Cluster:
        cluster = Cluster(dsn, schema, tmp_path, **options)
        made.append(cluster)
        return cluster

    yield make
    for cluster in made:
        cluster.stop_all()


def check(cluster: Cluster, max_duplicates: int) -> dict[str, Any]:
    """Nothing stored is lost, duplicates are bounded, no tick was pulled twice."""
    ticks = cluster.pulls()
    twice = [tick for tick, n in Counter(ticks).items() if n > 1]
    assert not twice, f"ticks pulled more than once: {twice}"
    stored, pushed = cluster.stored(), cluster.pushed()
    lost = set(stored) - set(pushed)
    assert not lost, f"{len(lost)} stored records never pushed: {sorted(lost)[:20]}"
    duplicates = len(pushed) - len(set(pushed))
    assert duplicates <= max_duplicates
    return {"ticks": len(ticks), "stored": len(stored), "duplicates": duplicates}


@pytest.mark.slow
def test_sigkill_one_of_three_workers_mid_push_repeatedly(
    postgres_dsn: str,
    pg_schema: str,
    cluster_factory: Callable[..., Cluster],
    wait_until: Callable[..., None],
) -> None:
    cluster = cluster_factory(postgres_dsn, pg_schema, lease=2.0, push_delay=0.05)
    names = ["w1", "w2", "w3"]
    for name in names:
        cluster.start(name)
    rng = random.Random(16)
    for _ in range(6):
        time.sleep(rng.uniform(0.5, 1.2))
        victim = rng.choice(names)
        cluster.kill(victim)
        cluster.start(victim)
    cluster.finish(wait_until)
    result = check(cluster, max_duplicates=cluster.kills * BATCH_SIZE)
    print("sigkill:", cluster.kills, "kills", result)
    assert result["ticks"] >= 20 and result["stored"] >= 100


def test_database_restart_under_running_workers(
    private_postgres: pg_server.PrivateServer,
    pg_schema: str,
    cluster_factory: Callable[..., Cluster],
    wait_until: Callable[..., None],
) -> None:
    """Only against the session's private server: the machine's server is never restarted."""
    cluster = cluster_factory(private_postgres.dsn, pg_schema, lease=3.0, push_delay=0.02)
    for name in ("w1", "w2"):
        cluster.start(name)
    wait_until(lambda: len(cluster.pulls()) >= 5, timeout=30, message="pulls before restart")
    before = len(cluster.stored())
    private_postgres.pg_ctl("restart", "-m", "fast")
    wait_until(lambda: len(cluster.stored()) > before + 20, timeout=60, message="pulls after")
    cluster.finish(wait_until)
    check(cluster, max_duplicates=2 * BATCH_SIZE)
    errors = cluster.stderr()
    assert errors.count("lost the connection") == 2, errors  # once per worker
    assert errors.count("again after") == 2, errors
