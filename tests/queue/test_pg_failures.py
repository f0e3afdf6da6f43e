"""Failure proofs of PostgresQueue with real worker processes (tests/queue/pg_worker.py).

* SIGKILL one of three workers in the middle of pushes, again and again: no stored record is
  lost, duplicates stay within the batches the killed workers had claimed, and every tick
  that was pulled was pulled by one process only.
* ``pg_ctl restart`` under running workers (a private server, never the machine's): the
  workers reconnect, log the outage once, and lose nothing.
* A network partition of one worker (its own network namespace, a veth pair cut with
  ``ip link set ... down``; only namespaces this test makes): its leases expire, another
  worker delivers its records, and its late acks are refused.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import random
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

import psycopg
import pytest

from tests.queue import pg_server, pg_worker
from tests.queue.pg_worker import BATCH_SIZE

WORKER = Path(__file__).with_name("pg_worker.py")
ROOT = Path(__file__).resolve().parents[2]


_FORKSERVER = "forkserver" in multiprocessing.get_all_start_methods()


class _Forked:
    """A pg_worker forked by a multiprocessing forkserver, with the part of Popen's interface
    Cluster uses (``pid``, ``stdout``, ``send_signal``, ``kill``, ``wait``)."""

    stdout = None

    def __init__(self, argv: list[str], stderr_path: str) -> None:
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(["databay_bus", "tests.queue.pg_worker"])
        self.ready = context.Event()
        self.process = context.Process(
            target=pg_worker.forked, args=(argv, stderr_path, self.ready), daemon=True
        )
        self.process.start()
        self.pid = self.process.pid

    def send_signal(self, signum: int) -> None:
        assert self.pid is not None
        os.kill(self.pid, signum)

    def kill(self) -> None:
        self.process.kill()

    def wait(self, timeout: float | None = None) -> int:
        self.process.join(timeout)
        if self.process.exitcode is None:
            raise subprocess.TimeoutExpired(f"pg_worker {self.pid}", timeout or 0)
        return self.process.exitcode


class Cluster:
    """Worker processes of one pipeline (one schema), and what they wrote."""

    def __init__(self, dsn: str, schema: str, folder: Path, **options: float) -> None:
        self.dsn, self.schema, self.folder = dsn, schema, folder
        self.options = self.flags(**options)
        self.procs: dict[str, subprocess.Popen[str]] = {}
        self.logs: list[IO[str]] = []
        self.kills = 0

    @staticmethod
    def flags(**options: float) -> list[str]:
        return [f"--{k.replace('_', '-')}={v}" for k, v in options.items()]

    def start(
        self, name: str, prefix: tuple[str, ...] = (), dsn: str | None = None, **options: float
    ) -> None:
        """Start worker ``name``: ``prefix`` goes before its command (``ip netns exec NS``),
        ``options`` after the cluster's."""
        self._start(name, prefix, dsn, [*self.options, *self.flags(**options)])

    def _start(
        self, name: str, prefix: tuple[str, ...], dsn: str | None, options: list[str]
    ) -> None:
        log = open(self.folder / f"stderr-{name}-{len(self.logs)}.txt", "w")  # noqa: SIM115
        self.logs.append(log)
        if not prefix and _FORKSERVER:
            # Forked from a server that imported databay_bus once: a start costs a fork, not
            # an interpreter start (most of this test's time when workers are restarted).
            argv = [dsn or self.dsn, self.schema, str(self.folder), name, *options]
            forked = _Forked(argv, log.name)
            assert forked.ready.wait(60), f"worker {name} did not start: {self.stderr()}"
            self.procs[name] = forked  # type: ignore[assignment]
            return
        proc = subprocess.Popen(
            [
                *prefix,
                sys.executable,
                str(WORKER),
                dsn or self.dsn,
                self.schema,
                str(self.folder),
                name,
                *options,
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
    for _ in range(10):
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


class Proxy:
    """A TCP forwarder from ``listen`` (an address in the veth's subnet) to ``target``.

    Every socket it makes is closed by :meth:`close`, also one accepted while it closes
    (a leaked one fails the test with a ResourceWarning when its thread ends)."""

    def __init__(self, listen: tuple[str, int], target: tuple[str, int]) -> None:
        self.target = target
        self.server = socket.create_server(listen)
        self.sockets: list[socket.socket] = [self.server]
        self.closed = False
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True, name="test-proxy").start()

    def _accept(self) -> None:
        while not self.closed:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            with self._lock:
                self.sockets.append(client)
                if self.closed:
                    client.close()
                    return
            try:
                upstream = socket.create_connection(self.target, timeout=10)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                self.sockets.append(upstream)
                if self.closed:
                    upstream.close()
                    return
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)

    def close(self) -> None:
        with self._lock:
            self.closed = True
            sockets = list(self.sockets)
        with contextlib.suppress(OSError):
            self.server.shutdown(socket.SHUT_RDWR)  # wakes the accept() in progress
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.close()


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=30)


