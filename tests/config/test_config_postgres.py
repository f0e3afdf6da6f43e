"""``[queue] url = "postgresql://..."``: a PostgresQueue from a pipeline file."""

from __future__ import annotations

import pytest
from pipeline_nodes import LINK

from databay_bus.config import loads
from databay_bus.errors import ConfigError
from databay_bus.queue import MemoryQueue, PostgresQueue


def test_url_builds_a_postgres_queue_with_its_timings(postgres_dsn: str, pg_schema: str) -> None:
    text = f"""
    [queue]
    url = "${{PG_URL}}"
    schema = "{pg_schema}"
    lease = "20s"
    renew_interval = "5s"
    poll_interval = "500ms"
    wakeups = "poll"
    {LINK}
    """
    pipeline = loads(text, env={"PG_URL": postgres_dsn})
    try:
        queue = pipeline.links[0].queue
        assert isinstance(queue, PostgresQueue) and queue.schema == pg_schema
        assert (queue.lease, queue.renew_interval, queue.poll_interval) == (20.0, 5.0, 0.5)
        assert queue.wakeups == "poll"
    finally:
        pipeline.close()


def test_dry_run_checks_the_arguments_without_connecting() -> None:
    text = '[queue]\nurl = "postgresql://bus:${PW}@198.51.100.1:1/db"\n' + LINK
    pipeline = loads(text, dry_run=True, env={"PW": "secret"})
    assert isinstance(pipeline.links[0].queue, MemoryQueue)
    pipeline.close()
    bad = '[queue]\nurl = "postgresql://x/db"\nlease = "5s"\nrenew_interval = "9s"\n' + LINK
    with pytest.raises(ConfigError, match=r"renew_interval .* must be shorter than lease"):
        loads(bad, dry_run=True)


def test_an_unreachable_server_is_a_config_error_with_the_password_masked() -> None:
    text = '[queue]\nurl = "postgresql://bus:${PW}@127.0.0.1:1/db"\nconnect_timeout = 2\n' + LINK
    with pytest.raises(ConfigError) as info:
        loads(text, env={"PW": "hunter2"})
    assert "hunter2" not in str(info.value) and "cannot connect" in str(info.value)
