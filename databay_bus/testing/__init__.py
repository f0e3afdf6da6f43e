"""Helpers for testing inlets, outlets and pipelines built on databay_bus."""

from __future__ import annotations

from databay_bus.testing.clock import FakeClock

__all__ = ["FakeClock"]
