"""MongoOutlet: store dict payloads in MongoDB (needs the ``mongo`` extra: pymongo)."""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from databay_bus._lazy import require_extra
from databay_bus.errors import DatabayBusError, NodeInactiveError, PayloadError, describe
from databay_bus.outlets.base import Outlet, Processor
from databay_bus.records import MetadataKey

require_extra("MongoOutlet", "mongo", "pymongo")

import pymongo  # noqa: E402 - after the check that names the extra
import pymongo.errors  # noqa: E402

if TYPE_CHECKING:
    from collections.abc import Sequence

    from pymongo.database import Database

    from databay_bus.records import Record
    from databay_bus.update import Update

__all__ = ["ClientFactory", "MongoCollectionNotFound", "MongoOutlet", "ensure_connection"]

_LOGGER = logging.getLogger(__name__)

_DUPLICATE_KEY = 11000  # MongoDB's error code for an _id that is already stored

#: Makes the client: called as ``factory(host, port, **client_options)``.
ClientFactory = Callable[..., Any]

_T = TypeVar("_T")


class MongoCollectionNotFound(DatabayBusError, LookupError):
    """Kept for Databay compatibility (importable); MongoOutlet creates missing collections
    on the first insert and never raises it."""


def ensure_connection(method: Callable[..., _T]) -> Callable[..., _T]:
    """Decorate a MongoOutlet method to :meth:`~MongoOutlet.connect` first if not connected
    (Databay's helper, for subclasses that talk to the database outside ``push``)."""

    @functools.wraps(method)
    def connected(self: Any, *args: Any, **kwargs: Any) -> _T:
        if self._db is None:
            self.connect()
        return method(self, *args, **kwargs)

    return connected


class MongoOutlet(Outlet):
    """Inserts each record's payload (a dict, or a list of dicts) as documents.

    One ``MongoClient`` per outlet lives from :meth:`on_start` (:meth:`connect`) to
    :meth:`on_shutdown` (:meth:`disconnect`); it is made when connecting, so a test's
    ``mongomock.patch`` applied after construction still takes effect. A push
    writes each collection's documents in one call: ``insert_many`` for records without an
    ``id``; queued records (``record.id`` set) are stored with ``_id`` = ``record.id``
    (``'<id>:<n>'`` for the n-th document of a list payload, replacing any ``_id`` in the
    payload) and a redelivered record replaces its document instead of duplicating it.
    Payload dicts are copied, never modified (pymongo would add ``_id`` to them).

    Args:
        database_name: the database to write to.
        collection: the collection for records without :attr:`MONGODB_COLLECTION`.
        host, port: passed to the client (None: pymongo's defaults, or a ``mongodb://`` URI
            as ``host``).
        processors, name: see :class:`~databay_bus.Outlet`.
        client_factory: makes the client (default ``pymongo.MongoClient``, looked up when
            connecting); tests pass ``mongomock.MongoClient``.
        client_options: extra keyword arguments for the client (timeouts, credentials).

    Raises:
        NodeInactiveError: ``push`` while the outlet is not started (Databay dropped the
            records silently).
        PayloadError: a payload is not a dict or a list of dicts (checked before writing).
    """

    MONGODB_COLLECTION = MetadataKey("MongoOutlet.MONGODB_COLLECTION")
    """Metadata key: the collection a record's documents go to."""

    def __init__(
        self,
        database_name: str = "databay",
        collection: str = "default_collection",
        host: str | None = None,
        port: int | None = None,
        processors: Processor | Sequence[Processor] | None = None,
        name: str | None = None,
        *,
        client_factory: ClientFactory | None = None,
        **client_options: Any,
    ) -> None:
        super().__init__(processors, name)
        self.database_name = database_name
        self.collection = collection
        self.host = host
        self.port = port
        self._client_factory = client_factory
        self._client_options = client_options
        self._client: Any = None
        self._db: Database[Any] | None = None
        self._client_lock = threading.Lock()

    @property
    def database(self) -> Database[Any] | None:
        """The database while the outlet is started, else None."""
        return self._db

    def connect(self, database_name: str | None = None) -> bool:
        """Connect to ``database_name`` (default: the outlet's); True if already connected to
        it, False after (re)connecting. Connecting to another database replaces the client."""
        name = self.database_name if database_name is None else database_name
        with self._client_lock:
            if self._db is not None and self._db.name == name:
                return True
            old, self._client, self._db = self._client, None, None
            if old is not None:
                old.close()
            factory = self._client_factory or pymongo.MongoClient  # now, not at construction
            self._client = factory(self.host, self.port, **self._client_options)
            self._db = self._client[name]
            return False

    def disconnect(self) -> None:
        """Close the client if connected."""
        with self._client_lock:
            client, self._client, self._db = self._client, None, None
        if client is not None:
            client.close()

    def on_start(self) -> None:
        """Connect (pymongo opens connections lazily, on the first write)."""
        self.connect()

    def on_shutdown(self) -> None:
        """Disconnect."""
        self.disconnect()

    def push(self, records: list[Record], update: Update) -> None:
        db = self._db
        if db is None:
            raise NodeInactiveError(
                f"{self!r}: push of {len(records)} records while not started "
                f"(start the outlet or its planner first)"
            )
        inserts: dict[str, list[dict[str, Any]]] = {}
        upserts: dict[str, list[dict[str, Any]]] = {}
        for record in records:
            documents = self._documents(record)
            name = str(record.metadata.get(self.MONGODB_COLLECTION, self.collection))
            if record.id is None:
                inserts.setdefault(name, []).extend(documents)
            else:
                many = isinstance(record.payload, list)
                keyed = [
                    {**doc, "_id": f"{record.id}:{n}" if many else record.id}
                    for n, doc in enumerate(documents)
                ]
                upserts.setdefault(name, []).extend(keyed)
        for name, documents in inserts.items():
            if documents:
                _LOGGER.info("%s insert %d documents into %s", update, len(documents), name)
                db[name].insert_many(documents)
        for name, documents in upserts.items():
            if documents:
                _LOGGER.info("%s upsert %d documents into %s", update, len(documents), name)
                _upsert_many(db[name], documents)

    def _documents(self, record: Record) -> list[dict[str, Any]]:
        payload = record.payload
        items = payload if isinstance(payload, list) else [payload]
        for item in items:
            if not isinstance(item, Mapping):
                raise PayloadError(
                    f"{self!r} stores dicts or lists of dicts, got {describe(payload)}"
                )
        return [dict(item) for item in items]

    def __repr__(self) -> str:
        return (
            f"MongoOutlet(database_name={self.database_name!r}, "
            f"collection={self.collection!r}, host={self.host!r}, port={self.port!r})"
        )


def _upsert_many(collection: Any, documents: list[dict[str, Any]]) -> None:
    """Write documents keyed on ``_id``, replacing those already stored.

    The first delivery (the common case) costs one ``insert_many``; only the documents that
    already exist -- a redelivery -- are then replaced one by one.
    """
    try:
        collection.insert_many(documents, ordered=False)
    except pymongo.errors.BulkWriteError as exc:
        errors = exc.details.get("writeErrors", [])
        if any(error.get("code") != _DUPLICATE_KEY for error in errors):
            raise
        for error in errors:
            document = documents[error["index"]]
            collection.replace_one({"_id": document["_id"]}, document, upsert=True)
