"""Measurement worker: ``python -m benchmarks._worker --lib databay|databay_bus``.

Reads one JSON request per line on stdin (``{"scenario": N, "case": {...}, "mode": "full"}``)
and answers one JSON line on the original stdout: ``{"result": {...}}``,
``{"unavailable": "why"}`` or ``{"error": "traceback"}``. Anything the libraries print goes to
stderr, so it cannot corrupt the protocol. The runner starts one worker per library (a fresh
one per sample for scenarios that leave threads or global state behind).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import signal
import sys
import traceback
from typing import Any

from benchmarks._common import Unavailable

__all__ = ["SCENARIO_MODULES", "as_started_normally", "handle", "main"]

SCENARIO_MODULES = {
    1: "benchmarks.scenario_1_transfer",
    2: "benchmarks.scenario_2_batches",
    3: "benchmarks.scenario_3_timing",
    4: "benchmarks.scenario_4_many_links",
    5: "benchmarks.scenario_5_queue",
    6: "benchmarks.scenario_6_http",
    7: "benchmarks.scenario_7_postgres",
    8: "benchmarks.scenario_8_backlog",
}


def handle(lib: str, request: dict[str, Any]) -> dict[str, Any]:
    """Run one measurement and return the answer object."""
    module = importlib.import_module(SCENARIO_MODULES[int(request["scenario"])])
    try:
        result = module.measure(lib, request["case"], request["mode"])
    except Unavailable as exc:
        return {"unavailable": str(exc)}
    except Exception:
        return {"error": traceback.format_exc()}
    return {"result": result}


def as_started_normally() -> None:
    """Give SIGINT Python's own handler, as a program started in a terminal, by cron or by a
    service manager has it, whatever the runner was started with.

    A runner started in the background (``nohup python -m benchmarks &``) passes SIGINT on
    ignored, and then ``asyncio.run``, which every Databay transfer calls, skips installing
    and restoring its Ctrl-C handler: Databay measured 117 instead of 149 us per transfer
    on one machine, with the same code. Without this, a figure depended on how the run
    was started.
    """
    signal.signal(signal.SIGINT, signal.default_int_handler)


def main(argv: list[str]) -> int:
    as_started_normally()
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--lib", required=True)
    args = parser.parse_args(argv)
    protocol = os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1)
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    sys.stdout = sys.stderr
    for line in sys.stdin:
        if not line.strip():
            continue
        answer = handle(args.lib, json.loads(line))
        protocol.write(json.dumps(answer) + "\n")
        protocol.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
