"""RandomIntInlet: one random integer per pull."""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, Any

from databay_bus._validation import integer
from databay_bus.errors import ConfigurationError
from databay_bus.inlets.base import Inlet

if TYPE_CHECKING:
    from databay_bus.update import Update

__all__ = ["RandomIntInlet"]


class RandomIntInlet(Inlet):
    """Produces one record per pull whose payload is a random int in ``[min, max]``.

    Args:
        min: the smallest value (inclusive).
        max: the largest value (inclusive).
        metadata, name: see :class:`~databay_bus.Inlet`.
        rng: the ``random.Random`` to draw from; pass a seeded one for repeatable output.

    Raises:
        ConfigurationError: ``min`` or ``max`` is not an int, or ``min > max``.
    """

    def __init__(
        self,
        min: int = 0,
        max: int = 100,
        metadata: dict[str, Any] | None = None,
        name: str | None = None,
        *,
        rng: random.Random | None = None,
    ) -> None:
        super().__init__(metadata, name)
        integer(min, "min", "RandomIntInlet")
        integer(max, "max", "RandomIntInlet")
        if min > max:
            raise ConfigurationError(f"RandomIntInlet: min ({min}) must not exceed max ({max})")
        self.min = min
        self.max = max
        self._rng = rng if rng is not None else random.Random()

    def pull(self, update: Update) -> int:
        return self._rng.randint(self.min, self.max)

    def __repr__(self) -> str:
        return f"RandomIntInlet(min={self.min}, max={self.max}, metadata={self.metadata!r})"
