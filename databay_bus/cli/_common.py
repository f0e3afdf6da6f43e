"""What every command module shares: exit codes, the failure to report, argument types."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from typing import Any

from databay_bus.errors import ConfigError

__all__ = [
    "EXIT_FAILURE",
    "EXIT_OK",
    "EXIT_USAGE",
    "CommandFailure",
    "level",
    "load_pipeline",
    "positive_float",
    "positive_int",
    "print_table",
]

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2


class CommandFailure(Exception):
    """A command failed; the message is printed and the process exits with ``code``."""

    def __init__(self, message: str, code: int = EXIT_FAILURE) -> None:
        super().__init__(message)
        self.code = code


def positive_float(text: str) -> float:
    """Seconds > 0, as a number or a duration such as ``'5m'``."""
    from databay_bus.config import parse_duration

    try:
        return parse_duration(float(text) if _is_number(text) else text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def positive_int(text: str) -> int:
    """An integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def level(text: str) -> int:
    """A logging level name, case-insensitive."""
    name = text.upper()
    if name not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
        raise argparse.ArgumentTypeError(
            f"must be DEBUG, INFO, WARNING, ERROR or CRITICAL, got {text!r}"
        )
    return int(getattr(logging, name))


def load_pipeline(path: str, dry_run: bool = False) -> Any:
    """Load a pipeline file; an invalid one is a usage error."""
    from databay_bus.config import load

    try:
        return load(path, dry_run=dry_run)
    except ConfigError as exc:
        raise CommandFailure(f"invalid pipeline: {exc}", EXIT_USAGE) from None


def print_table(rows: Sequence[Sequence[str]]) -> None:
    """Print ``rows`` (the first is the header) in left-aligned columns."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
