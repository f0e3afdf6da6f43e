"""Profile one benchmark case on databay_bus with cProfile (main thread only).

    python -m benchmarks.profile 1 "async nodes"            # scenario, case id
    python -m benchmarks.profile 2 "B=10000 outlets=3 copy=False" --mode quick --top 30

Prints the functions with the most own time and the most cumulative time, so a missed target
can be traced to its hot spots. Case ids are those printed by ``python -m benchmarks``.
"""

from __future__ import annotations

import argparse
import cProfile
import importlib
import io
import pstats
import sys
from typing import Any

from benchmarks._common import BUS
from benchmarks._worker import SCENARIO_MODULES

__all__ = ["main"]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.profile", description=__doc__)
    parser.add_argument("scenario", type=int, choices=sorted(SCENARIO_MODULES))
    parser.add_argument("case", help="case id, e.g. 'async nodes'")
    parser.add_argument("--mode", default="quick", choices=("full", "quick", "smoke"))
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--url", help="server URL for scenario 6 (else one is started)")
    args = parser.parse_args(argv)
    module = importlib.import_module(SCENARIO_MODULES[args.scenario])
    found = [c for c in module.cases(args.mode) if c["id"] == args.case]
    if not found:
        ids = ", ".join(repr(c["id"]) for c in module.cases(args.mode))
        parser.error(f"no case {args.case!r} in scenario {args.scenario}; choose from {ids}")
    case: dict[str, Any] = found[0]
    context = getattr(module, "runner_context", None)
    if context is not None and args.url is None:
        with context(args.mode) as extra:
            return _profile(module, {**case, **extra}, args.mode, args.top)
    if args.url:
        case = {**case, "url": args.url}
    return _profile(module, case, args.mode, args.top)


def _profile(module: Any, case: dict[str, Any], mode: str, top: int) -> int:
    profiler = cProfile.Profile()
    profiler.enable()
    result = module.measure(BUS, case, mode)
    profiler.disable()
    print(f"result: {result}")
    for order in ("tottime", "cumulative"):
        text = io.StringIO()
        pstats.Stats(profiler, stream=text).sort_stats(order).print_stats(top)
        print(f"\n--- sorted by {order} ---\n{text.getvalue()}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
