"""Planners: BasePlanner and the two built-in schedulers."""

from __future__ import annotations

from databay_bus.planners.aps_planner import APSPlanner, ApsPlanner
from databay_bus.planners.base import BasePlanner, PlannerState
from databay_bus.planners.schedule_planner import ScheduleIntervalError, SchedulePlanner

__all__ = [
    "APSPlanner",
    "ApsPlanner",
    "BasePlanner",
    "PlannerState",
    "ScheduleIntervalError",
    "SchedulePlanner",
]
