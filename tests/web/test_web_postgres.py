"""Several processes sharing a PostgresQueue: any interface shows every process and its runs.

PostgreSQL comes from the suite's fixtures (tests/pg_fixtures.py): skipped without a server,
failed when ``DATABAY_BUS_REQUIRE_POSTGRES=1``.
"""

from __future__ import annotations

from typing import Any

import pytest
from web_fakes import Client, Numbers, Switch

from databay_bus import Link
from databay_bus.planners import ApsPlanner
from databay_bus.web import WebInterface
from databay_bus.web.history import HistoryObserver, PostgresHistory

pytest.importorskip("psycopg")


def _process(dsn: str, schema: str) -> tuple[Any, ApsPlanner, Link]:
    from databay_bus.queue import PostgresQueue

    queue = PostgresQueue(dsn, schema=schema, max_connections=2)
    link = Link(
        [Numbers()], [Switch("sink")], 3600, tags=["numbers"], queue=queue, immediate_transfer=False
    )
    return queue, ApsPlanner([link], ignore_exceptions=True), link


def test_an_interface_shows_every_process_and_their_transfers(
    postgres_dsn: str, pg_schema: str
) -> None:
    dsn, name = postgres_dsn, pg_schema
    queue_a, planner_a, link_a = _process(dsn, name)
    queue_b, planner_b, link_b = _process(dsn, name)
    web = WebInterface(planner_a)  # process A serves; B only records its runs
    history_b = PostgresHistory(queue_b)
    planner_b.add_observer(HistoryObserver(history_b))
    client = Client(web)
    try:
        assert isinstance(web.history, PostgresHistory)
        link_a.transfer()
        link_b.transfer()
        link_b.transfer()
        planner_a.flush_observers(10)
        planner_b.flush_observers(10)
        nodes = client.get("/api/nodes").json()["nodes"]
        assert {n["node"] for n in nodes} == {queue_a.node, queue_b.node}
        assert all(n["alive"] for n in nodes)
        runs = client.get("/api/history").json()["runs"]
        assert sorted(r["process"] for r in runs) == sorted(
            [queue_a.node, queue_b.node, queue_b.node]
        )
        assert "Processes sharing the queue" in client.get("/").text
    finally:
        client.close()
        web.close()
        for queue in (queue_a, queue_b):
            queue.close()
