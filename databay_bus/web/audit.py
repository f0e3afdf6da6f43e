"""The audit trail: every state-changing action with the user who took it.

Entries are logged (INFO, logger ``databay_bus.web.audit``, so they reach whatever handler the
application set up) and the latest ones are kept in memory for the administrators' page.
"""

from __future__ import annotations

import collections
import logging
import threading
from dataclasses import asdict, dataclass
from typing import Any

from databay_bus._clock import Clock, SystemClock

__all__ = ["AuditEntry", "AuditTrail"]

_LOGGER = logging.getLogger(__name__)


@dataclass(frozen=True)
class AuditEntry:
    """Who did what, when, from where, and how it ended."""

    at: float
    user: str
    role: str
    action: str
    target: str
    outcome: str
    client: str

    def as_dict(self) -> dict[str, Any]:
        """A JSON-serialisable form."""
        return asdict(self)


class AuditTrail:
    """Keeps the last ``size`` entries in memory and logs each one."""

    def __init__(self, size: int = 1000, clock: Clock | None = None) -> None:
        self.clock: Clock = clock or SystemClock()
        self._entries: collections.deque[AuditEntry] = collections.deque(maxlen=size)
        self._lock = threading.Lock()

    def record(
        self, user: str, role: str, action: str, target: str, outcome: str, client: str
    ) -> AuditEntry:
        """Add and log one entry."""
        entry = AuditEntry(self.clock.time(), user, role, action, target, outcome, client)
        with self._lock:
            self._entries.append(entry)
        _LOGGER.info(
            "user=%s role=%s action=%s target=%s outcome=%s client=%s",
            user,
            role,
            action,
            target,
            outcome,
            client,
        )
        return entry

    def recent(self, limit: int = 200) -> list[AuditEntry]:
        """Entries newest first."""
        with self._lock:
            return list(reversed(self._entries))[:limit]
