"""``databay-bus queue`` and ``cursor`` on a PostgresQueue: ``--queue DSN --schema NAME``."""

from __future__ import annotations

import json

import pytest

from databay_bus import Record
from databay_bus.cli import main
from databay_bus.queue import PostgresQueue


def test_queue_commands_take_a_dsn(
    postgres_dsn: str, pg_schema: str, capsys: pytest.CaptureFixture[str]
) -> None:
    queue = PostgresQueue(postgres_dsn, schema=pg_schema)
    target = ["--queue", postgres_dsn, "--schema", pg_schema]
    try:
        ids = queue.enqueue("L", [Record(n, {}) for n in (1, 2, 3)], [["out"]] * 3)
        queue.fail("L", "out", ids[:1], "boom", lambda attempts: None)
        assert main(["queue", "stats", *target, "--json"]) == 0
        stats = json.loads(capsys.readouterr().out)
        assert stats["records"] == 3 and stats["outlets"][0]["dead"] == 1
        assert main(["queue", "export", *target, "--what", "pending"]) == 0
        pending = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
        assert [row["payload"] for row in pending] == [2, 3]
        assert [r.payload for r in queue.due("L", "out", 10)] == [2, 3]  # export claimed none
        assert main(["queue", "replay", *target]) == 0
        assert "replayed 1" in capsys.readouterr().out
    finally:
        queue.close()  # its due() made it a live node; closed, it leaves the registry
    assert main(["cursor", "set", *target, "--link", "L", "--inlet", "in", '{"at": 7}']) == 0
    assert main(["cursor", "list", *target, "--json"]) == 0
    assert '"at": 7' in capsys.readouterr().out


def test_cursor_changes_are_refused_while_a_node_is_alive(
    postgres_dsn: str, pg_schema: str, capsys: pytest.CaptureFixture[str]
) -> None:
    running = PostgresQueue(postgres_dsn, schema=pg_schema)
    try:
        running.renew_leases()  # its heartbeat: a pipeline runs on this queue
        target = ["--queue", postgres_dsn, "--schema", pg_schema]
        assert main(["cursor", "reset", *target, "--link", "L", "--inlet", "in"]) == 1
        assert "in use" in capsys.readouterr().err
    finally:
        running.close()


def test_an_unreachable_dsn_is_reported_with_the_password_masked(
    capsys: pytest.CaptureFixture[str],
) -> None:
    dsn = "postgresql://bus:hunter2@127.0.0.1:1/db?connect_timeout=2"
    assert main(["queue", "stats", "--queue", dsn]) == 1
    err = capsys.readouterr().err
    assert "cannot connect" in err and "hunter2" not in err and "bus:***@" in err


@pytest.mark.parametrize(
    "command", [["queue", "stats"], ["queue", "dead"], ["queue", "export"], ["cursor", "list"]]
)
def test_inspecting_a_schema_that_holds_no_queue_creates_nothing(
    postgres_dsn: str, pg_schema: str, command: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    """A mistyped --schema is an error, not a new empty queue made by a read-only command."""
    import psycopg

    assert main([*command, "--queue", postgres_dsn, "--schema", pg_schema]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"no databay_bus queue in schema {pg_schema!r}" in err[0], err
    with psycopg.connect(postgres_dsn) as conn:
        found = conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", [pg_schema])
        assert found.fetchone() is None


def test_status_of_a_dsn_points_at_the_web_interface(
    postgres_dsn: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A PostgresQueue records no status: saying 'no pipeline recorded one' would mislead."""
    assert main(["status", "--queue", postgres_dsn]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--url" in err[0] and "SqliteQueue" in err[0], err
