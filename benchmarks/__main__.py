"""``python -m benchmarks``: run the benchmark harness (see benchmarks/run.py)."""

from __future__ import annotations

import sys

from benchmarks.run import main

__all__: list[str] = []

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
