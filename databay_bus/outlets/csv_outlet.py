"""CsvOutlet: write dict payloads as CSV rows, with one header per file.

Column rule: a file's columns are its header. A new (or just truncated) file gets the keys of
the records written to it in that push, in the order they first appear. A record without some
column gets an empty cell. A record with a key the header lacks widens the file: the new
column is added on the right, the file is rewritten once with empty cells in the older rows,
and writing continues. Values never land under another column's name.
"""

from __future__ import annotations

import csv
import logging
import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from databay_bus.errors import PayloadError, describe
from databay_bus.outlets._files import FileTarget, TargetedFileOutlet
from databay_bus.records import MetadataKey

if TYPE_CHECKING:
    from collections.abc import Sequence

    from databay_bus.outlets.base import Processor
    from databay_bus.records import Record
    from databay_bus.update import Update

__all__ = ["CsvOutlet"]

_LOGGER = logging.getLogger(__name__)


class CsvOutlet(TargetedFileOutlet):
    """Writes each record's payload (a dict) as one CSV row.

    Each push opens every target file once; parent folders are created; the header is written
    once per file; see the module docstring for how columns stay aligned.

    Args:
        default_filepath: the file for records without :attr:`CSV_FILE`.
        default_file_mode: ``'a'`` appends; ``'w'`` empties the file once per transfer.
        processors, name: see :class:`~databay_bus.Outlet`.
        encoding: the files' text encoding.

    Raises:
        PayloadError: a payload is not a dict (checked before anything is written).
        ConfigurationError: a file mode other than ``'a'`` or ``'w'``.
    """

    CSV_FILE = MetadataKey("CsvOutlet.CSV_FILE")
    """Metadata key: the CSV file a record is written to."""
    FILE_MODE = MetadataKey("CsvOutlet.FILE_MODE")
    """Metadata key: ``'a'`` or ``'w'`` for this record's file."""

    def __init__(
        self,
        default_filepath: str | os.PathLike[str],
        default_file_mode: str = "a",
        processors: Processor | Sequence[Processor] | None = None,
        name: str | None = None,
        *,
        encoding: str = "utf-8",
    ) -> None:
        keys = (self.CSV_FILE, self.FILE_MODE, None)
        super().__init__(keys, default_filepath, default_file_mode, encoding, processors, name)

    def _check(self, records: list[Record]) -> None:
        for record in records:
            if not isinstance(record.payload, Mapping):
                raise PayloadError(
                    f"{self!r} writes dict payloads only, got {describe(record.payload)}"
                )

    def _write(self, target: FileTarget, records: list[Record], update: Update) -> None:
        rows = [{str(k): v for k, v in r.payload.items()} for r in records]
        _LOGGER.info(
            "%s writing %d rows into %s (mode %r)", update, len(rows), target.path, target.mode
        )
        header = [] if target.truncates else _read_header(target)
        columns = list(header)
        known = set(columns)
        for row in rows:
            for key in row:
                if key not in known:
                    known.add(key)
                    columns.append(key)
        if header and len(columns) > len(header):
            _widen(target, columns)
        with target.path.open(target.mode, newline="", encoding=target.encoding) as file:
            writer = csv.DictWriter(file, fieldnames=columns, restval="")
            if not header:
                writer.writeheader()
            writer.writerows(rows)

    def __repr__(self) -> str:
        return (
            f"CsvOutlet(default_filepath={self.default_filepath!r}, "
            f"default_file_mode={self.default_file_mode!r})"
        )


def _read_header(target: FileTarget) -> list[str]:
    """The header of an existing CSV file, or [] for a missing or empty file."""
    try:
        with target.path.open(newline="", encoding=target.encoding) as file:
            return next(csv.reader(file), [])
    except FileNotFoundError:
        return []


def _widen(target: FileTarget, columns: list[str]) -> None:
    """Rewrite the file under the wider header ``columns`` (atomically, via a temporary file)."""
    _LOGGER.warning("%s: new columns, rewriting with header %s", target.path, columns)
    folder = target.path.parent
    handle, temporary = tempfile.mkstemp(prefix=f".{target.path.name}.", dir=folder)
    try:
        with (
            target.path.open(newline="", encoding=target.encoding) as source,
            os.fdopen(handle, "w", newline="", encoding=target.encoding) as out,
        ):
            reader = csv.reader(source)
            next(reader, None)
            writer = csv.writer(out)
            writer.writerow(columns)
            padding = len(columns)
            for row in reader:
                writer.writerow(row + [""] * (padding - len(row)))
        shutil.copymode(target.path, temporary)  # mkstemp makes it private (0600)
        os.replace(temporary, target.path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
