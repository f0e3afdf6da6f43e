"""Child processes in tests: never left running when a test fails half-way."""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from typing import TypeVar

__all__ = ["reaped"]

P = TypeVar("P", bound="subprocess.Popen[str]")


@contextlib.contextmanager
def reaped(process: P) -> Iterator[P]:
    """Yield ``process``; on the way out, kill it if it still runs and collect its pipes.

    ``with Popen(...)`` would wait for a child that hangs; this never does.
    """
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
