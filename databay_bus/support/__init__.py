"""Databay's ``databay.support`` import path (Buffer lives in :mod:`databay_bus.processors`)."""

from __future__ import annotations

__all__: list[str] = []
