"""Databay's ``databay.inlet`` import path; the class lives in :mod:`databay_bus.inlets.base`."""

from __future__ import annotations

from databay_bus.inlets.base import Inlet

__all__ = ["Inlet"]
