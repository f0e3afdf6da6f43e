"""Databay's ``databay.base_planner`` import path; see :mod:`databay_bus.planners.base`."""

from __future__ import annotations

from databay_bus.planners.base import BasePlanner

__all__ = ["BasePlanner"]
