"""Databay's ``databay.support.buffers`` import path; see :mod:`databay_bus.processors.buffer`."""

from __future__ import annotations

from databay_bus.processors.buffer import Buffer

__all__ = ["Buffer"]
