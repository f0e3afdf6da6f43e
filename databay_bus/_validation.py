"""Argument checks shared by links, planners and nodes, with uniform messages."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any, TypeVar

from databay_bus.errors import ConfigurationError, describe

__all__ = [
    "as_callables",
    "as_list",
    "as_tags",
    "coerce_interval",
    "optional_positive_int",
    "optional_seconds",
    "positive_int",
    "seconds",
]

T = TypeVar("T")


def coerce_interval(value: Any, owner: object) -> timedelta:
    """Return ``value`` (a timedelta or a number of seconds) as a positive timedelta."""
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = float(value)
        if not math.isfinite(seconds):
            raise ConfigurationError(f"{owner}: interval must be finite, got {describe(value)}")
    else:
        raise ConfigurationError(
            f"{owner}: interval must be a timedelta or a number of seconds, got {describe(value)}"
        )
    if seconds <= 0:
        raise ConfigurationError(f"{owner}: interval must be positive, got {describe(value)}")
    return value if isinstance(value, timedelta) else timedelta(seconds=seconds)


def as_tags(value: Any, owner: object) -> list[str]:
    """Return ``value`` (None, a string or a sequence of strings) as a new list of strings."""
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, (list, tuple)) and all(isinstance(tag, str) for tag in value):
        return list(value)
    raise ConfigurationError(
        f"{owner}: tags must be a string or a list of strings, got {describe(value)}"
    )


def as_list(value: T | Sequence[T] | None) -> list[T]:
    """Return None as [], a list or tuple as a new list, anything else as a one-item list."""
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return list(value)
    return [value]  # type: ignore[list-item]


def as_callables(value: Any, what: str, owner: object) -> list[Callable[..., Any]]:
    """Return ``value`` (None, a callable or a list of them) as a list of callables."""
    items = as_list(value)
    for index, item in enumerate(items):
        if not callable(item):
            raise ConfigurationError(
                f"{owner}: {what}[{index}] must be callable, got {describe(item)}"
            )
    return items


def positive_int(value: Any, what: str, owner: object) -> int:
    """Return ``value`` if it is an int >= 1 (not a bool)."""
    return _positive_int(value, what, owner, "an int >= 1")


def optional_positive_int(value: Any, what: str, owner: object) -> int | None:
    """Return ``value`` if it is None or an int >= 1 (not a bool)."""
    return None if value is None else _positive_int(value, what, owner, "an int >= 1 or None")


def seconds(value: Any, what: str, owner: object) -> float:
    """Return ``value`` (seconds >= 0 or a timedelta) as float seconds."""
    return _seconds(value, what, owner, "seconds >= 0 or a timedelta")


def optional_seconds(value: Any, what: str, owner: object) -> float | None:
    """Return None, or ``value`` (seconds >= 0 or a timedelta) as float seconds."""
    if value is None:
        return None
    return _seconds(value, what, owner, "seconds >= 0, a timedelta or None")


def _positive_int(value: Any, what: str, owner: object, expected: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigurationError(f"{owner}: {what} must be {expected}, got {describe(value)}")
    return value


def _seconds(value: Any, what: str, owner: object, expected: str) -> float:
    if isinstance(value, timedelta):
        value = value.total_seconds()
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise ConfigurationError(f"{owner}: {what} must be {expected}, got {describe(value)}")
    return float(value)
