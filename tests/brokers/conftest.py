"""The broker servers of the machine: RabbitMQ and Redis, used for real.

A test needing one is skipped (with the reason) when it does not answer, unless
``DATABAY_BUS_REQUIRE_SERVICES=1`` (set by ``.ci/run``): then its absence fails the test.
``DATABAY_BUS_AMQP_URL`` and ``DATABAY_BUS_REDIS_URL`` point elsewhere.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator

import pytest

AMQP_URL = os.environ.get("DATABAY_BUS_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
REDIS_URL = os.environ.get("DATABAY_BUS_REDIS_URL", "redis://127.0.0.1:6379/0")


def _absent(service: str, reason: str) -> None:
    message = f"{service} not reachable ({reason})"
    if os.environ.get("DATABAY_BUS_REQUIRE_SERVICES") == "1":
        pytest.fail(f"{message}; DATABAY_BUS_REQUIRE_SERVICES=1 requires it")
    pytest.skip(f"{message}; set DATABAY_BUS_REQUIRE_SERVICES=1 to make this a failure")


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The Redis server's URL, once it answered PING."""
    try:
        import redis
    except ImportError as exc:
        _absent("Redis", f"the redis package is missing: {exc}")
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=3)
    try:
        client.ping()
    except redis.RedisError as exc:
        _absent(f"Redis at {REDIS_URL}", str(exc))
    finally:
        client.close()
    return REDIS_URL


@pytest.fixture(scope="session")
def amqp_url() -> str:
    """The RabbitMQ server's URL, once a connection opened."""
    try:
        import aio_pika
    except ImportError as exc:
        _absent("RabbitMQ", f"aio-pika is missing: {exc}")

    async def probe() -> None:
        connection = await aio_pika.connect(AMQP_URL, timeout=5)
        await connection.close()

    try:
        asyncio.run(probe())
    except Exception as exc:
        _absent("RabbitMQ at 127.0.0.1:5672", f"{type(exc).__name__}: {exc}")
    return AMQP_URL


@pytest.fixture
def stream(redis_url: str) -> Iterator[str]:
    """A fresh stream key, deleted afterwards."""
    import redis

    key = f"databay_bus_test_{uuid.uuid4().hex[:10]}"
    yield key
    client = redis.Redis.from_url(redis_url)
    client.delete(key)
    client.close()


@pytest.fixture
def amqp_queue(amqp_url: str) -> Iterator[str]:
    """A fresh queue name, deleted afterwards."""
    import aio_pika

    name = f"databay_bus_test_{uuid.uuid4().hex[:10]}"
    yield name

    async def delete() -> None:
        connection = await aio_pika.connect(amqp_url, timeout=5)
        channel = await connection.channel()
        await channel.queue_delete(name)
        await connection.close()

    asyncio.run(delete())
