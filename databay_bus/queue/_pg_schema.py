"""PostgresQueue's tables, one script per schema version, so a later release migrates old ones.

Every script is written against the placeholder ``{s}`` (the quoted schema name). A new
schema runs every script in order; an older one runs the scripts after its version, all in
one transaction under an advisory lock, so processes starting together migrate it once.

Version 1, the record queue:

* ``meta``: key/value pairs: ``schema_version``, ``queue_id``.
* ``numbers``: the sequence record numbers come from; never reused.
* ``records`` (number, link, codec, enqueued_at, data): one row per stored record.
* ``deliveries`` (number, outlet, link, state, attempts, due_at, updated_at, last_error,
  lease_owner, lease_until): one row per record and outlet. ``lease_owner`` is the node that
  claimed it and, once DELIVERED, the one that acked it ('' never claimed or
  released, '~' taken back by the reaper), ``lease_until``
  (database clock) is set while a lease is held. Partial indexes keep the claim, the reaper
  and the retention purge off finished rows.

Version 2, several processes running one pipeline:

* ``ticks`` (link, last_tick, node, claimed_at): per link, the scheduled fire time of the
  last tick some process claimed (a high-water mark, advanced by a conditional UPDATE).
* ``nodes`` (node, host, pid, started_at, seen_at): the processes using the queue, with a
  heartbeat on the database clock.

Version 3, inlet cursors stored with the records:

* ``cursors`` (link, inlet, value, version, updated_at): an inlet's committed cursor (JSON
  text) and its version, compared and set in the enqueue transaction of its records.
"""

from __future__ import annotations

__all__ = ["SCHEMA_VERSION", "SCRIPTS"]

_V1 = """
CREATE TABLE {s}.meta (
    key text PRIMARY KEY,
    value text NOT NULL
);
CREATE SEQUENCE {s}.numbers AS bigint;
CREATE TABLE {s}.records (
    number bigint PRIMARY KEY,
    link text NOT NULL,
    codec text NOT NULL,
    enqueued_at double precision NOT NULL,
    data bytea NOT NULL
);
CREATE TABLE {s}.deliveries (
    number bigint NOT NULL,
    outlet text NOT NULL,
    link text NOT NULL,
    state smallint NOT NULL,
    attempts integer NOT NULL DEFAULT 0,
    due_at double precision NOT NULL,
    updated_at double precision NOT NULL,
    last_error text,
    lease_owner text NOT NULL DEFAULT '',
    lease_until timestamptz,
    PRIMARY KEY (number, outlet)
);
CREATE INDEX deliveries_waiting ON {s}.deliveries (link, outlet, number) WHERE state < 2;
CREATE INDEX deliveries_leased ON {s}.deliveries (lease_until) WHERE lease_until IS NOT NULL;
CREATE INDEX deliveries_delivered ON {s}.deliveries (updated_at) WHERE state = 2;
"""

_V2 = """
CREATE TABLE {s}.ticks (
    link text PRIMARY KEY,
    last_tick double precision NOT NULL,
    node text NOT NULL,
    claimed_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE {s}.nodes (
    node text PRIMARY KEY,
    host text NOT NULL,
    pid integer NOT NULL,
    started_at timestamptz NOT NULL DEFAULT now(),
    seen_at timestamptz NOT NULL DEFAULT now()
);
"""

_V3 = """
CREATE TABLE {s}.cursors (
    link text NOT NULL,
    inlet text NOT NULL,
    value text NOT NULL,
    version integer NOT NULL,
    updated_at double precision NOT NULL,
    PRIMARY KEY (link, inlet)
);
"""

#: SCRIPTS[v - 1] brings a schema from version v - 1 to version v (0: nothing there yet).
SCRIPTS: tuple[str, ...] = (_V1, _V2, _V3)

SCHEMA_VERSION = len(SCRIPTS)