@pytest.fixture
def netns() -> Iterator[tuple[str, str, str, str]]:
    """A network namespace joined to this one by a veth pair: (ns, our veth, our address,
    its address). Skipped where ``ip netns`` is not permitted; removed afterwards."""
    tag = secrets.token_hex(3)
    ns, here, there = f"dbb{tag}", f"vb{tag}a", f"vb{tag}b"
    subnet = f"10.{200 + int(tag[:2], 16) % 50}.{int(tag[2:4], 16)}"
    ours, theirs = f"{subnet}.1", f"{subnet}.2"
    if os.geteuid() != 0 or shutil.which("ip") is None:
        pytest.skip("the partition test needs root and iproute2 (ip netns)")
    try:
        _ip("netns", "add", ns)
    except (OSError, subprocess.SubprocessError) as exc:
        pytest.skip(f"ip netns is not permitted here: {getattr(exc, 'stderr', exc)!r}")
    try:
        _ip("link", "add", here, "type", "veth", "peer", "name", there)
        _ip("link", "set", there, "netns", ns)
        _ip("addr", "add", f"{ours}/30", "dev", here)
        _ip("link", "set", here, "up")
        _ip("netns", "exec", ns, "ip", "addr", "add", f"{theirs}/30", "dev", there)
        _ip("netns", "exec", ns, "ip", "link", "set", there, "up")
        _ip("netns", "exec", ns, "ip", "link", "set", "lo", "up")
        yield ns, here, ours, theirs
    finally:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            _ip("link", "del", here)
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            _ip("netns", "del", ns)


def test_partitioned_worker_loses_its_leases_and_its_late_acks_are_refused(
    postgres_dsn: str,
    pg_schema: str,
    netns: tuple[str, str, str, str],
    cluster_factory: Callable[..., Cluster],
    wait_until: Callable[..., None],
) -> None:
    """w1 runs in its own network namespace and reaches the database through a veth pair
    and a forwarder; the pair is cut while w1 holds leases, then joined again.

    w1's pushes are held (``hold-w1``) until the pair is joined again: the cut finds it with
    leases it has not acked, and its acks come after w2 delivered those records. (Timed
    by a slow push instead, an ack landing just before the cut left nothing held, or
    nothing to ack late, now and then on a loaded machine.)"""
    ns, veth, ours, _ = netns
    info = psycopg.conninfo.conninfo_to_dict(postgres_dsn)
    proxy = Proxy((ours, 0), (str(info.get("host", "127.0.0.1")), int(info.get("port", 5432))))
    try:
        port = proxy.server.getsockname()[1]
        cut_off_dsn = psycopg.conninfo.make_conninfo(
            postgres_dsn,
            host=ours,
            port=port,
            tcp_user_timeout=2000,
            keepalives_idle=1,
            keepalives_interval=1,
            keepalives_count=2,
        )
        cluster = cluster_factory(postgres_dsn, pg_schema, lease=2.0, push_delay=0.02)
        cluster.start("w2")
        hold = cluster.folder / "hold-w1"
        hold.touch()
        cluster.start("w1", prefix=("ip", "netns", "exec", ns), dsn=cut_off_dsn, connect_timeout=2)
        w1 = cluster.procs["w1"].pid

        def held_by_w1() -> list[int]:
            with psycopg.connect(postgres_dsn) as conn:
                rows = conn.execute(
                    f'SELECT number FROM "{pg_schema}".deliveries WHERE state < 2 AND '
                    f"lease_until IS NOT NULL AND lease_owner LIKE '%:{w1}:%'".encode()
                ).fetchall()
            return [int(row[0]) for row in rows]

        wait_until(lambda: held_by_w1(), timeout=30, message="w1 to hold leases")
        _ip("link", "set", veth, "down")  # the partition
        held = held_by_w1()
        assert held

        def delivered_by_others() -> bool:
            with psycopg.connect(postgres_dsn) as conn:
                row = conn.execute(
                    f'SELECT count(*) FROM "{pg_schema}".deliveries WHERE number = ANY(%s) '
                    "AND state = 2".encode(),
                    [held],
                ).fetchone()
            return bool(row and row[0] == len(held))

        wait_until(delivered_by_others, timeout=30, message="w2 to take over w1's leases")
        _ip("link", "set", veth, "up")  # the partition heals
        hold.unlink()  # w1's push ends; it acks records w2 delivered
        wait_until(
            lambda: "late ack refused" in cluster.stderr(), timeout=60, message="w1's late ack"
        )
        cluster.finish(wait_until)
        check(cluster, max_duplicates=2 * BATCH_SIZE)
    finally:
        proxy.close()


def test_a_detached_watcher_leaves_no_child_running(tmp_path: Path) -> None:
    """The private server's watcher outlives the session by design; the session must not hold
    it as a running child (it warned 'ResourceWarning: subprocess ... is still running' at
    the end of every run that started a private server)."""
    marker = tmp_path / "ran"
    code = f"from tests.queue.pg_server import detach; detach('sleep 0.2; touch {marker}')"
    done = subprocess.run(
        [sys.executable, "-X", "dev", "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0 and "ResourceWarning" not in done.stderr, done.stderr
    deadline = time.monotonic() + 30
    while not marker.exists():  # the script still ran, after its starter had gone
        assert time.monotonic() < deadline, "the detached script never ran"
        time.sleep(0.05)
