"""Databay's ``databay.misc.inlet_tester`` import path; see :mod:`databay_bus.testing`."""

from __future__ import annotations

from databay_bus.testing.inlet_tester import InletTester, for_each_inlet

__all__ = ["InletTester", "for_each_inlet"]
