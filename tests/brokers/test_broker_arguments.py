"""Broker nodes check their arguments at construction, naming the node and the value
(nothing connects: no server is needed)."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

import pytest

from databay_bus.errors import ArgumentTypeError, ConfigurationError
from databay_bus.inlets import AmqpInlet, RedisStreamInlet
from databay_bus.outlets import AmqpOutlet, RedisStreamOutlet

WRONG_TYPES: list[tuple[Callable[[], Any], str]] = [
    (lambda: RedisStreamInlet(5, "g"), "RedisStreamInlet: stream must be a non-empty str, got 5"),
    (lambda: RedisStreamInlet("s", None), "group must be a non-empty str, got None"),
    (lambda: RedisStreamInlet("s", "g", consumer=7), "consumer must be a non-empty str or None"),
    (lambda: RedisStreamInlet("s", "g", start_id=0), "start_id must be a non-empty str, got 0"),
    (lambda: RedisStreamOutlet(None), "RedisStreamOutlet: stream must be a non-empty str"),
    (lambda: RedisStreamOutlet("s", maxlen="10"), "maxlen must be an int >= 1 or None, got '10'"),
    (lambda: RedisStreamOutlet("s", url=5), "url must be a non-empty str, got 5"),
    (lambda: AmqpInlet(5), "AmqpInlet: queue must be a non-empty str, got 5"),
    (lambda: AmqpInlet("q", url=5), "AmqpInlet: url must be a non-empty str, got 5"),
    (lambda: AmqpInlet("q", declare="no"), "declare must be True or False, got 'no'"),
    (lambda: AmqpInlet("q", timeout="10"), "timeout must be finite seconds > 0"),
    (lambda: AmqpOutlet(5), "AmqpOutlet: routing_key must be a str, got 5 (int)"),
    (lambda: AmqpOutlet("q", exchange=None), "exchange must be a str, got None"),
    (lambda: AmqpOutlet("q", declare_queue=3), "declare_queue must be a non-empty str or None"),
]

BAD_VALUES: list[tuple[Callable[[], Any], str]] = [
    (lambda: RedisStreamInlet("", "g"), "RedisStreamInlet: stream must be a non-empty str"),
    (lambda: RedisStreamInlet("s", "g", url="http://x"), "url must be a redis://, rediss:// or"),
    (lambda: RedisStreamOutlet("s", maxlen=0), "maxlen must be an int >= 1 or None, got 0"),
    (lambda: RedisStreamOutlet("s", maxlen=-1), "maxlen must be an int >= 1 or None, got -1"),
    (lambda: AmqpInlet("q", url="redis://x"), "url must be an amqp:// or amqps:// URL"),
    (lambda: AmqpInlet("q", timeout=0), "timeout must be finite seconds > 0"),
    (lambda: AmqpOutlet("q", timeout=math.nan), "timeout must be finite seconds > 0"),
    (lambda: AmqpOutlet("q", url="amqp//x"), "url must be an amqp:// or amqps:// URL"),
]


@pytest.mark.parametrize(("make", "message"), WRONG_TYPES)
def test_a_wrong_type_is_a_type_error(make: Callable[[], Any], message: str) -> None:
    with pytest.raises(ArgumentTypeError, match=re.escape(message)):
        make()


@pytest.mark.parametrize(("make", "message"), BAD_VALUES)
def test_a_bad_value_is_refused(make: Callable[[], Any], message: str) -> None:
    with pytest.raises(ConfigurationError, match=re.escape(message)) as caught:
        make()
    assert not isinstance(caught.value, TypeError)


def test_good_arguments_are_kept() -> None:
    outlet = RedisStreamOutlet("s", url="rediss://h:6380/1", maxlen=1000)
    assert outlet.maxlen == 1000 and outlet.url == "rediss://h:6380/1"
    inlet = AmqpInlet("q", url="amqps://u:p@h/vhost", timeout=2, declare=False)
    assert inlet.timeout == 2.0 and inlet.declare is False
    assert RedisStreamInlet("s", "g", url="unix:///run/redis.sock").url.startswith("unix://")
