"""PostgresQueue: a RecordQueue in a PostgreSQL schema, shared by processes on any hosts.

Storage (see ``_pg_schema.py``): one ``records`` row per record and one ``deliveries`` row
per record and outlet. Each call is one transaction on a pooled connection (psycopg 3,
``psycopg_pool``); a commit is durable as the server's ``synchronous_commit`` says.

Several processes, one queue. ``due()`` *claims* what it returns: the rows are picked with
``FOR UPDATE SKIP LOCKED`` (two processes never wait for, nor get, the same rows) and leased
to this queue's node until ``now() + lease`` on the **database clock**. A background keeper
renews this node's leases every ``renew_interval`` while the process lives, and takes back
(the *reaper*, a statement of its own, never part of the claim) leases that expired, every
``reap_interval``; those records are then due for any process. ``ack`` and ``fail`` are
fenced on the lease: they change only rows never claimed or claimed by this node, so a
process that lost its lease (killed, cut off from the database) cannot settle what another
process now delivers. Asking ``due()`` again from the same node returns its own leased
rows again, so within a process the contract of :class:`RecordQueue` holds unchanged.

The keeper never runs while a claim, ack or fail of its own process does (``_Gate``): a
claim skips locked rows, so a renewal holding this node's rows made ``due()`` pass over
them, and a renewal that had waited for a ``fail`` kept that row locked to the end of its
statement (PostgreSQL locks the newest version before re-checking the WHERE) although it no
longer matched, so the claim right after the fail skipped a free, due row.

Retry times, enqueue times and retention use the queue's clock (the hosts' clocks, which
should agree to within seconds); leases and node heartbeats use the database's ``now()``.

Ticks: :meth:`claim_tick` lets exactly one process run each scheduled tick of a link (a
per-link high-water mark of the scheduled fire time, advanced by a conditional UPDATE).

Connection loss: a call whose connection fails (server restarted, network gone) is retried
on a new connection with exponential backoff (0.1 s doubling to 5 s), logged once as a
WARNING when it starts and once when it ends; after ``reconnect_timeout`` seconds (None:
never) it raises :class:`~databay_bus.errors.QueueConnectionError`. An enqueue whose commit
was cut off may have been stored: retrying it can store its records twice (at least once).
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import re
import secrets
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from databay_bus._clock import Clock
from databay_bus._validation import as_bool
from databay_bus.errors import (
    ArgumentTypeError,
    ConfigurationError,
    CursorConflictError,
    QueueConnectionError,
    QueueDependencyError,
    QueueError,
    QueuePermissionError,
    QueueSchemaError,
    describe,
)
from databay_bus.queue._pg_schema import SCHEMA_VERSION, SCRIPTS
from databay_bus.queue.base import (
    DeliveryState,
    OutletStats,
    RecordQueue,
    StoredRun,
    new_queue_id,
)
from databay_bus.queue.cursors import CursorWrite, check_version
from databay_bus.records.codecs import Codec

try:
    import psycopg
    import psycopg_pool
    from psycopg import errors as pg_errors
    from psycopg import sql
except ImportError:  # pragma: no cover - exercised by monkeypatching in the tests
    psycopg = None  # type: ignore[assignment]

__all__ = ["NodeInfo", "PostgresQueue", "mask_dsn"]

_LOGGER = logging.getLogger(__name__)

_PENDING = DeliveryState.PENDING.value
_FAILED = DeliveryState.FAILED.value
_DELIVERED = DeliveryState.DELIVERED.value
_DEAD = DeliveryState.DEAD.value

_FIRST_DELAY = 0.1  # seconds before the first retry of a call whose connection failed
_MAX_DELAY = 5.0  # the longest pause between retries
_PURGE_ROWS = 10_000  # deliveries deleted per purge statement
_QUIET_AFTER_RECOVERY = 2.0  # seconds after a recovery in which new failures are not logged
_REAPED = "~"
_WAKEUPS = ("listen", "poll")  # lease_owner of a delivery whose lease expired and was taken back

T = TypeVar("T")

_URL_PASSWORD = re.compile(r"(://[^:/@?#]*:)([^@/?#]*)(@)")
_KV_PASSWORD = re.compile(r"(password\s*=\s*)('(?:[^'\\]|\\.)*'|[^\s&]*)", re.IGNORECASE)


def mask_dsn(dsn: str) -> str:
    """``dsn`` with its password replaced by ``***`` (URL and ``key=value`` forms)."""
    masked = _URL_PASSWORD.sub(r"\1***\3", dsn)
    return _KV_PASSWORD.sub(r"\1***", masked)


@dataclass(frozen=True)
class NodeInfo:
    """A process that uses the queue, as the node registry shows it.

    ``alive`` is False once its last heartbeat is older than the queue's ``node_timeout``.
    Times are the database's.
    """

    node: str
    host: str
    pid: int
    started_at: datetime
    seen_at: datetime
    alive: bool


@dataclass(frozen=True)
class _Timings:
    """PostgresQueue's timings in seconds, as ``check_arguments`` accepted them."""

    lease: float
    renew_interval: float
    reap_interval: float
    node_timeout: float
    connect_timeout: float
    reconnect_timeout: float | None
    poll_interval: float


