"""PostgresQueue beyond the shared contract: schema, errors, leases, ticks, reconnection."""

from __future__ import annotations

import logging
import re
import secrets
import socket
import threading
from collections.abc import Callable, Iterator
from datetime import timedelta

import psycopg
import pytest

from databay_bus import Record
from databay_bus.errors import (
    ArgumentTypeError,
    ConfigurationError,
    QueueConnectionError,
    QueueDependencyError,
    QueueError,
    QueuePermissionError,
    QueueSchemaError,
)
from databay_bus.queue import PostgresQueue
from databay_bus.queue import postgres as pg_module
from databay_bus.queue._pg_schema import SCHEMA_VERSION, SCRIPTS
from databay_bus.queue.postgres import mask_dsn


def recs(*payloads: object) -> list[Record]:
    return [Record(p, {"__inlet__": "I"}) for p in payloads]


def payloads(records: list[Record]) -> list[object]:
    return [r.payload for r in records]


def admin(dsn: str) -> psycopg.Connection[tuple[object, ...]]:
    return psycopg.connect(dsn, autocommit=True)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class TestErrors:
    def test_mask_dsn_hides_passwords_in_both_forms(self) -> None:
        assert mask_dsn("postgresql://bob:s3cr@t@db:5432/x") == "postgresql://bob:***@t@db:5432/x"
        assert mask_dsn("postgresql://bob:pw@db/x?sslmode=require") == (
            "postgresql://bob:***@db/x?sslmode=require"
        )
        assert mask_dsn("host=db password='a b' user=x") == "host=db password=*** user=x"
        assert mask_dsn("postgresql://db/x?password=pw&a=1") == "postgresql://db/x?password=***&a=1"
        assert mask_dsn("postgresql://bob@db/x") == "postgresql://bob@db/x"

    def test_unreachable_server_names_the_masked_dsn(self) -> None:
        dsn = f"postgresql://postgres:hunter2@127.0.0.1:{closed_port()}/test"
        with pytest.raises(QueueConnectionError) as info:
            PostgresQueue(dsn, connect_timeout=3)
        text = str(info.value)
        assert "hunter2" not in text and "postgres:***@127.0.0.1" in text
        assert "cannot connect" in text and isinstance(info.value, ConnectionError)

    def test_malformed_dsn(self) -> None:
        with pytest.raises(QueueConnectionError) as info:
            PostgresQueue("host=x nonsense_option=1 password=pw")
        assert "password=***" in str(info.value) and "pw " not in str(info.value)

    def test_wrong_database(self, postgres_dsn: str) -> None:
        dsn = psycopg.conninfo.make_conninfo(postgres_dsn, dbname="no_such_db_databay")
        with pytest.raises(QueueConnectionError, match="no_such_db_databay"):
            PostgresQueue(dsn)

    def test_missing_psycopg_names_the_extra(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(pg_module, "psycopg", None)
        with pytest.raises(QueueDependencyError) as info:
            PostgresQueue("postgresql://x@127.0.0.1/db")
        assert "databay_bus[postgres]" in str(info.value)
        assert isinstance(info.value, ImportError) and isinstance(info.value, QueueError)

    def test_bad_arguments(self) -> None:
        for kwargs in (
            {"schema": ""},
            {"schema": "x" * 64},
            {"lease": 0},
            {"lease": 5, "renew_interval": 5},
            {"max_connections": 0},
            {"reap_interval": None},
        ):
            with pytest.raises(ConfigurationError):
                PostgresQueue.check_arguments("postgresql://x/y", **kwargs)  # type: ignore[arg-type]
        with pytest.raises(ConfigurationError):
            PostgresQueue("")

    @pytest.mark.parametrize(
        ("dsn", "kwargs", "message"),
        [
            (5, {}, "dsn must be a connection string, got 5 (int)"),
            ("postgresql://x/y", {"schema": 5}, "schema must be a name of 1 to 63 bytes, got 5"),
            ("postgresql://x/y", {"lease": "30"}, "lease must be seconds > 0 or a timedelta"),
            ("postgresql://x/y", {"max_connections": True}, "max_connections must be an int"),
            ("postgresql://x/y", {"wakeups": None}, "wakeups must be 'listen' or 'poll'"),
        ],
    )
    def test_a_wrong_type_is_also_a_type_error(
        self, dsn: object, kwargs: dict[str, object], message: str
    ) -> None:
        with pytest.raises(ArgumentTypeError, match=re.escape(message)):
            PostgresQueue.check_arguments(dsn, **kwargs)  # type: ignore[arg-type]

    def test_a_bad_timing_names_what_it_takes(self) -> None:
        with pytest.raises(
            ConfigurationError, match=r"lease must be seconds > 0 or a timedelta, got -1"
        ):
            PostgresQueue.check_arguments("postgresql://x/y", lease=-1)

    def test_timings_may_be_timedeltas(self, make_postgres: Callable[..., PostgresQueue]) -> None:
        queue = make_postgres(
            lease=timedelta(seconds=40),
            renew_interval=timedelta(seconds=8),
            reconnect_timeout=timedelta(minutes=1),
        )
        assert (queue.lease, queue.renew_interval, queue.reconnect_timeout) == (40.0, 8.0, 60.0)


class TestSchema:
    def test_newer_schema_version_is_refused(
        self, make_postgres: Callable[..., PostgresQueue], postgres_dsn: str, pg_schema: str
    ) -> None:
        make_postgres().close()
        with admin(postgres_dsn) as conn:
            meta = f'"{pg_schema}".meta'
            conn.execute(f"UPDATE {meta} SET value = '99' WHERE key = 'schema_version'".encode())
        with pytest.raises(QueueSchemaError, match=r"version 99.*newer"):
            make_postgres()

    def test_schema_holding_other_tables_is_refused(
        self, make_postgres: Callable[..., PostgresQueue], postgres_dsn: str, pg_schema: str
    ) -> None:
        with admin(postgres_dsn) as conn:
            conn.execute(f'CREATE SCHEMA "{pg_schema}"'.encode())
            conn.execute(f'CREATE TABLE "{pg_schema}".orders (id int)'.encode())
        with pytest.raises(QueueSchemaError, match="no databay_bus queue"):
            make_postgres()

    def test_migration_from_version_1_keeps_the_records(
        self,
        make_postgres: Callable[..., PostgresQueue],
        postgres_dsn: str,
        pg_schema: str,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        """A schema made by version 1 (the queue tables only) is migrated on open."""
        with admin(postgres_dsn) as conn:
            conn.execute(f'CREATE SCHEMA "{pg_schema}"'.encode())
            conn.execute(SCRIPTS[0].replace("{s}", f'"{pg_schema}"').encode())
            conn.execute(
                f"INSERT INTO \"{pg_schema}\".meta VALUES ('queue_id', 'abc123'), "
                f"('schema_version', '1')".encode()
            )
        old = make_postgres(clock=None)
        assert old.queue_id == "abc123"
        caplog.set_level(logging.WARNING, "databay_bus.queue.postgres")
        assert any("migrated schema" in r.getMessage() for r in caplog.records)
        ids = old.enqueue("L", recs(1, 2), [["a"]] * 2)
        assert ids[0] == "abc123-1"
        assert old.claim_tick("L", 10.0)  # version 2's ticks table is there
        old.set_cursor("L", "in", {"at": 1})  # and version 3's cursors
        with admin(postgres_dsn) as conn:
            row = conn.execute(
                f"SELECT value FROM \"{pg_schema}\".meta WHERE key = 'schema_version'".encode()
            ).fetchone()
        assert row == (str(SCHEMA_VERSION),)
        old.close()
        again = make_postgres(clock=None)
        assert payloads(again.due("L", "a", 10)) == [1, 2]

    def test_schemas_keep_pipelines_apart_and_one_schema_is_shared(
        self, make_postgres: Callable[..., PostgresQueue], postgres_dsn: str
    ) -> None:
        first, same = make_postgres(), make_postgres()
        other_name = f"t_{secrets.token_hex(6)}"
        try:
            other = make_postgres(schema=other_name)
            first.enqueue("L", recs("x"), [["a"]])
            assert other.due("L", "a", 10) == []
            assert same.queue_id == first.queue_id != other.queue_id
            assert payloads(same.due("L", "a", 10)) == ["x"]
        finally:
            with admin(postgres_dsn) as conn:
                conn.execute(f'DROP SCHEMA IF EXISTS "{other_name}" CASCADE'.encode())


@pytest.fixture
def weak_role(postgres_dsn: str) -> Iterator[str]:
    """A DSN of a new login role with no privileges beyond connecting."""
    role = f"databay_weak_{secrets.token_hex(4)}"
    with admin(postgres_dsn) as conn:
        conn.execute(f'CREATE ROLE "{role}" LOGIN'.encode())
        conn.execute(f'REVOKE CREATE ON SCHEMA public FROM "{role}"'.encode())
    dsn = psycopg.conninfo.make_conninfo(postgres_dsn, user=role, password="weak-secret")
    yield dsn
    with admin(postgres_dsn) as conn:
        conn.execute(f'DROP OWNED BY "{role}" CASCADE'.encode())
        conn.execute(f'DROP ROLE IF EXISTS "{role}"'.encode())


class TestPrivileges:
    def test_user_who_may_not_create_the_schema(self, weak_role: str, pg_schema: str) -> None:
        with pytest.raises(QueuePermissionError) as info:
            PostgresQueue(weak_role, schema=pg_schema)
        text = str(info.value)
        assert pg_schema in text and "weak-secret" not in text and "may not create" in text

    def test_user_who_may_read_but_not_write(
        self,
        make_postgres: Callable[..., PostgresQueue],
        weak_role: str,
        pg_schema: str,
        postgres_dsn: str,
    ) -> None:
        make_postgres().close()
        role = psycopg.conninfo.conninfo_to_dict(weak_role)["user"]
        with admin(postgres_dsn) as conn:
            conn.execute(f'GRANT USAGE ON SCHEMA "{pg_schema}" TO "{role}"'.encode())
            conn.execute(f'GRANT SELECT ON ALL TABLES IN SCHEMA "{pg_schema}" TO "{role}"'.encode())
        reader = PostgresQueue(weak_role, schema=pg_schema)
        try:
            assert reader.stats().records == 0  # reading works
            with pytest.raises(QueuePermissionError, match="lacks a privilege"):
                reader.enqueue("L", recs(1), [["a"]])
        finally:
            reader.close()


class TestLeases:
    def test_claimed_rows_go_to_one_node_and_acks_are_fenced(
        self, make_postgres: Callable[..., PostgresQueue]
    ) -> None:
        a, b = make_postgres(), make_postgres()
        ids = a.enqueue("L", recs(1, 2, 3), [["out"]] * 3)
        assert payloads(a.due("L", "out", 2)) == [1, 2]
        assert payloads(a.due("L", "out", 2)) == [1, 2]  # its own lease: the same again
        assert payloads(b.due("L", "out", 10)) == [3]  # never another node's
        assert b.ack("L", "out", ids[:2]) == 0  # fenced: a holds them
        assert a.ack("L", "out", ids[:2]) == 2
        assert b.fail("L", "out", ids[2:], "x", lambda n: 0.0) == (1, 0)
        assert payloads(a.due("L", "out", 10)) == [3]  # a failed delivery is free again

    def test_expired_lease_is_reaped_and_its_late_ack_refused(
        self,
        make_postgres: Callable[..., PostgresQueue],
        wait_until: Callable[..., None],
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        """A node that stops renewing loses its records to another after the lease."""
        a = make_postgres(lease=1.0, renew_interval=0.5, reap_interval=0.2)
        b = make_postgres(lease=1.0, renew_interval=0.5, reap_interval=0.2)
        ids = a.enqueue("L", recs(1, 2), [["out"]] * 2)
        assert len(a.due("L", "out", 10)) == 2
        assert b.due("L", "out", 10) == []
        a._closing.set()  # a freezes: its keeper stops renewing (as when cut off)
        assert a._keeper is not None
        a._keeper.join(10)
        wait_until(lambda: b.due("L", "out", 10) != [], timeout=15)
        caplog.set_level(logging.WARNING, "databay_bus.queue.postgres")
        assert a.ack("L", "out", ids) == 0  # late: b owns them now
        assert b.ack("L", "out", ids) == 2
        assert b.ack("L", "out", ids) == 0  # acking twice is quiet
        assert a.ack("L", "out", ids) == 0  # still refused after b acked them
        refused = [r.getMessage() for r in caplog.records if "late ack refused" in r.getMessage()]
        assert len(refused) == 2 and "2 record(s)" in refused[0]

    def test_renewal_moves_the_lease_end_on_the_database_clock(
        self, make_postgres: Callable[..., PostgresQueue], postgres_dsn: str, pg_schema: str
    ) -> None:
        a = make_postgres(lease=30.0)
        a.enqueue("L", recs(1), [["out"]])
        a.due("L", "out", 10)
        query = f'SELECT lease_owner, lease_until - now() FROM "{pg_schema}".deliveries'.encode()
        with admin(postgres_dsn) as conn:
            owner, left = conn.execute(query).fetchone()  # type: ignore[misc]
            assert owner == a.node and 29 < left.total_seconds() <= 30
            conn.execute(f'UPDATE "{pg_schema}".deliveries SET lease_until = now()'.encode())
            assert a.renew_leases() == 1
            owner, left = conn.execute(query).fetchone()  # type: ignore[misc]
            assert owner == a.node and 29 < left.total_seconds() <= 30

    def test_close_releases_leases_and_node(
        self, make_postgres: Callable[..., PostgresQueue]
    ) -> None:
        a, b = make_postgres(), make_postgres()
        a.enqueue("L", recs(1), [["out"]])
        a.due("L", "out", 10)
        a.renew_leases()
        assert a.node in {n.node for n in b.nodes() if n.alive}
        a.close()
        assert payloads(b.due("L", "out", 10)) == [1]
        assert a.node not in {n.node for n in b.nodes()}


def held_in(statement: bytes, key: int) -> bytes:
    """``statement`` (an UPDATE) made to stop after its updates, its row locks held, until
    advisory lock ``key`` is free: the test decides when it ends."""
    return (
        f"WITH changed AS ({statement.decode()} RETURNING 1) "
        f"SELECT pg_advisory_xact_lock_shared({key}) FROM (SELECT count(*) FROM changed) c"
    ).encode()


def waits_on(conn: psycopg.Connection[tuple[object, ...]], event: str, text: str) -> bool:
    """A session waits on a lock of kind ``event`` in a statement containing ``text``."""
    row = conn.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
        "AND wait_event = %s AND query LIKE %s",
        [event, f"%{text}%"],
    ).fetchone()
    return bool(row and row[0])


class TestKeeperAndClaims:
    """The keeper's renewal never makes this node's claims skip rows they should take: a
    claim passes over locked rows (FOR UPDATE SKIP LOCKED), and a renewal locks rows."""

    def test_due_during_a_renewal_returns_the_nodes_own_leased_rows(
        self,
        make_postgres: Callable[..., PostgresQueue],
        postgres_dsn: str,
        wait_until: Callable[..., None],
    ) -> None:
        a = make_postgres()
        a.enqueue("L", recs(1, 2, 3), [["out"]] * 3)
        assert payloads(a.due("L", "out", 2)) == [1, 2]
        key = secrets.randbelow(2**31)
        a._q.renew = held_in(a._q.renew, key)
        with admin(postgres_dsn) as holder:
            holder.execute("SELECT pg_advisory_lock(%s)", [key])
            renewing = threading.Thread(target=a.renew_leases)
            renewing.start()
            wait_until(
                lambda: waits_on(holder, "advisory", f"lock_shared({key})"),
                timeout=30,
                message="the renewal to hold rows 1 and 2",
            )
            # The renewal ends a moment after due() starts (due() must wait for it).
            release = threading.Timer(0.5, holder.execute, ["SELECT pg_advisory_unlock_all()"])
            release.start()
            try:
                assert payloads(a.due("L", "out", 2)) == [1, 2]  # not [3]
            finally:
                release.join(30)
                renewing.join(30)

    def test_a_failed_row_is_due_again_though_a_renewal_waited_for_the_fail(
        self,
        make_postgres: Callable[..., PostgresQueue],
        postgres_dsn: str,
        wait_until: Callable[..., None],
    ) -> None:
        """A renewal that waited for a fail's row lock kept the row locked to the end of its
        statement (PostgreSQL locks the newest version, then finds it no longer matches)."""
        a = make_postgres()
        ids = a.enqueue("L", recs(1), [["out"]])
        assert payloads(a.due("L", "out", 10)) == [1]
        failing, renewal = secrets.randbelow(2**31), secrets.randbelow(2**31)
        a._q.fail_update = held_in(a._q.fail_update, failing)
        a._q.renew = held_in(a._q.renew, renewal)
        with admin(postgres_dsn) as holder:
            holder.execute("SELECT pg_advisory_lock(%s), pg_advisory_lock(%s)", [failing, renewal])
            fail = threading.Thread(target=a.fail, args=("L", "out", ids, "x", lambda n: 0.0))
            fail.start()
            renewing = threading.Thread(target=a.renew_leases)
            release: threading.Timer | None = None
            try:
                wait_until(
                    lambda: waits_on(holder, "advisory", f"lock_shared({failing})"),
                    timeout=30,
                    message="the fail to hold row 1",
                )
                renewing.start()
                # The renewal waits for the fail: in the database for its row (before the
                # fix) or in this process (since).
                gate = getattr(a, "_gate", None)
                wait_until(
                    lambda: (
                        waits_on(holder, "transactionid", "lease_until = now()")
                        or (gate is not None and gate._keepers_waiting > 0)
                    ),
                    timeout=30,
                    message="the renewal to wait for the fail",
                )
                holder.execute("SELECT pg_advisory_unlock(%s)", [failing])
                fail.join(30)
                wait_until(
                    lambda: waits_on(holder, "advisory", f"lock_shared({renewal})"),
                    timeout=30,
                    message="the renewal to run",
                )
                release = threading.Timer(0.5, holder.execute, ["SELECT pg_advisory_unlock_all()"])
                release.start()
                assert payloads(a.due("L", "out", 10)) == [1]  # free and due: not skipped
            finally:
                if release is None:
                    holder.execute("SELECT pg_advisory_unlock_all()")
                else:
                    release.join(30)
                fail.join(30)
                if renewing.ident is not None:  # started
                    renewing.join(30)


class TestTicks:
    def test_each_tick_is_claimed_once(self, make_postgres: Callable[..., PostgresQueue]) -> None:
        queues = [make_postgres() for _ in range(3)]
        results: list[bool] = []
        barrier = threading.Barrier(3)

        def claim(queue: PostgresQueue) -> None:
            barrier.wait(10)
            results.append(queue.claim_tick("L", 100.0))

        threads = [threading.Thread(target=claim, args=(q,)) for q in queues]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert sorted(results) == [False, False, True]
        assert not queues[0].claim_tick("L", 100.0)
        assert not queues[1].claim_tick("L", 90.0)  # an older tick: never again
        assert queues[1].claim_tick("L", 110.0)
        assert queues[2].claim_tick("M", 100.0)  # per link


class TestReconnect:
    def test_killed_connections_are_retried_and_logged_once(
        self,
        make_postgres: Callable[..., PostgresQueue],
        postgres_dsn: str,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        """Connections terminated by the server (as on a restart): the call succeeds."""
        queue = make_postgres(max_connections=2)
        queue.enqueue("L", recs(1), [["a"]])
        caplog.set_level(logging.WARNING, "databay_bus.queue.postgres")
        with admin(postgres_dsn) as conn:
            killed = conn.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE application_name = %s",
                [f"databay_bus {queue.node}"],
            ).fetchone()
        assert killed is not None and killed[0] >= 1
        assert payloads(queue.due("L", "a", 10)) == [1]
        lost = [r for r in caplog.records if "lost the connection" in r.getMessage()]
        back = [r for r in caplog.records if "connected to" in r.getMessage()]
        assert len(lost) == 1 and len(back) == 1

    def test_reconnect_timeout_raises_connection_error(
        self, make_postgres: Callable[..., PostgresQueue], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        queue = make_postgres(reconnect_timeout=0.3)

        def broken(*args: object, **kwargs: object) -> None:
            raise psycopg.OperationalError("server closed the connection unexpectedly")

        monkeypatch.setattr(queue._pool, "connection", broken)
        with pytest.raises(QueueConnectionError, match="no working connection"):
            queue.waiting("L")

    def test_closed_queue_stops_retrying(self, make_postgres: Callable[..., PostgresQueue]) -> None:
        queue = make_postgres()
        queue.close()
        with pytest.raises(QueueError, match="closed"):
            queue.due("L", "a", 1)
