"""HTTP to MongoDB: poll a JSON API with ``HttpInlet`` and store the documents with ``MongoOutlet``.

Shows: ``MongoOutlet`` (one client from start to shutdown, one ``insert_many`` per
collection, the ``MONGODB_COLLECTION`` metadata key) fed by ``HttpInlet`` from a local
aiohttp server the example starts itself. It needs a MongoDB server: pass ``--mongo-uri`` or
set ``DATABAY_BUS_MONGO_URI``; without one it explains that and exits successfully.
Needs the ``all`` extra.
Run: ``python examples/http_to_mongo.py --mongo-uri mongodb://localhost:27017 --transfers 3``
Prints ``stored N documents in <database>.<collection>`` (the database is dropped afterwards
unless ``--keep``).
"""

from __future__ import annotations

import argparse
import os
import time
import uuid

from local_source import LocalPriceSource  # next to this script

from databay_bus import Link
from databay_bus.inlets import HttpInlet
from databay_bus.outlets import MongoOutlet
from databay_bus.planners import ApsPlanner


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--transfers", type=int, default=3)
    parser.add_argument("--interval", type=float, default=1.0)
    parser.add_argument("--mongo-uri", default=os.environ.get("DATABAY_BUS_MONGO_URI"))
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    args = parser.parse_args(argv)
    if not args.mongo_uri:
        print(
            "no MongoDB server given: pass --mongo-uri mongodb://host:port "
            "or set DATABAY_BUS_MONGO_URI; nothing to do",
            flush=True,
        )
        return

    database = f"databay_bus_example_{uuid.uuid4().hex[:8]}"
    outlet = MongoOutlet(
        database_name=database,
        collection="prices",
        host=args.mongo_uri,
        serverSelectionTimeoutMS=5000,
    )
    with LocalPriceSource() as source:
        link = Link(HttpInlet(source.url, timeout=10), outlet, args.interval, tags="mongo")
        planner = ApsPlanner(link)
        planner.start(block=False)
        while planner.running and link.transfer_number + 1 < args.transfers:
            time.sleep(0.01)
        planner.shutdown()

    import pymongo  # the outlet's client is closed by now; look with a client of our own

    with pymongo.MongoClient(args.mongo_uri, serverSelectionTimeoutMS=5000) as client:
        count = client[database]["prices"].count_documents({})
        print(f"stored {count} documents in {database}.prices", flush=True)
        if not args.keep:
            client.drop_database(database)


if __name__ == "__main__":
    main()