class PostgresQueue(RecordQueue):
    """A durable record queue in a PostgreSQL schema, shared by any number of processes.

    Args:
        dsn: a libpq connection string, ``postgresql://user:password@host:port/db`` or
            ``host=... dbname=...``. Errors name it with the password masked.
        schema: the schema holding the queue's tables; created (with its tables) if
            missing. Pipelines that must not share records use different schemas.
        lease: seconds a claimed delivery stays leased to this process without renewal.
        renew_interval: seconds between renewals of this process's leases (and its
            heartbeat in the node registry); must be shorter than ``lease``.
        reap_interval: seconds between takings-back of expired leases.
        node_timeout: seconds without a heartbeat after which a node counts as dead.
        max_connections: pooled connections at most (one per thread using the queue).
        connect_timeout: seconds to wait for a connection.
        reconnect_timeout: seconds a call retries a lost connection before raising
            :class:`QueueConnectionError`; None (default) retries until the queue is closed.
        wakeups: how :meth:`watch` learns of new records: ``"listen"`` (LISTEN/NOTIFY, at
            once, plus a poll every ``poll_interval``) or ``"poll"`` (polling only, for
            connection poolers such as pgBouncer in transaction mode, which break LISTEN).
        poll_interval: seconds between polls for due, unclaimed deliveries.
        codec, clock, retention, purge_interval: as for
            :class:`~databay_bus.queue.RecordQueue`.
        create_schema: False refuses (``QueueSchemaError``) a schema that holds no queue
            yet instead of creating it; the CLI opens queues so, to inspect a mistyped
            schema without making it.

    Raises:
        QueueDependencyError: psycopg is not installed (``pip install 'databay_bus[postgres]'``).
        QueueConnectionError: a malformed DSN, or the server cannot be reached or refuses.
        QueuePermissionError: the user may not create or use the schema.
        QueueSchemaError: the schema was written by a newer databay_bus, or holds other tables.
        ConfigurationError: a bad argument (an ``ArgumentTypeError``, also a ``TypeError``,
            for one of the wrong type).
    """

    def __init__(
        self,
        dsn: str,
        *,
        schema: str = "databay_bus",
        lease: float | timedelta = 30.0,
        renew_interval: float | timedelta = 10.0,
        reap_interval: float | timedelta = 5.0,
        node_timeout: float | timedelta = 30.0,
        max_connections: int = 10,
        connect_timeout: float | timedelta = 10.0,
        reconnect_timeout: float | timedelta | None = None,
        wakeups: str = "listen",
        poll_interval: float | timedelta = 5.0,
        codec: Codec | None = None,
        clock: Clock | None = None,
        retention: float | timedelta | None = 86400.0,
        purge_interval: float | timedelta | None = 60.0,
        create_schema: bool = True,
    ) -> None:
        super().__init__(
            codec=codec, clock=clock, retention=retention, purge_interval=purge_interval
        )
        self._create_schema = as_bool(create_schema, "create_schema", "PostgresQueue")
        timings = self.check_arguments(
            dsn,
            schema=schema,
            lease=lease,
            renew_interval=renew_interval,
            reap_interval=reap_interval,
            node_timeout=node_timeout,
            max_connections=max_connections,
            connect_timeout=connect_timeout,
            reconnect_timeout=reconnect_timeout,
            wakeups=wakeups,
            poll_interval=poll_interval,
        )
        if psycopg is None:
            raise QueueDependencyError("psycopg", "postgres", "PostgresQueue")
        self.dsn = mask_dsn(dsn)
        self.schema = schema
        self.lease = timings.lease
        self.renew_interval = timings.renew_interval
        self.reap_interval = timings.reap_interval
        self.node_timeout = timings.node_timeout
        self.connect_timeout = timings.connect_timeout
        self.reconnect_timeout = timings.reconnect_timeout
        self.wakeups = wakeups
        self.poll_interval = timings.poll_interval
        self._channel = f"databay_bus:{schema}"[:63]
        self._watchers: list[Callable[[str], None]] = []
        self._listener: threading.Thread | None = None
        self._listening = threading.Event()
        self.node = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"
        self._dsn = dsn
        self._closed = False
        self._closing = threading.Event()
        self._outage_lock = threading.Lock()
        self._outage_since: float | None = None
        self._outage_logged = False
        self._regained_at = -math.inf
        self._keeper: threading.Thread | None = None
        self._keeper_lock = threading.Lock()
        self._gate = _Gate()
        self._id = self._prepare()
        self._q = _Statements(self._quoted)
        self._pool: psycopg_pool.ConnectionPool[Any] = psycopg_pool.ConnectionPool(
            dsn,
            min_size=1,
            max_size=max_connections,
            kwargs=self._connect_kwargs(),
            open=False,
            timeout=self.connect_timeout,
            name=f"databay_bus:{self.schema}",
        )
        try:
            self._pool.open(wait=True, timeout=self.connect_timeout)
        except psycopg.Error as exc:
            self._pool.close()
            raise self._connection_error(exc) from None

    @staticmethod
    def check_arguments(
        dsn: str,
        *,
        schema: str = "databay_bus",
        lease: float | timedelta = 30.0,
        renew_interval: float | timedelta = 10.0,
        reap_interval: float | timedelta = 5.0,
        node_timeout: float | timedelta = 30.0,
        max_connections: int = 10,
        connect_timeout: float | timedelta = 10.0,
        reconnect_timeout: float | timedelta | None = None,
        wakeups: str = "listen",
        poll_interval: float | timedelta = 5.0,
    ) -> _Timings:
        """Raise ConfigurationError (ArgumentTypeError for a wrong type) for an argument the
        constructor would refuse, without connecting (``databay-bus validate`` can check a
        pipeline file with it); return the timings in seconds."""
        owner = "PostgresQueue"
        if not isinstance(dsn, str):
            raise ArgumentTypeError(
                f"{owner}: dsn must be a connection string, got {describe(dsn)}"
            )
        if not dsn.strip():
            raise ConfigurationError(
                f"{owner}: dsn must be a connection string, got {describe(mask_dsn(dsn))}"
            )
        if not isinstance(schema, str):
            raise ArgumentTypeError(
                f"{owner}: schema must be a name of 1 to 63 bytes, got {describe(schema)}"
            )
        if not schema or len(schema.encode()) > 63:
            raise ConfigurationError(
                f"{owner}: schema must be a name of 1 to 63 bytes, got {describe(schema)}"
            )
        timings: dict[str, float | None] = {}
        for name, value in (
            ("lease", lease),
            ("renew_interval", renew_interval),
            ("reap_interval", reap_interval),
            ("node_timeout", node_timeout),
            ("connect_timeout", connect_timeout),
            ("reconnect_timeout", reconnect_timeout),
            ("poll_interval", poll_interval),
        ):
            optional = name == "reconnect_timeout"
            if value is None and optional:
                timings[name] = None
                continue
            expected = "seconds > 0 or a timedelta" + (" or None" if optional else "")
            seconds = value.total_seconds() if isinstance(value, timedelta) else value
            if isinstance(seconds, bool) or not isinstance(seconds, (int, float)):
                raise ArgumentTypeError(
                    f"{owner}: {name} must be {expected}, got {describe(value)}"
                )
            if not math.isfinite(seconds) or seconds <= 0:
                raise ConfigurationError(
                    f"{owner}: {name} must be {expected}, got {describe(value)}"
                )
            timings[name] = float(seconds)
        checked = _Timings(**timings)  # type: ignore[arg-type]
        if checked.renew_interval >= checked.lease:
            raise ConfigurationError(
                f"{owner}: renew_interval ({renew_interval}) must be shorter than lease "
                f"({lease}), or leases expire while their pushes run"
            )
        if wakeups not in _WAKEUPS:
            error = ConfigurationError if isinstance(wakeups, str) else ArgumentTypeError
            raise error(f"{owner}: wakeups must be 'listen' or 'poll', got {describe(wakeups)}")
        if isinstance(max_connections, bool) or not isinstance(max_connections, int):
            raise ArgumentTypeError(
                f"{owner}: max_connections must be an int, got {describe(max_connections)}"
            )
        if max_connections < 1:
            raise ConfigurationError(
                f"{owner}: max_connections must be >= 1, got {describe(max_connections)}"
            )
        return checked

    @property
    def queue_id(self) -> str:
        return self._id

    # -- connections ------------------------------------------------------------------------

    def _connection_error(self, exc: BaseException) -> QueueConnectionError:
        cause = self._clean(exc)
        return QueueConnectionError(f"PostgresQueue: cannot connect to {self.dsn!r}: {cause}")

    def _clean(self, exc: BaseException) -> str:
        """The driver's message, one line, without the password."""
        text = " ".join(str(exc).split()) or type(exc).__name__
        password = self._password()
        if password:
            text = text.replace(password, "***")
        return mask_dsn(text)

    def _password(self) -> str | None:
        try:
            return psycopg.conninfo.conninfo_to_dict(self._dsn).get("password")  # type: ignore[return-value]
        except psycopg.Error:
            return None

    def _connect_kwargs(self) -> dict[str, Any]:
        """Connection options: autocommit (each call opens its own transaction), the connect
        timeout, and an ``application_name`` naming the node unless the DSN names one."""
        kwargs: dict[str, Any] = {
            "autocommit": True,
            "connect_timeout": max(1, round(self.connect_timeout)),
        }
        try:
            named = "application_name" in psycopg.conninfo.conninfo_to_dict(self._dsn)
        except psycopg.Error:
            named = False
        if not named:
            kwargs["application_name"] = f"databay_bus {self.node}"[:63]
        return kwargs

    def _prepare(self) -> str:
        """Connect once (errors here are precise), create or migrate the schema, read the id."""
        try:
            conn = psycopg.connect(self._dsn, **self._connect_kwargs())
        except psycopg.Error as exc:
            raise self._connection_error(exc) from None
        try:
            self._quoted = sql.Identifier(self.schema).as_string(conn)
            with conn.transaction():
                return self._migrate(conn)
        except pg_errors.InsufficientPrivilege as exc:
            raise QueuePermissionError(
                f"PostgresQueue: the user of {self.dsn!r} may not create or use schema "
                f"{self.schema!r}: {self._clean(exc)}"
            ) from None
        except QueueError:
            raise
        except psycopg.OperationalError as exc:
            raise self._connection_error(exc) from None
        except psycopg.Error as exc:
            raise QueueError(
                f"PostgresQueue: preparing schema {self.schema!r} on {self.dsn!r} failed: "
                f"{self._clean(exc)}"
            ) from None
        finally:
            conn.close()

    def _refuse_to_create(self) -> None:
        if not self._create_schema:
            raise QueueSchemaError(
                f"PostgresQueue: no databay_bus queue in schema {self.schema!r} on {self.dsn!r} "
                f"(nothing was created: create_schema=False)"
            )

    def _migrate(self, conn: psycopg.Connection[Any]) -> str:
        s = self._quoted
        # One process at a time creates or migrates a schema; the others then see it done.
        conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [f"databay_bus:{self.schema}"])
        exists = conn.execute(
            "SELECT 1 FROM pg_namespace WHERE nspname = %s", [self.schema]
        ).fetchone()
        version = 0
        if exists is None:
            self._refuse_to_create()
            conn.execute(f"CREATE SCHEMA {s}")
        else:
            meta = conn.execute("SELECT to_regclass(%s)", [f"{s}.meta"]).fetchone()
            if meta is not None and meta[0] is not None:
                row = conn.execute(
                    f"SELECT value FROM {s}.meta WHERE key = 'schema_version'"
                ).fetchone()
                version = int(row[0]) if row else 0
            else:
                tables = conn.execute(
                    "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                    "WHERE n.nspname = %s AND c.relkind IN ('r', 'p', 'v')",
                    [self.schema],
                ).fetchone()
                if tables and tables[0]:
                    raise QueueSchemaError(
                        f"PostgresQueue: schema {self.schema!r} on {self.dsn!r} holds tables but "
                        f"no databay_bus queue; choose another schema="
                    )
        if version == 0:
            self._refuse_to_create()  # an empty schema: the tables would be created
        if version > SCHEMA_VERSION:
            raise QueueSchemaError(
                f"PostgresQueue: schema {self.schema!r} on {self.dsn!r} has version {version}, "
                f"written by a newer databay_bus (this one knows up to {SCHEMA_VERSION}); "
                f"upgrade databay_bus"
            )
        for number in range(version + 1, SCHEMA_VERSION + 1):
            conn.execute(SCRIPTS[number - 1].replace("{s}", s).encode())
            if number == 1:
                conn.execute(
                    f"INSERT INTO {s}.meta VALUES ('queue_id', %s), ('schema_version', '1')",
                    [new_queue_id()],
                )
            conn.execute(
                f"UPDATE {s}.meta SET value = %s WHERE key = 'schema_version'", [str(number)]
            )
            if version:
                _LOGGER.warning(
                    "PostgresQueue: migrated schema %r on %r to version %d",
                    self.schema,
                    self.dsn,
                    number,
                )
        row = conn.execute(f"SELECT value FROM {s}.meta WHERE key = 'queue_id'").fetchone()
        if row is None:
            raise QueueSchemaError(
                f"PostgresQueue: schema {self.schema!r} on {self.dsn!r} lacks its queue_id"
            )
        return str(row[0])

    def _run(self, work: Callable[[psycopg.Connection[Any]], T], single: bool = False) -> T:
        """Run ``work`` in one transaction; retry it on a new connection if the old one fails.

        ``single``: ``work`` is one statement (atomic on its own in autocommit) or statements
        that need not be atomic together: no BEGIN/COMMIT round trips around it.
        """
        delay = _FIRST_DELAY
        started: float | None = None
        while True:
            if self._closed:
                raise QueueError(f"{self!r} is closed")
            try:
                with self._pool.connection() as conn:
                    if single:
                        result = work(conn)
                    else:
                        with conn.transaction():
                            result = work(conn)
            except psycopg.OperationalError as exc:
                if self._closed:
                    raise QueueError(f"{self!r} is closed") from None
                now = time.monotonic()
                if started is None:
                    started = now
                    self._lost(exc)
                if self.reconnect_timeout is not None and now - started >= self.reconnect_timeout:
                    raise QueueConnectionError(
                        f"{self!r}: no working connection to {self.dsn!r} for "
                        f"{now - started:.1f} s: {self._clean(exc)}"
                    ) from None
                self._closing.wait(delay)
                delay = min(delay * 2, _MAX_DELAY)
                continue
            except pg_errors.InsufficientPrivilege as exc:
                raise QueuePermissionError(
                    f"{self!r}: the user of {self.dsn!r} lacks a privilege on schema "
                    f"{self.schema!r}: {self._clean(exc)}"
                ) from None
            except psycopg.Error as exc:
                raise QueueError(f"{self!r}: {self._clean(exc)}") from None
            if self._outage_since is not None:  # this call or another one had failed
                self._regained()
            return result

    def _lost(self, exc: BaseException) -> None:
        """A call's first failure: start an outage (logged once), and drop every idle pooled
        connection that is broken too, so the retries do not meet them one by one."""
        now = time.monotonic()
        with self._outage_lock:
            first = self._outage_since is None
            if first:
                self._outage_since = now
                # Stale connections met just after a recovery belong to the same outage.
                self._outage_logged = now - self._regained_at > _QUIET_AFTER_RECOVERY
        if first and self._outage_logged:
            _LOGGER.warning(
                "%r: lost the connection to %s; retrying with backoff: %s",
                self,
                self.dsn,
                self._clean(exc),
            )
        with contextlib.suppress(psycopg.Error):
            self._pool.check()

    def _regained(self) -> None:
        now = time.monotonic()
        with self._outage_lock:
            since, self._outage_since = self._outage_since, None
            logged, self._outage_logged = self._outage_logged, False
            if since is not None:
                self._regained_at = now
        if since is not None and logged:
            _LOGGER.warning("%r: connected to %s again after %.1f s", self, self.dsn, now - since)

    # -- the background keeper: leases, reaper, heartbeat -----------------------------------

    def _ensure_keeper(self) -> None:
        if self._keeper is not None:
            return
        with self._keeper_lock:
            if self._keeper is None and not self._closed:
                self._keeper = threading.Thread(
                    target=self._keep, name=f"databay_bus-pg-keeper-{self.schema}", daemon=True
                )
                self._keeper.start()

    def _keep(self) -> None:
        """Renew this node's leases and heartbeat, and reap expired leases, until closed."""
        next_renew = next_reap = 0.0
        while not self._closing.is_set():
            now = time.monotonic()
            try:
                if now >= next_renew:
                    next_renew = now + self.renew_interval
                    self.renew_leases()
                if now >= next_reap:
                    next_reap = now + self.reap_interval
                    self.reap()
            except QueueError as exc:
                if self._closed:
                    return
                _LOGGER.error("%r: lease keeper: %s", self, exc)
            self._closing.wait(max(0.0, min(next_renew, next_reap) - time.monotonic()))

    def renew_leases(self) -> int:
        """Extend every lease this node holds to ``now() + lease``; heartbeat; return the count."""
        lease, node = self.lease, self.node
        q = self._q

        def work(conn: psycopg.Connection[Any]) -> int:
            conn.execute(
                q.heartbeat,
                {"node": node, "host": socket.gethostname(), "pid": os.getpid()},
            )
            return conn.execute(q.renew, {"node": node, "lease": lease}).rowcount

        with self._gate.exclusive():
            return self._run(work, single=True)

    def reap(self) -> int:
        """Take back deliveries whose lease expired (database clock); return how many."""
        q = self._q
        with self._gate.exclusive():
            return self._run(lambda conn: conn.execute(q.reap).rowcount, single=True)

    def nodes(self) -> list[NodeInfo]:
        """The node registry: processes that used this queue lately, newest heartbeat first."""
        q, timeout = self._q, self.node_timeout

        def work(conn: psycopg.Connection[Any]) -> list[Any]:
            return conn.execute(q.nodes, {"timeout": timeout}).fetchall()

        return [NodeInfo(*row) for row in self._run(work)]

    # -- wake-ups ---------------------------------------------------------------------------

    def watch(self, callback: Callable[[str], None]) -> Callable[[], None]:
        """Call ``callback(link)`` (on a background thread) when records of ``link`` may be
        due: as soon as another process enqueues some (LISTEN/NOTIFY, unless
        ``wakeups="poll"``), and every ``poll_interval`` for each link with due, unclaimed
        deliveries (retries coming due, a notification missed while disconnected).

        Returns a function that stops these calls. Planners use it to deliver between ticks.
        """
        with self._keeper_lock:
            if self._closed:
                raise QueueError(f"{self!r} is closed")
            self._watchers.append(callback)
            if self._listener is None:
                self._listener = threading.Thread(
                    target=self._listen, name=f"databay_bus-pg-listen-{self.schema}", daemon=True
                )
                self._listener.start()
        # Enqueues committed after this returns are seen (LISTEN is in place, or polling is).
        self._listening.wait(self.connect_timeout + 1.0)

        def unwatch() -> None:
            with self._keeper_lock:
                if callback in self._watchers:
                    self._watchers.remove(callback)

        return unwatch

    def _wake(self, link: str) -> None:
        with self._keeper_lock:
            watchers = list(self._watchers)
        for callback in watchers:
            try:
                callback(link)
            except Exception as exc:
                _LOGGER.error("%r: wake-up callback %r failed", self, callback, exc_info=exc)

    def _listen(self) -> None:
        """LISTEN on a connection of its own (outside the pool, autocommit); poll when the
        wait times out, and all the time while that connection is down or in poll mode."""
        conn: psycopg.Connection[Any] | None = None
        while not self._closing.is_set():
            if self.wakeups == "listen" and conn is None:
                try:
                    conn = psycopg.connect(self._dsn, **self._connect_kwargs())
                    conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self._channel)))
                except psycopg.Error as exc:
                    _LOGGER.debug("%r: LISTEN failed, polling meanwhile: %s", self, exc)
                    if conn is not None:
                        conn.close()
                    conn = None
            self._listening.set()
            if conn is not None:
                try:
                    for note in conn.notifies(timeout=self.poll_interval):
                        link, _, node = note.payload.rpartition("\t")
                        if self._closing.is_set():
                            break
                        if link and node != self.node:
                            self._wake(link)
                except psycopg.Error:
                    conn.close()
                    conn = None
                    continue
            else:
                self._closing.wait(self.poll_interval)
            if self._closing.is_set():
                break
            try:
                links = self._run(self._due_links)
            except QueueError as exc:
                _LOGGER.debug("%r: poll failed: %s", self, exc)
                continue
            for link in links:
                self._wake(link)
        if conn is not None:
            conn.close()

    def _due_links(self, conn: psycopg.Connection[Any]) -> list[str]:
        rows = conn.execute(self._q.due_links, [self.clock.time()]).fetchall()
        return [row[0] for row in rows]

    # -- ticks ------------------------------------------------------------------------------

    def claim_tick(self, link: str, tick: float) -> bool:
        """True for exactly one caller among all processes per (link, tick), and only if no
        later tick of ``link`` was claimed: the scheduled fire time ``tick`` (epoch seconds,
        computed from the link's schedule, never from one host's clock) is a per-link
        high-water mark advanced by a conditional UPDATE."""
        q, node = self._q, self.node

        def work(conn: psycopg.Connection[Any]) -> bool:
            row = conn.execute(q.claim_tick, {"link": link, "tick": tick, "node": node})
            return row.fetchone() is not None

        return self._run(work, single=True)

    # -- the delivery cycle -----------------------------------------------------------------

    def _do_enqueue(
        self,
        link: str,
        codec: str,
        encoded: Sequence[bytes],
        targets: Sequence[Sequence[str]],
        now: float,
    ) -> list[int]:
        return self._run(lambda conn: self._enqueue_in(conn, link, codec, encoded, targets, now))

    def _enqueue_in(
        self,
        conn: psycopg.Connection[Any],
        link: str,
        codec: str,
        encoded: Sequence[bytes],
        targets: Sequence[Sequence[str]],
        now: float,
    ) -> list[int]:
        q = self._q
        numbers = sorted(row[0] for row in conn.execute(q.numbers, [len(encoded)]).fetchall())
        kept, kept_encoded, rows, outlets = [], [], [], []
        for number, data, names in zip(numbers, encoded, targets, strict=True):
            unique = list(dict.fromkeys(names))
            if not unique:
                continue  # nothing would ever read it
            kept.append(number)
            kept_encoded.append(data)
            rows.extend([number] * len(unique))
            outlets.extend(unique)
        if kept:
            conn.execute(
                q.insert_records,
                {
                    "numbers": kept,
                    "link": link,
                    "codec": codec,
                    "now": now,
                    "encoded": kept_encoded,
                },
            )
            conn.execute(
                q.insert_deliveries,
                {"numbers": rows, "outlets": outlets, "link": link, "now": now},
            )
            if self.wakeups == "listen":  # delivered to listeners when this commits
                conn.execute(q.notify, [self._channel, f"{link}\t{self.node}"])
        return numbers

    # -- inlet cursors ----------------------------------------------------------------------

    def _do_enqueue_with_cursors(
        self,
        link: str,
        codec: str,
        encoded: Sequence[bytes],
        targets: Sequence[Sequence[str]],
        now: float,
        cursors: Mapping[str, CursorWrite],
    ) -> list[int]:
        def work(conn: psycopg.Connection[Any]) -> list[int]:
            self._write_cursors_in(conn, link, cursors, now)  # first: a conflict stores nothing
            return self._enqueue_in(conn, link, codec, encoded, targets, now)

        return self._run(work)

    def _do_read_cursors(
        self, link: str | None, inlet: str | None
    ) -> list[tuple[str, str, str, int, float]]:
        q = self._q
        params = {"link": link, "inlet": inlet}
        rows = self._run(lambda conn: conn.execute(q.read_cursors, params).fetchall())
        return [tuple(row) for row in rows]

    def _do_write_cursors(self, link: str, cursors: Mapping[str, CursorWrite], now: float) -> None:
        self._run(lambda conn: self._write_cursors_in(conn, link, cursors, now))

    def _write_cursors_in(
        self,
        conn: psycopg.Connection[Any],
        link: str,
        cursors: Mapping[str, CursorWrite],
        now: float,
    ) -> None:
        """Compare and set every cursor of ``cursors`` (row locks held to the commit)."""
        q = self._q
        inlets = sorted(cursors)  # one lock order for every writer
        stored = dict(conn.execute(q.lock_cursors, {"link": link, "inlets": inlets}).fetchall())
        versions = {
            inlet: check_version(link, inlet, stored.get(inlet, 0), cursors[inlet])
            for inlet in inlets
        }
        for inlet in inlets:
            text = cursors[inlet].text
            params = {"link": link, "inlet": inlet, "value": text, "now": now}
            if text is None:
                conn.execute(q.delete_cursor, params)
            elif inlet in stored:
                conn.execute(q.update_cursor, {**params, "version": versions[inlet]})
            else:
                try:
                    with conn.transaction():  # a savepoint: a racing first write conflicts
                        conn.execute(q.insert_cursor, {**params, "version": versions[inlet]})
                except pg_errors.UniqueViolation:
                    raise CursorConflictError(
                        f"cursor of inlet {inlet!r} of link {link!r} was first written by "
                        f"another process at the same time; nothing of this transfer was stored"
                    ) from None

    def _do_due(self, link: str, outlet: str, limit: int, now: float) -> list[StoredRun]:
        self._ensure_keeper()
        q = self._q
        params = {
            "link": link,
            "outlet": outlet,
            "now": now,
            "limit": limit,
            "node": self.node,
            "lease": self.lease,
        }

        def work(conn: psycopg.Connection[Any]) -> list[Any]:
            return conn.execute(q.claim, params, binary=True).fetchall()

        with self._gate.shared():
            claimed = self._run(work, single=True)
        runs: list[StoredRun] = []
        for number, codec, data in claimed:
            last = runs[-1] if runs else None
            if last and last.first + len(last.encoded) == number and last.codec == codec:
                last.encoded.append(data)
            else:
                runs.append(StoredRun(number, codec, [data]))
        return runs

    def _do_ack(self, link: str, outlet: str, numbers: list[int], now: float) -> int:
        q = self._q
        params = {"link": link, "outlet": outlet, "numbers": numbers, "now": now, "node": self.node}

        def work(conn: psycopg.Connection[Any]) -> tuple[int, int]:
            acked = conn.execute(q.ack, params).rowcount
            lost = 0
            if acked < len(numbers):  # settled before, or leased (or acked) by another node?
                lost = _scalar(conn, q.leased_elsewhere, params)
            return acked, lost

        with self._gate.shared():
            acked, lost = self._run(work, single=True)
        if lost:
            _LOGGER.warning(
                "%r: late ack refused for %d record(s) of link %r, outlet %r: this process "
                "lost their lease (cut off or stalled for longer than %s s) and another "
                "process claimed them; they will be pushed again there",
                self,
                lost,
                link,
                outlet,
                self.lease,
            )
        return acked

    def _do_fail(
        self,
        link: str,
        outlet: str,
        numbers: list[int],
        error: str,
        now: float,
        next_delay: Callable[[int], float | None],
    ) -> tuple[int, list[int]]:
        q, node = self._q, self.node

        def work(conn: psycopg.Connection[Any]) -> tuple[int, list[int]]:
            rows = conn.execute(
                q.fail_select, {"link": link, "outlet": outlet, "numbers": numbers, "node": node}
            ).fetchall()
            by_attempts: dict[int, list[int]] = {}
            for number, attempts in rows:
                by_attempts.setdefault(attempts + 1, []).append(number)
            retrying = 0
            dead: list[int] = []
            for attempts, group in by_attempts.items():
                delay = next_delay(attempts)
                conn.execute(
                    q.fail_update,
                    {
                        "outlet": outlet,
                        "numbers": group,
                        "attempts": attempts,
                        "state": _DEAD if delay is None else _FAILED,
                        "due": now if delay is None else now + delay,
                        "now": now,
                        "error": error,
                    },
                )
                if delay is None:
                    dead.extend(group)
                else:
                    retrying += len(group)
            return retrying, sorted(dead)

        with self._gate.shared():
            return self._run(work)

    def _do_waiting(self, link: str) -> int:
        q = self._q
        return self._run(lambda conn: _scalar(conn, q.waiting, [link]), single=True)

    def _do_waiting_outlets(self, link: str) -> list[str]:
        q = self._q
        return self._run(
            lambda conn: [row[0] for row in conn.execute(q.waiting_outlets, [link]).fetchall()]
        )

    def _do_stats(self, now: float) -> tuple[list[OutletStats], int]:
        q = self._q

        def work(conn: psycopg.Connection[Any]) -> tuple[list[Any], int]:
            return conn.execute(q.stats).fetchall(), _scalar(conn, q.count_records, [])

        rows, records = self._run(work)
        outlets = [
            OutletStats(
                link,
                outlet,
                pending,
                retrying,
                delivered,
                dead,
                None if oldest is None else max(0.0, now - oldest),
            )
            for link, outlet, pending, retrying, delivered, dead, oldest in rows
        ]
        return outlets, records

    @staticmethod
    def _filters(
        link: str | None, outlet: str | None, numbers: list[int] | None
    ) -> tuple[str, dict[str, Any]]:
        clauses: list[str] = []
        params: dict[str, Any] = {}
        if link is not None:
            clauses.append("d.link = %(link)s")
            params["link"] = link
        if outlet is not None:
            clauses.append("d.outlet = %(outlet)s")
            params["outlet"] = outlet
        if numbers is not None:
            clauses.append("d.number = ANY(%(numbers)s)")
            params["numbers"] = numbers
        return "".join(f" AND {clause}" for clause in clauses), params

    def _do_dead_letters(
        self, link: str | None, outlet: str | None, limit: int | None
    ) -> list[tuple[int, str, bytes, str, str, int, str | None, float]]:
        where, params = self._filters(link, outlet, None)
        params["limit"] = limit
        statement = self._q.dead_letters.replace("{where}", where)
        rows = self._run(lambda conn: conn.execute(statement.encode(), params).fetchall())
        return [tuple(row) for row in rows]

    def _do_waiting_records(
        self, link: str | None, outlet: str | None, limit: int | None
    ) -> list[tuple[int, str, bytes, str, str, int, int, float, str | None]]:
        where, params = self._filters(link, outlet, None)
        params["limit"] = None if limit is None else max(0, limit)
        statement = self._q.waiting_records.replace("{where}", where)
        rows = self._run(lambda conn: conn.execute(statement.encode(), params).fetchall())
        return [tuple(row) for row in rows]

    def _do_delivered_records(
        self, link: str | None, outlet: str | None, after: tuple[int, str], limit: int
    ) -> list[tuple[int, str, bytes, str, str, int, float]]:
        where, params = self._filters(link, outlet, None)
        params["limit"] = max(0, limit)
        params["after_number"], params["after_outlet"] = after
        statement = self._q.delivered_records.replace("{where}", where)
        rows = self._run(lambda conn: conn.execute(statement.encode(), params).fetchall())
        return [tuple(row) for row in rows]

    def _do_codecs(self) -> list[str]:
        q = self._q
        return self._run(lambda conn: [row[0] for row in conn.execute(q.codecs).fetchall()])

    def _do_replay(
        self, link: str | None, outlet: str | None, numbers: list[int] | None, now: float
    ) -> int:
        where, params = self._filters(link, outlet, numbers)
        params["now"] = now
        statement = self._q.replay.replace("{where}", where)
        return self._run(lambda conn: conn.execute(statement.encode(), params).rowcount)

    def _do_drop(
        self,
        link: str | None,
        outlet: str | None,
        numbers: list[int] | None,
        states: frozenset[int],
    ) -> int:
        where, params = self._filters(link, outlet, numbers)
        params["states"] = sorted(states)
        statement = self._q.drop.replace("{where}", where)
        q = self._q

        def work(conn: psycopg.Connection[Any]) -> int:
            dropped = [row[0] for row in conn.execute(statement.encode(), params).fetchall()]
            if dropped:
                conn.execute(q.orphans, [dropped])
            return len(dropped)

        return self._run(work)

    def _do_purge(self, before: float) -> int:
        q = self._q
        total = 0
        while True:

            def work(conn: psycopg.Connection[Any]) -> int:
                purged = [row[0] for row in conn.execute(q.purge, [before, _PURGE_ROWS])]
                if purged:
                    conn.execute(q.orphans, [purged])
                return len(purged)

            count = self._run(work)
            total += count
            if count < _PURGE_ROWS:
                return total

    def _do_close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._closing.set()
        keeper = self._keeper
        if keeper is not None and keeper is not threading.current_thread():
            keeper.join(10.0)
        listener = self._listener
        if listener is not None and listener is not threading.current_thread():
            # Wake it from its wait for notifications.
            with contextlib.suppress(psycopg.Error), self._pool.connection(timeout=1.0) as conn:
                conn.execute(self._q.notify, [self._channel, ""])
            listener.join(10.0)
        pool = getattr(self, "_pool", None)
        if pool is not None:
            try:
                with pool.connection(timeout=1.0) as conn:
                    conn.execute(self._q.release, {"node": self.node})
                    conn.execute(self._q.unregister, {"node": self.node})
            except psycopg.Error:
                pass  # the leases expire and the reaper takes them back
            pool.close()

    def __repr__(self) -> str:
        return f"PostgresQueue({self.dsn!r}, schema={self.schema!r})"


