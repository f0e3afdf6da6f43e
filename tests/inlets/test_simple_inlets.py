"""NullInlet and RandomIntInlet, and how databay_bus.inlets exports the built-ins."""

from __future__ import annotations

import random

import pytest

import databay_bus.inlets as inlets
from databay_bus.errors import ConfigurationError
from databay_bus.inlets import NullInlet, RandomIntInlet
from databay_bus.link import Update

UPDATE = Update([], 0)


def test_null_inlet_pulls_nothing() -> None:
    assert NullInlet().pull(UPDATE) == []


def test_random_int_within_inclusive_bounds() -> None:
    inlet = RandomIntInlet(3, 5, rng=random.Random(7))
    values = {inlet.pull(UPDATE) for _ in range(200)}
    assert values == {3, 4, 5}


def test_random_int_defaults_and_single_value() -> None:
    inlet = RandomIntInlet()
    assert (inlet.min, inlet.max) == (0, 100)
    assert RandomIntInlet(4, 4).pull(UPDATE) == 4


@pytest.mark.parametrize(("low", "high"), [(5, 1), (1.5, 3), ("0", 3), (True, 3)])
def test_random_int_bad_bounds(low: object, high: object) -> None:
    with pytest.raises(ConfigurationError, match="RandomIntInlet"):
        RandomIntInlet(low, high)  # type: ignore[arg-type]


def test_every_builtin_exported() -> None:
    for name in ("FileInlet", "FileInletMode", "HttpInlet", "Inlet", "NullInlet", "RandomIntInlet"):
        assert name in inlets.__all__
        assert getattr(inlets, name).__name__ == name
    assert "HttpInlet" in dir(inlets)
    with pytest.raises(AttributeError, match="NoSuchInlet"):
        inlets.NoSuchInlet  # noqa: B018
