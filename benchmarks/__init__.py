"""Benchmarks of databay_bus side by side with Databay 0.3.0 (issue 5).

Run ``python -m benchmarks`` (``--help`` for options). Each ``scenario_N_*.py`` module measures
one scenario with whichever library it is given, so the same code runs on databay_bus in the
project's environment and on Databay in its own venv (``benchmarks/.venv-databay``). Nothing in
this package imports either library at import time.
"""

from __future__ import annotations

__all__: list[str] = []