class _Gate:
    """Shared by this process's claims, acks and fails; exclusive for its keeper's renewal
    and reaping, which so never holds a row lock one of them meets (see the module's text).

    A waiting keeper goes first: calls arriving after it wait, so it cannot starve.
    """

    def __init__(self) -> None:
        self._changed = threading.Condition(threading.Lock())
        self._sharing = 0  # calls inside
        self._keeping = False  # the keeper is inside
        self._keepers_waiting = 0

    @contextlib.contextmanager
    def shared(self) -> Iterator[None]:
        with self._changed:
            while self._keeping or self._keepers_waiting:
                self._changed.wait()
            self._sharing += 1
        try:
            yield
        finally:
            with self._changed:
                self._sharing -= 1
                if not self._sharing:
                    self._changed.notify_all()

    @contextlib.contextmanager
    def exclusive(self) -> Iterator[None]:
        with self._changed:
            self._keepers_waiting += 1
            try:
                while self._keeping or self._sharing:
                    self._changed.wait()
            finally:
                self._keepers_waiting -= 1
            self._keeping = True
        try:
            yield
        finally:
            with self._changed:
                self._keeping = False
                self._changed.notify_all()


def _scalar(conn: psycopg.Connection[Any], statement: str | bytes, params: Any) -> int:
    row = conn.execute(statement.encode() if isinstance(statement, str) else statement, params)
    value = row.fetchone()
    return int(value[0]) if value and value[0] is not None else 0


