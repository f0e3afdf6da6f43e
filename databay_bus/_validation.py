"""Argument checks shared by links, planners and nodes, with uniform messages.

One helper per kind of check. Each names the owner (``owner`` is the object or a short text
such as ``"RetryPolicy"``) and the bad value; a value of the wrong type raises
:class:`~databay_bus.errors.ArgumentTypeError` (a ``TypeError`` and a ``ValueError``), a value of
the right type that cannot work raises :class:`~databay_bus.errors.ConfigurationError`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from datetime import timedelta
from typing import Any, TypeVar

from databay_bus.errors import ArgumentTypeError, ConfigurationError, describe

__all__ = [
    "as_bool",
    "as_callables",
    "as_list",
    "as_tags",
    "coerce_interval",
    "integer",
    "mapping",
    "number",
    "optional_callable",
    "optional_integer",
    "optional_mapping",
    "optional_name",
    "optional_positive_int",
    "optional_positive_seconds",
    "optional_seconds",
    "optional_text",
    "positive_int",
    "positive_seconds",
    "seconds",
    "text",
    "url",
]

T = TypeVar("T")


def coerce_interval(
    value: Any, owner: object, expected: str = "a timedelta or a number of seconds"
) -> timedelta:
    """Return ``value`` (a timedelta or a number of seconds) as a positive timedelta.

    ``expected`` is what the message says the argument may be (a Link also takes a Cron).
    """
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = float(value)
        if not math.isfinite(seconds):
            raise ConfigurationError(f"{owner}: interval must be finite, got {describe(value)}")
    else:
        hint = ""
        if isinstance(value, str) and value.strip().lower().startswith("cron:"):
            hint = f"; in Python write Cron({value.strip()[5:].strip()!r})"
        raise ArgumentTypeError(
            f"{owner}: interval must be {expected}, got {describe(value)}{hint}"
        )
    if seconds <= 0:
        raise ConfigurationError(f"{owner}: interval must be positive, got {describe(value)}")
    return value if isinstance(value, timedelta) else timedelta(seconds=seconds)


def as_tags(value: Any, owner: object) -> list[str]:
    """Return ``value`` (None, a string or a sequence of strings) as a new list of strings."""
    if value is None:
        return []
    tags = [value] if isinstance(value, str) else value
    if not isinstance(tags, (list, tuple)) or not all(isinstance(tag, str) for tag in tags):
        raise ArgumentTypeError(
            f"{owner}: tags must be a string or a list of strings, got {describe(value)}"
        )
    if not all(tags):
        raise ConfigurationError(f"{owner}: a tag must not be empty, got {describe(value)}")
    return list(tags)


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
            raise ArgumentTypeError(
                f"{owner}: {what}[{index}] must be callable, got {describe(item)}"
            )
    return items


def integer(
    value: Any, what: str, owner: object, low: int | None = None, high: int | None = None
) -> int:
    """Return ``value`` if it is an int (not a bool), within ``low`` and ``high`` when given."""
    return _integer(value, what, owner, low, "", high)


def optional_integer(value: Any, what: str, owner: object, low: int | None = None) -> int | None:
    """Return ``value`` if it is None or an int (not a bool), at least ``low`` when given."""
    return None if value is None else _integer(value, what, owner, low, " or None")


def positive_int(value: Any, what: str, owner: object) -> int:
    """Return ``value`` if it is an int >= 1 (not a bool)."""
    return _integer(value, what, owner, 1, "")


def optional_positive_int(value: Any, what: str, owner: object) -> int | None:
    """Return ``value`` if it is None or an int >= 1 (not a bool)."""
    return optional_integer(value, what, owner, 1)


def seconds(value: Any, what: str, owner: object) -> float:
    """Return ``value`` (finite seconds >= 0 or a timedelta) as float seconds."""
    return _seconds(value, what, owner, "finite seconds >= 0 or a timedelta")


def optional_seconds(value: Any, what: str, owner: object) -> float | None:
    """Return None, or ``value`` (finite seconds >= 0 or a timedelta) as float seconds."""
    if value is None:
        return None
    return _seconds(value, what, owner, "finite seconds >= 0, a timedelta or None")


def optional_positive_seconds(value: Any, what: str, owner: object) -> float | None:
    """Return None, or ``value`` (finite seconds > 0 or a timedelta) as float seconds
    (a timeout: zero would fail every time)."""
    if value is None:
        return None
    expected = "finite seconds > 0, a timedelta or None"
    result = _seconds(value, what, owner, expected)
    if result == 0:
        raise ConfigurationError(f"{owner}: {what} must be {expected}, got {describe(value)}")
    return result


def positive_seconds(value: Any, what: str, owner: object) -> float:
    """Return ``value`` (finite seconds > 0 or a timedelta) as float seconds (a timeout)."""
    expected = "finite seconds > 0 or a timedelta"
    result = _seconds(value, what, owner, expected)
    if result == 0:
        raise ConfigurationError(f"{owner}: {what} must be {expected}, got {describe(value)}")
    return result


def text(value: Any, what: str, owner: object, empty: bool = False) -> str:
    """Return ``value`` if it is a string, non-empty unless ``empty``."""
    expected = "a str" if empty else "a non-empty str"
    if not isinstance(value, str):
        raise ArgumentTypeError(f"{owner}: {what} must be {expected}, got {describe(value)}")
    if not value and not empty:
        raise ConfigurationError(f"{owner}: {what} must be {expected}, got {describe(value)}")
    return value


def optional_text(value: Any, what: str, owner: object) -> str | None:
    """Return ``value`` if it is None or a non-empty string."""
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        error = ConfigurationError if isinstance(value, str) else ArgumentTypeError
        raise error(f"{owner}: {what} must be a non-empty str or None, got {describe(value)}")
    return value


def url(value: Any, what: str, owner: object, schemes: Sequence[str]) -> str:
    """Return ``value`` if it is a string starting with one of ``schemes`` (``'redis'`` ...).

    The message shows only the scheme part of a bad URL, never a password it may hold.
    """
    checked = text(value, what, owner)
    scheme, found, _ = checked.partition("://")
    if not found or scheme.lower() not in schemes:
        names = [f"{name}://" for name in schemes]
        listed = names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"
        article = "an" if listed[0] in "aeiou" else "a"
        raise ConfigurationError(
            f"{owner}: {what} must be {article} {listed} URL, got one starting "
            f"{checked[: len(scheme) + 3]!r}"
        )
    return checked


def optional_callable(value: Any, what: str, owner: object) -> Callable[..., Any] | None:
    """Return ``value`` if it is None or callable."""
    if value is None:
        return None
    if not callable(value):
        raise ArgumentTypeError(f"{owner}: {what} must be callable or None, got {describe(value)}")
    checked: Callable[..., Any] = value
    return checked


def as_bool(value: Any, what: str, owner: object) -> bool:
    """Return ``value`` if it is a real bool: ``'False'`` or ``'no'`` would count as true."""
    if not isinstance(value, bool):
        raise ArgumentTypeError(f"{owner}: {what} must be True or False, got {describe(value)}")
    return value


def number(
    value: Any, what: str, owner: object, low: float | None = None, high: float | None = None
) -> float:
    """Return ``value`` (an int or float, not a bool) as a finite float within [low, high]."""
    expected = _range_text(low, high)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ArgumentTypeError(f"{owner}: {what} must be {expected}, got {describe(value)}")
    if (
        not math.isfinite(value)
        or (low is not None and value < low)
        or (high is not None and value > high)
    ):
        raise ConfigurationError(f"{owner}: {what} must be {expected}, got {describe(value)}")
    return float(value)


def mapping(value: Any, what: str, owner: object) -> Mapping[Any, Any]:
    """Return ``value`` if it is a mapping (a dict, for instance)."""
    if not isinstance(value, Mapping):
        raise ArgumentTypeError(f"{owner}: {what} must be a dict, got {describe(value)}")
    return value


def optional_mapping(value: Any, what: str, owner: object) -> Mapping[Any, Any] | None:
    """Return ``value`` if it is None or a mapping."""
    if value is None or isinstance(value, dict):  # the common cases, without the ABC check
        return value
    if not isinstance(value, Mapping):
        raise ArgumentTypeError(f"{owner}: {what} must be a dict or None, got {describe(value)}")
    return value


def optional_name(value: Any, owner: object) -> str | None:
    """Return ``value`` if it is None or a non-empty string (the name of a node)."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise ArgumentTypeError(f"{owner}: name must be a string or None, got {describe(value)}")
    if not value.strip():
        raise ConfigurationError(f"{owner}: name must not be empty, got {describe(value)}")
    return value


def _range_text(low: float | None, high: float | None) -> str:
    if low is not None and high is not None:
        return f"a finite number in [{low:g}, {high:g}]"
    if low is not None:
        return f"a finite number >= {low:g}"
    return "a finite number"


def _integer(
    value: Any, what: str, owner: object, low: int | None, suffix: str, high: int | None = None
) -> int:
    if low is not None and high is not None:
        expected = f"an int in [{low}, {high}]" + suffix
    else:
        expected = ("an int" if low is None else f"an int >= {low}") + suffix
    if isinstance(value, bool) or not isinstance(value, int):
        raise ArgumentTypeError(f"{owner}: {what} must be {expected}, got {describe(value)}")
    if (low is not None and value < low) or (high is not None and value > high):
        raise ConfigurationError(f"{owner}: {what} must be {expected}, got {describe(value)}")
    return value


def _seconds(value: Any, what: str, owner: object, expected: str) -> float:
    if isinstance(value, timedelta):
        value = value.total_seconds()
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ArgumentTypeError(f"{owner}: {what} must be {expected}, got {describe(value)}")
    if not math.isfinite(value) or value < 0:
        raise ConfigurationError(f"{owner}: {what} must be {expected}, got {describe(value)}")
    return float(value)
