"""Helpers for testing inlets, outlets and pipelines built on databay_bus.

* :class:`InletTester` / :class:`OutletTester`: subclass them to run the contract tests on
  your own nodes (pytest or unittest).
* :class:`FakeClock`: a clock that moves only when told to.
"""

from __future__ import annotations

from databay_bus.testing.clock import FakeClock
from databay_bus.testing.inlet_tester import InletTester, for_each_inlet
from databay_bus.testing.outlet_tester import OutletTester, for_each_outlet

__all__ = ["FakeClock", "InletTester", "OutletTester", "for_each_inlet", "for_each_outlet"]
