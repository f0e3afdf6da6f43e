"""DirectDelivery: Databay's behaviour, no queue: group once, give every outlet its copy."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from databay_bus.delivery.base import Delivery, DeliveryLink, Lane, Outcome
from databay_bus.queue.cursors import CursorWrite, StoredCursor, check_version, decode_cursor
from databay_bus.records import Record
from databay_bus.records.copying import copy_batches
from databay_bus.routing import route_records

if TYPE_CHECKING:
    from databay_bus.cursors import SourceSide
    from databay_bus.outlets.base import Outlet
    from databay_bus.update import Update

__all__ = ["DirectDelivery"]

_LOGGER = logging.getLogger(__name__)


class DirectDelivery(Delivery):
    """No queue: group the records once and give each outlet its own copy of the batches.

    With ``copy_records`` every outlet but the last gets a deep copy and the last gets the
    originals, so no outlet sees another's changes without paying for one copy too many.
    """

    __slots__ = ("_cursors",)

    def __init__(self, link: DeliveryLink) -> None:
        super().__init__(link)
        # Without a queue, committed cursors live in memory: {inlet name: (JSON, version, at)}.
        self._cursors: dict[str, tuple[str, int, float]] = {}

    def read_cursor(self, inlet: str) -> StoredCursor | None:
        found = self._cursors.get(inlet)
        return None if found is None else StoredCursor(decode_cursor(found[0]), *found[1:])

    def commit_cursors(self, cursors: Mapping[str, CursorWrite]) -> None:
        key = ".".join(self.link.tags)
        versions = {
            name: check_version(key, name, self._cursors.get(name, ("", 0, 0.0))[1], write)
            for name, write in cursors.items()
        }
        now = time.time()
        for name, write in cursors.items():
            if write.text is None:
                self._cursors.pop(name, None)
            else:
                self._cursors[name] = (write.text, versions[name], now)

    def admit(
        self,
        records: list[Record],
        outlets: Sequence[Outlet],
        update: Update,
        source: SourceSide | None = None,
    ) -> list[Lane]:
        if not outlets:
            return []
        if self.link.router is not None:
            return self._routed(records, outlets, update)
        if len(outlets) == 1:  # the common case: nothing to copy, no list per outlet
            return [Lane(outlets[0], self.link.group(records, update))]
        batches = self.link.group(records, update)
        shared = [batches] * len(outlets)
        if self.link.copy_records and len(outlets) > 1:
            try:
                shared = [*copy_batches(batches, len(outlets) - 1), batches]
            except Exception as exc:
                if not self.link.ignore_exceptions:
                    raise
                _LOGGER.error(
                    "%s: records could not be copied; outlets share them", update, exc_info=exc
                )
        return [Lane(outlet, list(b)) for outlet, b in zip(outlets, shared, strict=True)]

    def _routed(
        self, records: list[Record], outlets: Sequence[Outlet], update: Update
    ) -> list[Lane]:
        names = [outlet.name for outlet in outlets]
        routed: dict[str, list[Record]] = {name: [] for name in names}
        decided = route_records(
            self.link.router, records, names, self.link.ignore_exceptions, update
        )
        for record, targets in zip(records, decided, strict=True):
            for name in targets:
                routed[name].append(record)
        lanes = []
        for index, outlet in enumerate(outlets):
            batches = self.link.group(routed[outlet.name], update)
            if self.link.copy_records and index < len(outlets) - 1:
                batches = copy_batches(batches, 1)[0]
            lanes.append(Lane(outlet, batches))
        return lanes

    def settle(self, lane: Lane, batch: list[Record], error: Exception | None) -> Outcome | None:
        return None if error is None else Outcome.ESCALATE
