"""HTTP to CSV: poll a JSON API with ``HttpInlet`` and append the rows to a CSV file.

Shows: ``HttpInlet`` (one record per element of a JSON array, one reused session, a request
timeout) feeding ``CsvOutlet`` (header written once, folders created). The API is a local
aiohttp server the example starts itself, so it runs offline. Needs the ``http`` extra.
Run: ``python examples/http_to_csv.py --transfers 3 --interval 1 --output prices.csv``
Prints ``wrote N rows to <file>`` and then the CSV file itself (header ``symbol,price,request``).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from local_source import LocalPriceSource  # next to this script

from databay_bus import Link
from databay_bus.inlets import HttpInlet
from databay_bus.outlets import CsvOutlet
from databay_bus.planners import ApsPlanner


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--transfers", type=int, default=3)
    parser.add_argument("--interval", type=float, default=1.0)
    parser.add_argument("--output", type=Path, default=None, help="CSV file (default: temporary)")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as scratch, LocalPriceSource() as source:
        output = args.output or Path(scratch) / "prices" / "prices.csv"
        link = Link(
            HttpInlet(source.url, timeout=10),
            CsvOutlet(output),
            args.interval,
            tags="prices",
        )
        planner = ApsPlanner(link)
        planner.start(block=False)
        while planner.running and link.transfer_number + 1 < args.transfers:
            time.sleep(0.01)
        planner.shutdown()
        text = output.read_text(encoding="utf-8")
        print(f"wrote {len(text.splitlines()) - 1} rows to {output}", flush=True)
        print(text, end="", flush=True)


if __name__ == "__main__":
    main()
