"""Databay's ``databay.misc`` import path (testers live in :mod:`databay_bus.testing`)."""

from __future__ import annotations

__all__: list[str] = []