class _Statements:
    """The queue's SQL, with the schema name filled in once."""

    def __init__(self, s: str) -> None:
        self.numbers = f"SELECT nextval('{s}.numbers') FROM generate_series(1, %s)".encode()
        self.insert_records = (
            f"INSERT INTO {s}.records (number, link, codec, enqueued_at, data) "
            "SELECT number, %(link)s, %(codec)s, %(now)s, data "
            "FROM unnest(%(numbers)b::bigint[], %(encoded)b::bytea[]) AS t(number, data)"
        ).encode()
        self.insert_deliveries = (
            f"INSERT INTO {s}.deliveries (number, outlet, link, state, due_at, updated_at) "
            f"SELECT number, outlet, %(link)s, {_PENDING}, %(now)s, %(now)s "
            "FROM unnest(%(numbers)b::bigint[], %(outlets)b::text[]) AS t(number, outlet)"
        ).encode()
        # The claim: due rows not leased by another node, in order, skipping rows another
        # transaction holds; leased to this node on the database clock. Expired leases are
        # not taken here (that walks far more rows): the reaper frees them first.
        self.claim = f"""
            WITH picked AS (
                SELECT number FROM {s}.deliveries
                WHERE link = %(link)s AND outlet = %(outlet)s AND state < 2
                  AND due_at <= %(now)s AND (lease_until IS NULL OR lease_owner = %(node)s)
                ORDER BY number LIMIT %(limit)s
                FOR UPDATE SKIP LOCKED
            ), leased AS (
                UPDATE {s}.deliveries d
                SET lease_owner = %(node)s,
                    lease_until = now() + %(lease)s * interval '1 second'
                FROM picked WHERE d.number = picked.number AND d.outlet = %(outlet)s
                RETURNING d.number
            )
            SELECT r.number, r.codec, r.data FROM {s}.records r JOIN leased USING (number)
            ORDER BY r.number
        """.encode()
        # Fenced: rows never claimed, or claimed by this node.
        fence = "lease_owner IN ('', %(node)s)"
        self.ack = (
            f"UPDATE {s}.deliveries SET state = {_DELIVERED}, updated_at = %(now)s, "
            "lease_until = NULL "
            "WHERE number = ANY(%(numbers)b::bigint[]) AND outlet = %(outlet)s AND link = %(link)s "
            f"AND state < 2 AND {fence}"
        ).encode()
        self.leased_elsewhere = (
            f"SELECT count(*) FROM {s}.deliveries WHERE number = ANY(%(numbers)s) "
            "AND outlet = %(outlet)s AND link = %(link)s AND lease_owner NOT IN ('', %(node)s)"
        ).encode()
        self.fail_select = (
            f"SELECT number, attempts FROM {s}.deliveries "
            "WHERE number = ANY(%(numbers)s) AND outlet = %(outlet)s AND link = %(link)s "
            f"AND state < 2 AND {fence} ORDER BY number FOR UPDATE"
        ).encode()
        self.fail_update = (
            f"UPDATE {s}.deliveries SET state = %(state)s, attempts = %(attempts)s, "
            "due_at = %(due)s, updated_at = %(now)s, last_error = %(error)s, "
            "lease_owner = '', lease_until = NULL "
            "WHERE number = ANY(%(numbers)s) AND outlet = %(outlet)s"
        ).encode()
        self.renew = (
            f"UPDATE {s}.deliveries SET lease_until = now() + %(lease)s * interval '1 second' "
            "WHERE lease_until IS NOT NULL AND lease_owner = %(node)s"
        ).encode()
        self.reap = (
            f"UPDATE {s}.deliveries SET lease_owner = '{_REAPED}', lease_until = NULL "
            "WHERE lease_until IS NOT NULL AND lease_until < now()"
        ).encode()
        self.release = (
            f"UPDATE {s}.deliveries SET lease_owner = '', lease_until = NULL "
            "WHERE lease_until IS NOT NULL AND lease_owner = %(node)s"
        ).encode()
        self.unregister = f"DELETE FROM {s}.nodes WHERE node = %(node)s".encode()
        self.heartbeat = (
            f"INSERT INTO {s}.nodes (node, host, pid) VALUES (%(node)s, %(host)s, %(pid)s) "
            "ON CONFLICT (node) DO UPDATE SET seen_at = now()"
        ).encode()
        self.nodes = (
            "SELECT node, host, pid, started_at, seen_at, "
            "seen_at > now() - %(timeout)s * interval '1 second' "
            f"FROM {s}.nodes ORDER BY seen_at DESC, node"
        ).encode()
        self.claim_tick = (
            f"INSERT INTO {s}.ticks AS t (link, last_tick, node) "
            "VALUES (%(link)s, %(tick)s, %(node)s) "
            "ON CONFLICT (link) DO UPDATE SET last_tick = EXCLUDED.last_tick, "
            "node = EXCLUDED.node, claimed_at = now() "
            "WHERE t.last_tick < EXCLUDED.last_tick RETURNING 1"
        ).encode()
        self.notify = b"SELECT pg_notify(%s, %s)"
        self.due_links = (
            f"SELECT DISTINCT link FROM {s}.deliveries "
            "WHERE state < 2 AND due_at <= %s AND lease_until IS NULL"
        ).encode()
        self.lock_cursors = (
            f"SELECT inlet, version FROM {s}.cursors WHERE link = %(link)s "
            "AND inlet = ANY(%(inlets)s) ORDER BY inlet FOR UPDATE"
        ).encode()
        self.read_cursors = (
            f"SELECT link, inlet, value, version, updated_at FROM {s}.cursors "
            "WHERE (%(link)s::text IS NULL OR link = %(link)s) "
            "AND (%(inlet)s::text IS NULL OR inlet = %(inlet)s) ORDER BY link, inlet"
        ).encode()
        self.delete_cursor = (
            f"DELETE FROM {s}.cursors WHERE link = %(link)s AND inlet = %(inlet)s"
        ).encode()
        self.update_cursor = (
            f"UPDATE {s}.cursors SET value = %(value)s, version = %(version)s, "
            "updated_at = %(now)s WHERE link = %(link)s AND inlet = %(inlet)s"
        ).encode()
        self.insert_cursor = (
            f"INSERT INTO {s}.cursors (link, inlet, value, version, updated_at) "
            "VALUES (%(link)s, %(inlet)s, %(value)s, %(version)s, %(now)s)"
        ).encode()
        self.waiting = (
            f"SELECT count(DISTINCT number) FROM {s}.deliveries WHERE link = %s AND state < 2"
        )
        self.waiting_outlets = (
            f"SELECT DISTINCT outlet FROM {s}.deliveries WHERE link = %s AND state < 2"
        ).encode()
        self.stats = f"""
            SELECT d.link, d.outlet,
                   count(*) FILTER (WHERE d.state < 2),
                   count(*) FILTER (WHERE d.state = {_FAILED}),
                   count(*) FILTER (WHERE d.state = {_DELIVERED}),
                   count(*) FILTER (WHERE d.state = {_DEAD}),
                   min(r.enqueued_at) FILTER (WHERE d.state < 2)
            FROM {s}.deliveries d JOIN {s}.records r USING (number)
            GROUP BY d.link, d.outlet
        """.encode()
        self.count_records = f"SELECT count(*) FROM {s}.records"
        self.dead_letters = (
            "SELECT d.number, r.codec, r.data, d.link, d.outlet, d.attempts, d.last_error, "
            f"d.updated_at FROM {s}.deliveries d JOIN {s}.records r USING (number) "
            f"WHERE d.state = {_DEAD}{{where}} ORDER BY d.number, d.link, d.outlet "
            "LIMIT %(limit)s"
        )
        self.waiting_records = (
            "SELECT d.number, r.codec, r.data, d.link, d.outlet, d.state, d.attempts, "
            f"d.due_at, d.last_error FROM {s}.deliveries d JOIN {s}.records r USING (number) "
            "WHERE d.state < 2{where} ORDER BY d.number, d.link, d.outlet LIMIT %(limit)s"
        )
        self.delivered_records = (
            "SELECT d.number, r.codec, r.data, d.link, d.outlet, d.attempts, d.updated_at "
            f"FROM {s}.deliveries d JOIN {s}.records r USING (number) "
            f"WHERE d.state = {_DELIVERED}{{where}} "
            "AND (d.number, d.outlet) > (%(after_number)s, %(after_outlet)s) "
            "ORDER BY d.number, d.outlet LIMIT %(limit)s"
        )
        self.codecs = f"SELECT DISTINCT codec FROM {s}.records".encode()
        self.replay = (
            f"UPDATE {s}.deliveries d SET state = {_PENDING}, attempts = 0, due_at = %(now)s, "
            "updated_at = %(now)s, lease_owner = '', lease_until = NULL "
            f"WHERE d.state = {_DEAD}{{where}}"
        )
        self.drop = (
            f"DELETE FROM {s}.deliveries d WHERE d.state = ANY(%(states)s::smallint[]){{where}} "
            "RETURNING d.number"
        )
        self.orphans = (
            f"DELETE FROM {s}.records r WHERE r.number = ANY(%s) AND NOT EXISTS "
            f"(SELECT 1 FROM {s}.deliveries d WHERE d.number = r.number)"
        ).encode()
        self.purge = (
            f"DELETE FROM {s}.deliveries WHERE (number, outlet) IN (SELECT number, outlet "
            f"FROM {s}.deliveries WHERE state = {_DELIVERED} AND updated_at < %s LIMIT %s) "
            "RETURNING number"
        ).encode()
