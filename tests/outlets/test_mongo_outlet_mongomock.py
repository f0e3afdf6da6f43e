"""MongoOutlet's logic, run against mongomock (an in-memory fake, NOT a MongoDB server).

The real-server test is test_mongo_outlet_integration.py (needs DATABAY_BUS_MONGO_URI).
"""

from __future__ import annotations

from typing import Any

import mongomock
import pytest

from databay_bus import Link, Record
from databay_bus.errors import NodeInactiveError, PayloadError
from databay_bus.inlets.base import Inlet
from databay_bus.link import Update
from databay_bus.outlets import MongoOutlet

UPDATE = Update(["mongo"], 0)


class Clients:
    """A client factory that remembers the clients it made."""

    def __init__(self) -> None:
        self.made: list[Any] = []
        self.closed = 0

    def __call__(self, host: str | None, port: int | None, **options: Any) -> Any:
        client = mongomock.MongoClient(host, port, **options)
        original_close = client.close

        def close() -> None:
            self.closed += 1
            original_close()

        client.close = close
        self.made.append(client)
        return client


def started(**kwargs: Any) -> tuple[MongoOutlet, Clients]:
    clients = Clients()
    outlet = MongoOutlet(client_factory=clients, **kwargs)
    outlet.try_start()
    return outlet, clients


def documents(outlet: MongoOutlet, collection: str = "default_collection") -> list[Any]:
    assert outlet.database is not None
    return list(outlet.database[collection].find({}, {"_id": 0}))


def test_defaults_match_databay() -> None:
    outlet = MongoOutlet()
    assert (outlet.database_name, outlet.collection, outlet.host, outlet.port) == (
        "databay",
        "default_collection",
        None,
        None,
    )
    assert MongoOutlet.MONGODB_COLLECTION == "MongoOutlet.MONGODB_COLLECTION"


def test_one_client_from_start_to_shutdown() -> None:
    outlet, clients = started(database_name="db", host="mongodb://example:27017")
    outlet.push([Record({"a": 1})], UPDATE)
    outlet.push([Record({"a": 2})], UPDATE)
    assert len(clients.made) == 1 and clients.closed == 0
    assert documents(outlet) == [{"a": 1}, {"a": 2}]
    assert outlet.database is not None and outlet.database.name == "db"
    outlet.try_shutdown()
    assert clients.closed == 1 and outlet.database is None


def test_push_while_inactive_raises_instead_of_dropping() -> None:
    outlet = MongoOutlet(client_factory=mongomock.MongoClient)
    with pytest.raises(NodeInactiveError, match="2 records while not started"):
        outlet.push([Record({"a": 1}), Record({"a": 2})], UPDATE)


def test_collections_from_metadata_and_list_payloads() -> None:
    outlet, _ = started()
    key = MongoOutlet.MONGODB_COLLECTION
    outlet.push(
        [
            Record({"a": 1}),
            Record([{"b": 1}, {"b": 2}], {key: "other"}),
            Record([], {key: "empty"}),
        ],
        UPDATE,
    )
    assert documents(outlet) == [{"a": 1}]
    assert documents(outlet, "other") == [{"b": 1}, {"b": 2}]
    assert outlet.database is not None
    assert "empty" not in outlet.database.list_collection_names()
    outlet.try_shutdown()


def test_one_insert_many_per_collection(monkeypatch: pytest.MonkeyPatch) -> None:
    outlet, _ = started()
    calls: list[tuple[str, int]] = []
    collection_type = type(outlet.database["x"])  # type: ignore[index]
    original = collection_type.insert_many

    def spy(self: Any, docs: list[Any], *args: Any, **kwargs: Any) -> Any:
        calls.append((self.name, len(docs)))
        return original(self, docs, *args, **kwargs)

    monkeypatch.setattr(collection_type, "insert_many", spy)
    key = MongoOutlet.MONGODB_COLLECTION
    outlet.push([Record({"n": i}, {key: f"c{i % 2}"}) for i in range(6)], UPDATE)
    assert sorted(calls) == [("c0", 3), ("c1", 3)]
    outlet.try_shutdown()


def test_payloads_are_not_modified() -> None:
    outlet, _ = started()
    payload = {"a": 1}
    outlet.push([Record(payload)], UPDATE)
    assert payload == {"a": 1}  # pymongo would have added '_id'
    outlet.try_shutdown()


