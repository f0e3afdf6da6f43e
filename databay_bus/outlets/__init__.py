"""Outlets: the base class and the built-in consumers.

``MongoOutlet`` is imported on first use, so ``import databay_bus`` never needs pymongo;
without it, using ``MongoOutlet`` raises :class:`~databay_bus.errors.MissingDependencyError`
naming the ``mongo`` extra.
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
    from databay_bus.outlets.mongo_outlet import MongoOutlet

__all__ = [
    "CsvOutlet",
    "FileOutlet",
    "MetadataKey",
    "MongoOutlet",
    "NullOutlet",
    "Outlet",
    "PrintOutlet",
]

__getattr__, __dir__ = lazy_attributes(
    globals(), {"MongoOutlet": "databay_bus.outlets.mongo_outlet"}
)
