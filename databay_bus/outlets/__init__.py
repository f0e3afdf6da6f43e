"""Outlets: the base class and the built-in consumers.

``MongoOutlet``, ``RedisStreamOutlet`` and ``AmqpOutlet`` are imported on first use, so
``import databay_bus`` never needs pymongo, redis or aio-pika; without its package, using one
raises :class:`~databay_bus.errors.MissingDependencyError` naming its extra (``mongo``,
``redis``, ``amqp``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from databay_bus._lazy import lazy_attributes
from databay_bus.outlets.base import MetadataKey, Outlet
from databay_bus.outlets.csv_outlet import CsvOutlet
from databay_bus.outlets.file_outlet import FileOutlet
from databay_bus.outlets.null_outlet import NullOutlet
from databay_bus.outlets.print_outlet import PrintOutlet

if TYPE_CHECKING:
    from databay_bus.outlets.amqp_outlet import AmqpOutlet
    from databay_bus.outlets.mongo_outlet import MongoOutlet
    from databay_bus.outlets.redis_outlet import RedisStreamOutlet

__all__ = [
    "AmqpOutlet",
    "CsvOutlet",
    "FileOutlet",
    "MetadataKey",
    "MongoOutlet",
    "NullOutlet",
    "Outlet",
    "PrintOutlet",
    "RedisStreamOutlet",
]

__getattr__, __dir__ = lazy_attributes(
    globals(),
    {
        "AmqpOutlet": "databay_bus.outlets.amqp_outlet",
        "MongoOutlet": "databay_bus.outlets.mongo_outlet",
        "RedisStreamOutlet": "databay_bus.outlets.redis_outlet",
    },
)
