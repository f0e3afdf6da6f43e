"""Fixtures shared by the planner tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from databay_bus.planners.base import BasePlanner


@pytest.fixture
def planners() -> Iterator[list[BasePlanner]]:
    """Planners made by a test; each is shut down (waiting for its transfers) afterwards."""
    made: list[BasePlanner] = []
    yield made
    for planner in made:
        planner.shutdown(wait=True)
