"""Finding a PostgreSQL server for the tests, or starting a private one.

Order: ``DATABAY_BUS_POSTGRES_DSN``; else the machine's server on 127.0.0.1:5432 (user
postgres, database test, trust); else a private server started from the installed binaries
in a temporary directory (``initdb`` + ``pg_ctl``, through ``runuser -u postgres`` when
running as root, a free port, the socket in the directory); else none, with the reason.
``DATABAY_BUS_REQUIRE_POSTGRES=1`` turns "none" into a test failure instead of a skip.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import psycopg

__all__ = ["LOCAL_DSN", "PrivateServer", "detach", "find_binaries", "reachable", "required"]

LOCAL_DSN = "postgresql://postgres@127.0.0.1:5432/test"


def required() -> bool:
    """True when a missing PostgreSQL must fail the tests (CI sets it)."""
    return os.environ.get("DATABAY_BUS_REQUIRE_POSTGRES", "") not in ("", "0")


def reachable(dsn: str) -> str | None:
    """None if ``dsn`` accepts a connection within 3 s, else why not."""
    try:
        psycopg.connect(dsn, connect_timeout=3).close()
    except psycopg.Error as exc:
        return " ".join(str(exc).split())
    return None


def find_binaries() -> Path | None:
    """The directory holding initdb and pg_ctl: pg_config --bindir, Debian's, or PATH."""
    candidates: list[str] = []
    pg_config = shutil.which("pg_config")
    if pg_config:
        try:
            out = subprocess.run(
                [pg_config, "--bindir"], capture_output=True, text=True, timeout=10, check=True
            )
            candidates.append(out.stdout.strip())
        except (OSError, subprocess.SubprocessError):
            pass
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)
    initdb = shutil.which("initdb")
    if initdb:
        candidates.append(str(Path(os.path.realpath(initdb)).parent))
    for directory in candidates:
        path = Path(directory)
        if (path / "initdb").exists() and (path / "pg_ctl").exists():
            return path
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def detach(script: str) -> None:
    """Run the shell ``script`` in the background, in a session of its own, and return once
    the shell that started it has exited: no child of ours is left running (a Popen still
    running when the session ends warns ``ResourceWarning: subprocess ... is still running``)."""
    subprocess.run(
        ["sh", "-c", f"({script}) </dev/null >/dev/null 2>&1 &"],
        start_new_session=True,
        check=True,
        timeout=30,
    )


class PrivateServer:
    """A throw-away PostgreSQL cluster in a temporary directory (fsync off, trust auth)."""

    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.dir = Path(tempfile.mkdtemp(prefix="databay_bus_pg_"))
        self.data = self.dir / "data"
        self.port = _free_port()
        self.dsn = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        self._as_root = os.geteuid() == 0

    def _cmd(self, *args: str) -> list[str]:
        if self._as_root:
            return ["runuser", "-u", "postgres", "--", *args]
        return list(args)

    def _run(self, *args: str, timeout: float = 120) -> None:
        subprocess.run(
            self._cmd(*args), check=True, capture_output=True, timeout=timeout, cwd=self.dir
        )

    def start(self) -> None:
        """initdb and start; raises CalledProcessError with the server's words on failure."""
        if self._as_root:
            shutil.chown(self.dir, "postgres", "postgres")
        self._run(
            str(self.bindir / "initdb"),
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
        )
        self.pg_ctl("start")
        self._watch(os.getpid())

    def _watch(self, owner: int) -> None:
        """A detached shell that stops the server and removes its directory once ``owner``
        (the test session) has exited, however it ended (killed by a timeout, SIGKILL):
        a private server never outlives the session that started it."""
        stop = " ".join(
            self._cmd(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop")
        )
        script = (
            f"while kill -0 {owner} 2>/dev/null; do sleep 2; done; "
            f"{stop} >/dev/null 2>&1; rm -rf {self.dir}"
        )
        detach(script)

    def pg_ctl(self, action: str, *extra: str) -> None:
        """Run ``pg_ctl action`` (start, stop, restart) on this cluster, waiting for it."""
        options = f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.dir} -c fsync=off"
        args = [str(self.bindir / "pg_ctl"), "-D", str(self.data), "-l", str(self.dir / "log")]
        if action in ("start", "restart"):
            args += ["-o", options]
        self._run(*args, "-w", "-t", "60", *extra, action)

    def stop(self) -> None:
        """Stop at once (``-m immediate``) and remove the directory."""
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            self.pg_ctl("stop", "-m", "immediate")
        shutil.rmtree(self.dir, ignore_errors=True)
