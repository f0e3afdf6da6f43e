"""FileOutlet: append each record's payload to a text file, one line per record."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from databay_bus.outlets._files import FileTarget, TargetedFileOutlet
from databay_bus.records import MetadataKey

if TYPE_CHECKING:
    from collections.abc import Sequence

    from databay_bus.outlets.base import Processor
    from databay_bus.records import Record
    from databay_bus.update import Update

__all__ = ["FileOutlet"]


class FileOutlet(TargetedFileOutlet):
    """Writes ``str(record.payload)`` and a newline per record.

    Each push opens every target file once and closes it before returning; parent folders
    are created. Records choose their file, mode and encoding through the metadata keys below.

    Args:
        default_filepath: the file for records without :attr:`FILEPATH`.
        default_file_mode: ``'a'`` appends; ``'w'`` empties the file once per transfer.
        default_encoding: the text encoding for records without :attr:`FILE_ENCODING`.
        processors, name: see :class:`~databay_bus.Outlet`.

    Raises:
        ConfigurationError: a file mode other than ``'a'`` or ``'w'``.
    """

    FILEPATH = MetadataKey("FileOutlet.FILEPATH")
    """Metadata key: the file a record is written to."""
    FILE_MODE = MetadataKey("FileOutlet.FILE_MODE")
    """Metadata key: ``'a'`` or ``'w'`` for this record's file."""
    FILE_ENCODING = MetadataKey("FileOutlet.FILE_ENCODING")
    """Metadata key: the text encoding of this record's file."""

    def __init__(
        self,
        default_filepath: str | os.PathLike[str],
        default_file_mode: str = "a",
        default_encoding: str = "utf-8",
        processors: Processor | Sequence[Processor] | None = None,
        name: str | None = None,
    ) -> None:
        keys = (self.FILEPATH, self.FILE_MODE, self.FILE_ENCODING)
        super().__init__(
            keys, default_filepath, default_file_mode, default_encoding, processors, name
        )

    @property
    def default_encoding(self) -> str:
        return self._targets.default_encoding

    def _write(self, target: FileTarget, records: list[Record], update: Update) -> None:
        with target.path.open(target.mode, encoding=target.encoding) as file:
            file.writelines(f"{record.payload}\n" for record in records)

    def __repr__(self) -> str:
        return (
            f"FileOutlet(default_filepath={self.default_filepath!r}, "
            f"default_file_mode={self.default_file_mode!r}, "
            f"default_encoding={self.default_encoding!r})"
        )
