"""SqliteQueue's tables, and the schema version that lets later releases migrate old files.

Version 2 writes as few B-tree pages per commit as it can, because on SQLite a commit costs
per page written (and fsynced), not per byte:

* ``chunks``: the records of one enqueue, up to 1000 (or 1 MiB) per row: numbers
  ``first .. first + count - 1``; ``data`` holds their encoded bytes end to end and
  ``sizes`` each one's length (little-endian uint32; NULL for a one-record chunk).
  ``live`` counts the deliveries (record x outlet) still stored for it; at 0 the chunk is
  deleted.
* ``waiting``: the PENDING/FAILED deliveries, as *spans*: a run of consecutive records of
  one chunk for one (link, outlet), with their state, attempts and retry time. Enqueue
  writes one span per outlet and chunk; its key is the order ``due`` reads them in.
* ``settled``: the DELIVERED/DEAD spans, keyed by (state, updated_at, ...): an ack appends
  one row, and retention deletes from the oldest end without another index.
* ``numbers``: the last record number handed out, when no chunk shows it any more (the
  newest chunk was purged, or an enqueue stored nothing). Numbers are never reused, so an
  outlet that deduplicates on ``record.id`` can never mistake a new record for an old one.

A span changes as a whole when it can; when only part of it does (an ack of part of a
batch), it is split, so every record keeps its own state, attempts and retry time. A span
never crosses a chunk boundary.

Version 1 (one ``records`` row per record, one ``deliveries`` row per record and outlet) is
migrated on open: each record becomes a one-record chunk, each delivery a one-record span.
"""

from __future__ import annotations

__all__ = ["CURSORS", "MIGRATIONS", "SCHEMA", "SCHEMA_VERSION"]

SCHEMA_VERSION = 2

_TABLES = """
CREATE TABLE numbers (
    last INTEGER NOT NULL
);
CREATE TABLE chunks (
    first INTEGER PRIMARY KEY,
    count INTEGER NOT NULL,
    link TEXT NOT NULL,
    codec TEXT NOT NULL,
    enqueued_at REAL NOT NULL,
    live INTEGER NOT NULL,
    sizes BLOB,
    data BLOB NOT NULL
);
CREATE TABLE waiting (
    link TEXT NOT NULL,
    outlet TEXT NOT NULL,
    first INTEGER NOT NULL,
    last INTEGER NOT NULL,
    state INTEGER NOT NULL,
    attempts INTEGER NOT NULL,
    due_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    last_error TEXT,
    PRIMARY KEY (link, outlet, first)
) WITHOUT ROWID;
CREATE TABLE settled (
    state INTEGER NOT NULL,
    updated_at REAL NOT NULL,
    link TEXT NOT NULL,
    outlet TEXT NOT NULL,
    first INTEGER NOT NULL,
    last INTEGER NOT NULL,
    attempts INTEGER NOT NULL,
    due_at REAL NOT NULL,
    last_error TEXT,
    PRIMARY KEY (state, updated_at, link, outlet, first)
) WITHOUT ROWID;
"""

SCHEMA = (
    """
CREATE TABLE schema_version (
    version INTEGER NOT NULL
);
CREATE TABLE meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"""
    + _TABLES
    + "INSERT INTO numbers VALUES (0);"
)

_FROM_1 = (
    _TABLES
    + """
INSERT INTO numbers SELECT COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'records'), 0);
INSERT INTO chunks (first, count, link, codec, enqueued_at, live, sizes, data)
    SELECT r.id, 1, r.link, r.codec, r.enqueued_at, COUNT(*), NULL, r.data
    FROM records r JOIN deliveries d ON d.record_id = r.id GROUP BY r.id;
INSERT INTO waiting (link, outlet, first, last, state, attempts, due_at, updated_at, last_error)
    SELECT link, outlet, record_id, record_id, state, attempts, due_at, updated_at, last_error
    FROM deliveries WHERE state < 2 AND record_id IN (SELECT id FROM records);
INSERT INTO settled (state, updated_at, link, outlet, first, last, attempts, due_at, last_error)
    SELECT state, updated_at, link, outlet, record_id, record_id, attempts, due_at, last_error
    FROM deliveries WHERE state >= 2 AND record_id IN (SELECT id FROM records);
DROP TABLE deliveries;
DROP TABLE records;
"""
)

#: version -> SQL script that upgrades a file from that version to the next one.
MIGRATIONS: dict[int, str] = {1: _FROM_1}

#: Inlet cursors, one row per (link, inlet). Created by the first cursor write (not part of
#: a schema version: a file without it simply has no cursors, and older readers ignore it).
CURSORS = """
CREATE TABLE IF NOT EXISTS cursors (
    link TEXT NOT NULL,
    inlet TEXT NOT NULL,
    value TEXT NOT NULL,
    version INTEGER NOT NULL,
    updated_at REAL NOT NULL,
    PRIMARY KEY (link, inlet)
) WITHOUT ROWID
"""
