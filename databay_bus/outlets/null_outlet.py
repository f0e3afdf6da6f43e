"""NullOutlet: an outlet that discards everything."""

from __future__ import annotations

from typing import TYPE_CHECKING

from databay_bus.outlets.base import Outlet

if TYPE_CHECKING:
    from databay_bus.records import Record
    from databay_bus.update import Update

__all__ = ["NullOutlet"]


class NullOutlet(Outlet):
    """Accepts records and does nothing with them. Useful as a placeholder and in tests."""

    def push(self, records: list[Record], update: Update) -> None:
        return None
