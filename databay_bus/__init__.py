"""databay_bus: scheduled data transfer from inlets to outlets, with a persistent record queue.

Databay's public API under the same names: change ``databay`` to ``databay_bus`` in imports.
"""

from __future__ import annotations

from databay_bus import errors, logs
from databay_bus.inlets.base import Inlet
from databay_bus.link import Link, Update
from databay_bus.outlets.base import Outlet
from databay_bus.planners.base import BasePlanner
from databay_bus.processors import Buffer
from databay_bus.records import MetadataKey, Record
from databay_bus.schedules import Cron

__version__ = "0.1.0"

__all__ = [
    "BasePlanner",
    "Buffer",
    "Cron",
    "Inlet",
    "Link",
    "MetadataKey",
    "Outlet",
    "Record",
    "Update",
    "__version__",
    "errors",
    "logs",
]

logs.install_default_handler()
