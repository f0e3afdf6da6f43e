"""Inlets: the base class and the built-in producers.

``HttpInlet``, ``RedisStreamInlet`` and ``AmqpInlet`` are imported on first use, so ``import
databay_bus`` never needs aiohttp, redis or aio-pika; without its package, using one raises
:class:`~databay_bus.errors.MissingDependencyError` naming its extra (``http``, ``redis``,
``amqp``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from databay_bus._lazy import lazy_attributes
from databay_bus.inlets.base import Inlet
from databay_bus.inlets.file_inlet import FileInlet, FileInletMode
from databay_bus.inlets.null_inlet import NullInlet
from databay_bus.inlets.random_int_inlet import RandomIntInlet

if TYPE_CHECKING:
    from databay_bus.inlets.amqp_inlet import AmqpInlet
    from databay_bus.inlets.http_inlet import HttpInlet
    from databay_bus.inlets.redis_inlet import RedisStreamInlet

__all__ = [
    "AmqpInlet",
    "FileInlet",
    "FileInletMode",
    "HttpInlet",
    "Inlet",
    "NullInlet",
    "RandomIntInlet",
    "RedisStreamInlet",
]

__getattr__, __dir__ = lazy_attributes(
    globals(),
    {
        "AmqpInlet": "databay_bus.inlets.amqp_inlet",
        "HttpInlet": "databay_bus.inlets.http_inlet",
        "RedisStreamInlet": "databay_bus.inlets.redis_inlet",
    },
)
