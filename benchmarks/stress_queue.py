"""Stress the queue's crash safety: 200+ SIGKILLs of a planner with a queued link.

The long version of tests/test_crash.py (same worker, same checks), kept out of the test
run. Each round starts tests/queue/crash_worker.py, kills it with SIGKILL at a random
moment and starts it again; a final run drains the queue, then every stored record must be
in both outlet files with its id, with no source gap, duplicates at most one batch per kill
and per outlet, and ``PRAGMA integrity_check`` ok.

Run: ``python benchmarks/stress_queue.py [--kills 220] [--seed 1] [--dir DIR]``.
Prints one JSON line with the figures; exit status 0 when every check passed.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "tests" / "queue")]

from crash_worker import verify  # noqa: E402
from test_crash import drain, kill_repeatedly  # noqa: E402

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=220)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--dir", default=None, help="keep the files here (default: a temp dir)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as temp:
        directory = Path(args.dir or temp)
        directory.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        kill_repeatedly(directory, args.kills, random.Random(args.seed))
        drain(directory)
        try:
            figures = verify(directory, args.kills)
        except AssertionError as exc:
            print(json.dumps({"ok": False, "error": str(exc)}))
            return 1
        figures.update(ok=True, seconds=round(time.monotonic() - started, 1), seed=args.seed)
        print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
