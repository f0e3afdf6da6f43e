"""Inlets: the base class and the built-in producers.

``HttpInlet`` is imported on first use, so ``import databay_bus`` never needs aiohttp; without
it, using ``HttpInlet`` raises :class:`~databay_bus.errors.MissingDependencyError` naming the
``http`` extra.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from databay_bus._lazy import lazy_attributes
from databay_bus.inlets.base import Inlet
from databay_bus.inlets.file_inlet import FileInlet, FileInletMode
from databay_bus.inlets.null_inlet import NullInlet
from databay_bus.inlets.random_int_inlet import RandomIntInlet

if TYPE_CHECKING:
    from databay_bus.inlets.http_inlet import HttpInlet

__all__ = ["FileInlet", "FileInletMode", "HttpInlet", "Inlet", "NullInlet", "RandomIntInlet"]

__getattr__, __dir__ = lazy_attributes(globals(), {"HttpInlet": "databay_bus.inlets.http_inlet"})
