"""Inlet cursors as a queue stores them: JSON text with a version, per (link, inlet name).

An inlet's cursor (``update.cursor`` / ``update.commit_cursor(value)``) is stored by the
link's queue in the same transaction as the records of the pull that moved it (see
:meth:`~databay_bus.queue.RecordQueue.enqueue`). Every write increments the cursor's
version; a write names the version it expects, so a stale writer (another process that read
an older cursor) is refused with :class:`~databay_bus.errors.CursorConflictError` and
nothing of its transfer is stored.
"""

from __future__ import annotations

import json
from typing import Any, NamedTuple

from databay_bus.errors import CursorConflictError, CursorError, CursorTypeError, describe

__all__ = [
    "ANY_VERSION",
    "CursorWrite",
    "StoredCursor",
    "check_version",
    "decode_cursor",
    "encode_cursor",
]

#: ``expected`` of a :class:`CursorWrite` that overwrites whatever is stored (the CLI's set).
ANY_VERSION = -1


class StoredCursor(NamedTuple):
    """A committed cursor: its value, its version (1 for the first write) and when."""

    value: Any
    version: int
    updated_at: float


class CursorWrite(NamedTuple):
    """One cursor to write: ``text`` (JSON; None deletes it) if the stored version is
    ``expected`` (0: none stored yet; :data:`ANY_VERSION`: whatever is stored)."""

    text: str | None
    expected: int


def encode_cursor(value: object, owner: object) -> str:
    """``value`` as JSON text, or CursorError naming ``owner`` and the value.

    Only what JSON stores and gives back equal is accepted: None, bool, int, finite float,
    str, and lists and string-keyed dicts of those.
    """
    try:
        text = json.dumps(value, allow_nan=False, separators=(",", ":"), sort_keys=True)
    except (TypeError, ValueError) as exc:
        error = CursorTypeError if isinstance(exc, TypeError) else CursorError
        raise error(
            f"{owner}: a cursor must be JSON-storable (None, bool, int, float, str, list, dict "
            f"with str keys), got {describe(value)}: {exc}"
        ) from None
    if json.loads(text) != value:
        raise CursorTypeError(
            f"{owner}: a cursor must come back equal from JSON (no tuples, no non-str keys), "
            f"got {describe(value)}"
        )
    return text


def decode_cursor(text: str) -> Any:
    """The value of a stored cursor's JSON text."""
    return json.loads(text)


def check_version(link: str, inlet: str, stored: int, write: CursorWrite) -> int:
    """The version ``write`` gives the cursor whose stored version is ``stored`` (0: none).

    Backends call it inside their write transaction, for every cursor, before storing.

    Raises:
        CursorConflictError: the stored version is not the one the writer read.
    """
    if write.expected not in (ANY_VERSION, stored):
        raise CursorConflictError(
            f"cursor of inlet {inlet!r} of link {link!r} is at version {stored}, not "
            f"{write.expected} as when it was read: another process moved it; nothing of "
            f"this transfer was stored"
        )
    return stored + 1
