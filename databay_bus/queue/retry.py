"""RetryPolicy: when a failed delivery is tried again, and when it is given up (dead-lettered)."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import timedelta

from databay_bus.errors import ConfigurationError, describe

__all__ = ["RetryPolicy"]


def _seconds(value: float | timedelta, what: str) -> float:
    if isinstance(value, timedelta):
        value = value.total_seconds()
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise ConfigurationError(
            f"RetryPolicy: {what} must be seconds >= 0 or a timedelta, got {describe(value)}"
        )
    return float(value)


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
        ConfigurationError: a value out of range.
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
        attempts = self.max_attempts
        if attempts is not None and (
            isinstance(attempts, bool) or not isinstance(attempts, int) or attempts < 1
        ):
            raise ConfigurationError(
                f"RetryPolicy: max_attempts must be an int >= 1 or None, got {describe(attempts)}"
            )
        object.__setattr__(self, "_initial", _seconds(self.initial_delay, "initial_delay"))
        object.__setattr__(self, "_cap", _seconds(self.max_delay, "max_delay"))
        if isinstance(self.multiplier, bool) or not isinstance(self.multiplier, (int, float)):
            raise ConfigurationError(
                f"RetryPolicy: multiplier must be a number >= 1, got {describe(self.multiplier)}"
            )
        if self.multiplier < 1:
            raise ConfigurationError(
                f"RetryPolicy: multiplier must be a number >= 1, got {describe(self.multiplier)}"
            )
        if not isinstance(self.jitter, (int, float)) or not 0 <= self.jitter <= 1:
            raise ConfigurationError(
                f"RetryPolicy: jitter must be a number in [0, 1], got {describe(self.jitter)}"
            )
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