def test_queued_records_are_upserted_on_their_id() -> None:
    outlet, _ = started()
    outlet.push([Record({"v": 1}, id="r1"), Record([{"v": 2}, {"v": 3}], id="r2")], UPDATE)
    # Redelivery (same ids, e.g. after a crash between write and acknowledgement) and a new one.
    outlet.push([Record({"v": 1}, id="r1"), Record({"v": 4}, id="r3")], UPDATE)
    outlet.push([Record([{"v": 2}, {"v": 3}], id="r2")], UPDATE)
    assert outlet.database is not None
    stored = sorted(outlet.database["default_collection"].find(), key=lambda d: d["_id"])
    assert stored == [
        {"_id": "r1", "v": 1},
        {"_id": "r2:0", "v": 2},
        {"_id": "r2:1", "v": 3},
        {"_id": "r3", "v": 4},
    ]
    outlet.try_shutdown()


def test_redelivery_replaces_document() -> None:
    outlet, _ = started()
    outlet.push([Record({"v": "old"}, id="r1")], UPDATE)
    outlet.push([Record({"v": "new"}, id="r1")], UPDATE)
    assert documents(outlet) == [{"v": "new"}]
    outlet.try_shutdown()


@pytest.mark.parametrize("payload", ["text", 5, [{"a": 1}, "x"]])
def test_non_dict_payload_rejected_before_writing(payload: Any) -> None:
    outlet, _ = started()
    with pytest.raises(PayloadError, match="dicts"):
        outlet.push([Record({"ok": 1}), Record(payload)], UPDATE)
    assert documents(outlet) == []
    outlet.try_shutdown()


class Rows(Inlet):
    def pull(self, update: Update) -> list[dict[str, int]]:
        return [{"transfer": update.transfer_number}]


def test_in_a_link() -> None:
    outlet = MongoOutlet(client_factory=mongomock.MongoClient, collection="rows")
    link = Link(Rows(), outlet, interval=1)
    link.on_start()
    link.transfer()
    link.transfer()
    assert documents(outlet, "rows") == [{"transfer": 0}, {"transfer": 1}]
    link.on_shutdown()


# -- Databay's connection API ------------------------------------------------------------------


def test_mongomock_patch_after_construction_takes_effect() -> None:
    """The client is made when connecting, so a patch applied later (Databay's test style)
    replaces pymongo's client instead of dialling a real server."""
    outlet = MongoOutlet(collection="later")
    with mongomock.patch(servers=(("localhost", 27017),)):
        assert outlet.connect() is False
        assert isinstance(outlet.database, mongomock.Database)
        outlet.try_start()
        outlet.push([Record({"n": 1})], UPDATE)
        assert outlet.database.later.count_documents({"n": 1}) == 1
        outlet.try_shutdown()
    assert outlet.database is None


def test_connect_and_disconnect() -> None:
    clients = Clients()
    outlet = MongoOutlet("first_db", client_factory=clients)
    assert outlet.connect() is False  # connected now
    assert outlet.connect() is True  # already connected to that database
    assert outlet.connect("first_db") is True
    assert outlet.database is not None and outlet.database.name == "first_db"
    assert outlet.connect("second_db") is False  # another database: a new client
    assert outlet.database.name == "second_db"
    assert (len(clients.made), clients.closed) == (2, 1)
    outlet.disconnect()
    assert outlet.database is None and clients.closed == 2
    outlet.disconnect()  # no client: nothing to do
    assert clients.closed == 2


def test_ensure_connection_connects_first() -> None:
    from databay_bus.outlets.mongo_outlet import ensure_connection

    class Counting(MongoOutlet):
        @ensure_connection
        def count(self, collection: str) -> int:
            assert self.database is not None
            return int(self.database[collection].count_documents({}))

    outlet = Counting(client_factory=Clients())
    assert outlet.database is None
    assert outlet.count("default_collection") == 0
    assert outlet.database is not None


def test_collection_not_found_error_is_importable() -> None:
    from databay_bus.errors import DatabayBusError
    from databay_bus.outlets.mongo_outlet import MongoCollectionNotFound

    assert issubclass(MongoCollectionNotFound, DatabayBusError)
    assert issubclass(MongoCollectionNotFound, LookupError)
