"""Value checks of a pipeline file: problems are collected with their key path, never raised.

Every part of the loader reports through one :class:`Problems`, so a single run of
``databay-bus validate`` lists every mistake of a file. A value that could not be checked or
built is replaced by :data:`FAILED` (its problem is already recorded) so the rest of the file
is still checked. A new key is checked with :meth:`Problems.check` and a function that raises
``ValueError`` with the reason (like :func:`parse_duration`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any, Final, TypeVar

from databay_bus.config.source import key_path
from databay_bus.errors import describe

__all__ = ["FAILED", "Failed", "Problems", "parse_duration"]

T = TypeVar("T")

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_DURATION = re.compile(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*(ms|s|m|h|d)\s*")


class Failed:
    """The type of :data:`FAILED`: a value that could not be checked or built."""

    def __repr__(self) -> str:
        return "<failed>"


FAILED: Final = Failed()


def parse_duration(value: object, also: str = "") -> float:
    """Seconds from a positive number or a string such as ``'500ms'``, ``'5s'``, ``'1h30m'``.

    ``also`` names what else the key accepts, for the message (``", or ..."``).

    Raises:
        ValueError: not a number or duration string, or not > 0.
    """
    if isinstance(value, bool):
        raise ValueError(f"must be a number of seconds or a duration like '5s', got {value!r}")
    if isinstance(value, (int, float)):
        seconds = float(value)
    elif isinstance(value, str):
        parts = list(_DURATION.finditer(value))
        if not parts or "".join(p.group(0) for p in parts) != value:
            raise ValueError(
                f"must be a number of seconds or a duration like '500ms', '5s', '2m', '1h', "
                f"'1d' or '1h30m'{also}, got {value!r}"
            )
        seconds = sum(float(p.group(1)) * _UNITS[p.group(2)] for p in parts)
    else:
        raise ValueError(
            f"must be a number of seconds or a duration like '5s'{also}, got {describe(value)}"
        )
    if not math.isfinite(seconds) or seconds <= 0:
        shown = int(seconds) if math.isfinite(seconds) and seconds.is_integer() else value
        raise ValueError(f"must be > 0, got {shown}")
    return seconds


class Problems:
    """The problems found so far, each a (key path, reason) pair, and the checks that add them."""

    def __init__(self) -> None:
        self.found: list[tuple[str, str]] = []

    def __len__(self) -> int:
        return len(self.found)

    def add(self, path: str, reason: str) -> None:
        """Record that the value at ``path`` is wrong because of ``reason``."""
        self.found.append((path, reason))

    def table(
        self, value: object, path: str, known: tuple[str, ...] | None = None
    ) -> dict[str, Any]:
        """``value`` if it is a table (else ``{}``); keys outside ``known`` are reported."""
        if not isinstance(value, dict):
            self.add(path, f"must be a table (a mapping of keys to values), got {describe(value)}")
            return {}
        if known is not None:
            for key in value:
                if key not in known:
                    self.add(key_path(path, key), f"unknown key (known keys: {', '.join(known)})")
        return value

    def check(self, path: str, value: object, test: Callable[[Any], T]) -> T | Failed:
        """``test(value)``, or FAILED with its ``ValueError`` recorded as the reason."""
        try:
            return test(value)
        except ValueError as exc:
            self.add(path, str(exc))
            return FAILED

    def boolean(self, path: str, value: object) -> bool | Failed:
        """``value`` if it is true or false (never a truthy string)."""
        if isinstance(value, bool):
            return value
        self.add(path, f"must be true or false, got {describe(value)}")
        return FAILED

    def seconds_or_none(self, value: object, path: str, positive: bool) -> Any:
        """A duration in seconds; ``false`` means None (no limit / never).

        With ``positive`` False, 0 and numbers are passed on as they are (their owner checks
        them); only strings go through :func:`parse_duration`.
        """
        if value is False:
            return None
        if positive or isinstance(value, str):
            return self.check(path, value, parse_duration)
        return value
