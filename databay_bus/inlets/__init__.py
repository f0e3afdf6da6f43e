"""Inlets: the base class and the built-in producers."""

from __future__ import annotations

from databay_bus.inlets.base import Inlet

__all__ = ["Inlet"]
