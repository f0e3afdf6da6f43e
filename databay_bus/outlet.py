"""Databay's ``databay.outlet`` import path; the classes live in :mod:`databay_bus.outlets.base`."""

from __future__ import annotations

from databay_bus.outlets.base import MetadataKey, Outlet

__all__ = ["MetadataKey", "Outlet"]
