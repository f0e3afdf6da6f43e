"""Ready-made processors: :class:`Buffer` holds records back until a threshold releases them."""

from __future__ import annotations

from databay_bus.processors.buffer import Buffer, Controller

__all__ = ["Buffer", "Controller"]
