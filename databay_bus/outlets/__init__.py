"""Outlets: the base class and the built-in consumers."""

from __future__ import annotations

from databay_bus.outlets.base import MetadataKey, Outlet

__all__ = ["MetadataKey", "Outlet"]
