"""SqliteQueue's tables, and the schema version that lets later releases migrate old files.

``records`` holds each record once; ``deliveries`` holds one row per (record, outlet) with
its state (see :class:`~databay_bus.queue.DeliveryState`). Record ids come from
AUTOINCREMENT, so a number is never reused even after its record was purged: an outlet
that deduplicates on ``record.id`` can never mistake a new record for an old one.

Two partial indexes keep the hot queries small: ``deliveries_waiting`` holds only
deliveries still to push (what ``due`` scans, in enqueue order), ``deliveries_settled``
only delivered/dead ones (what retention scans).
"""

from __future__ import annotations

__all__ = ["MIGRATIONS", "SCHEMA", "SCHEMA_VERSION"]

SCHEMA_VERSION = 1

SCHEMA = """
CREATE TABLE schema_version (
    version INTEGER NOT NULL
);
CREATE TABLE meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE records (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    link TEXT NOT NULL,
    codec TEXT NOT NULL,
    data BLOB NOT NULL,
    enqueued_at REAL NOT NULL
);
CREATE TABLE deliveries (
    record_id INTEGER NOT NULL,
    outlet TEXT NOT NULL,
    link TEXT NOT NULL,
    state INTEGER NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    due_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    last_error TEXT,
    PRIMARY KEY (record_id, outlet)
) WITHOUT ROWID;
CREATE INDEX deliveries_waiting ON deliveries (link, outlet, record_id) WHERE state < 2;
CREATE INDEX deliveries_settled ON deliveries (state, updated_at) WHERE state >= 2;
"""

#: version -> SQL script that upgrades a file from that version to the next one.
MIGRATIONS: dict[int, str] = {}
