"""RetryPolicy: when a failed delivery is tried again, and when it is given up (dead-lettered)."""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from databay_bus._validation import number, optional_positive_int, seconds
from databay_bus.errors import ArgumentTypeError, describe

__all__ = ["RetryPolicy", "optional_policy", "policies_by_name"]


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter and a cap, and a limit on attempts.

    After the n-th failed attempt of a delivery, the next one is due
    ``min(max_delay, initial_delay * multiplier ** (n - 1))`` seconds later, shortened by a
    random fraction of up to ``jitter`` (so many failed deliveries do not all retry at the
    same instant). After ``max_attempts`` failed attempts the delivery is dead-lettered.

    Args:
        max_attempts: failed attempts before a delivery is dead; None retries forever.
        initial_delay: seconds (or a timedelta) before the first retry.
        multiplier: growth of the delay per attempt (>= 1).
        max_delay: the cap on any delay.
        jitter: fraction in [0, 1] of the delay that may be taken off at random.
        seed: seed for the jitter's random generator (tests); None for an unseeded one.

    Raises:
        ConfigurationError: a value out of range, NaN or infinite (an ``ArgumentTypeError``,
            also a ``TypeError``, for a value of the wrong type, such as ``jitter=True``).
    """

    max_attempts: int | None = 5
    initial_delay: float | timedelta = 1.0
    multiplier: float = 2.0
    max_delay: float | timedelta = 300.0
    jitter: float = 0.1
    seed: int | None = None
    _random: random.Random = field(init=False, repr=False, compare=False)
    _initial: float = field(init=False, repr=False, compare=False)
    _cap: float = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        optional_positive_int(self.max_attempts, "max_attempts", "RetryPolicy")
        object.__setattr__(
            self, "_initial", seconds(self.initial_delay, "initial_delay", "RetryPolicy")
        )
        object.__setattr__(self, "_cap", seconds(self.max_delay, "max_delay", "RetryPolicy"))
        number(self.multiplier, "multiplier", "RetryPolicy", low=1)
        number(self.jitter, "jitter", "RetryPolicy", low=0, high=1)
        object.__setattr__(self, "_random", random.Random(self.seed))

    def delay(self, attempts: int) -> float:
        """Seconds to wait after the ``attempts``-th failed attempt (1 for the first failure)."""
        try:
            base = self._initial * self.multiplier ** max(0, attempts - 1)
        except OverflowError:
            base = self._cap
        base = min(self._cap, base)
        if self.jitter:
            base -= base * self.jitter * self._random.random()
        return base

    def next_delay(self, attempts: int) -> float | None:
        """The delay after ``attempts`` failed attempts, or None when the delivery is dead."""
        if self.max_attempts is not None and attempts >= self.max_attempts:
            return None
        return self.delay(attempts)


def optional_policy(value: Any, what: str, owner: object) -> RetryPolicy | None:
    """Return ``value`` if it is None or a RetryPolicy."""
    if value is not None and not isinstance(value, RetryPolicy):
        raise ArgumentTypeError(
            f"{owner}: {what} must be a RetryPolicy or None, got {describe(value)}"
        )
    return value


def policies_by_name(value: Any, what: str, kind: str, owner: object) -> dict[str, RetryPolicy]:
    """Return ``value`` (None or ``{name of a kind: RetryPolicy}``) as a new dict."""
    expected = f"a dict of {kind} name -> RetryPolicy"
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ArgumentTypeError(f"{owner}: {what} must be {expected}, got {describe(value)}")
    for name, policy in value.items():
        if not isinstance(name, str) or not isinstance(policy, RetryPolicy):
            raise ArgumentTypeError(
                f"{owner}: {what} must be {expected}, got {describe(name)}: {describe(policy)}"
            )
    return dict(value)
