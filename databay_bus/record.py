"""Databay's ``databay.record`` import path; the class lives in :mod:`databay_bus.records`."""

from __future__ import annotations

from databay_bus.records.record import Record

__all__ = ["Record"]
