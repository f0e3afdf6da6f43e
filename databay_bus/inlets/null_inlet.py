"""NullInlet: an inlet that never produces anything."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from databay_bus.inlets.base import Inlet

if TYPE_CHECKING:
    from databay_bus.update import Update

__all__ = ["NullInlet"]


class NullInlet(Inlet):
    """Pulls no records. Useful as a placeholder and in tests."""

    def pull(self, update: Update) -> list[Any]:
        return []
