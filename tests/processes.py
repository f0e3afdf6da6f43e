"""Child processes in tests: never left running when a test fails half-way."""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
from collections.abc import Iterator
from typing import TypeVar

__all__ = ["reaped"]

P = TypeVar("P", bound="subprocess.Popen[str]")


@contextlib.contextmanager
def reaped(process: P) -> Iterator[P]:
    """Yield ``process``; on the way out, kill it if it still runs and collect its pipes.

    ``with Popen(...)`` would wait for a child that hangs; this never does. When a test
    fails with its child still running, the child is first sent SIGABRT: one started with
    ``-X faulthandler`` then writes every thread's stack to its stderr, which is added to
    the failure (a hang that happens once in a hundred runs is then seen where it hung).
    """
    try:
        yield process
    except BaseException as exc:
        stacks = _abort(process)
        if stacks:
            exc.add_note(f"the child was still running; its stderr after SIGABRT:\n{stacks}")
        raise
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()


def _abort(process: subprocess.Popen[str]) -> str:
    """SIGABRT a child that still runs and return the end of its stderr ('' if none)."""
    if process.poll() is not None or sys.platform == "win32":
        return ""
    process.send_signal(signal.SIGABRT)
    try:
        _, err = process.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        return ""
    return (err or "")[-8000:]
