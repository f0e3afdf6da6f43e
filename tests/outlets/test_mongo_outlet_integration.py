"""MongoOutlet against a real MongoDB server: runs only when DATABAY_BUS_MONGO_URI is set.

Example: ``DATABAY_BUS_MONGO_URI=mongodb://localhost:27017 pytest tests/outlets``. Each run
writes to a fresh database named ``databay_bus_test_<random>`` and drops it afterwards.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

from databay_bus import Record
from databay_bus.link import Update
from databay_bus.outlets import MongoOutlet

URI = os.environ.get("DATABAY_BUS_MONGO_URI")

pytestmark = pytest.mark.skipif(
    not URI, reason="set DATABAY_BUS_MONGO_URI to a MongoDB server to run this integration test"
)


@pytest.fixture
def outlet() -> Iterator[MongoOutlet]:
    outlet = MongoOutlet(
        database_name=f"databay_bus_test_{uuid.uuid4().hex[:12]}",
        host=URI,
        serverSelectionTimeoutMS=5000,
    )
    outlet.try_start()
    try:
        yield outlet
    finally:
        client = outlet._client
        if client is not None:
            client.drop_database(outlet.database_name)
        outlet.try_shutdown()


def test_inserts_and_idempotent_upserts(outlet: MongoOutlet) -> None:
    update = Update(["it"], 0)
    outlet.push([Record({"plain": 1}), Record({"v": 1}, id="r1")], update)
    outlet.push([Record({"v": 2}, id="r1"), Record([{"w": 1}, {"w": 2}], id="r2")], update)
    assert outlet.database is not None
    stored = list(outlet.database["default_collection"].find())
    keyed = sorted((d["_id"], d.get("v", d.get("w"))) for d in stored if isinstance(d["_id"], str))
    assert keyed == [("r1", 2), ("r2:0", 1), ("r2:1", 2)]
    assert sum(1 for d in stored if "plain" in d) == 1
