"""Databay's ``databay.misc.logs`` import path; see :mod:`databay_bus.logs`."""

from __future__ import annotations

from databay_bus.logs import ISO8601Formatter

__all__ = ["ISO8601Formatter"]
