"""FileInlet: read a text file line by line, or whole, on every pull."""

from __future__ import annotations

import enum
import os
import threading
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from databay_bus.errors import NodeInactiveError
from databay_bus.inlets.base import Inlet

if TYPE_CHECKING:
    from databay_bus.update import Update

__all__ = ["FileInlet", "FileInletMode"]


class FileInletMode(enum.Enum):
    """How a :class:`FileInlet` reads its file."""

    LINE = "line"
    """One line per pull, like following a log file."""
    FILE = "file"
    """The whole file on every pull."""


class FileInlet(Inlet):
    """Reads a text file.

    In ``LINE`` mode the file is opened in :meth:`on_start` and each pull returns the next line
    without its line ending; at the end of the file a pull returns nothing, and lines appended
    later are picked up by later pulls. In ``FILE`` mode each pull returns the whole content as
    one record (nothing for an empty file).

    Args:
        filepath: the file to read; it must exist when the inlet starts.
        read_mode: :class:`FileInletMode` (or its value, ``'line'``/``'file'``).
        encoding: the file's text encoding.
        metadata, name: see :class:`~databay_bus.Inlet`.

    Raises:
        FileNotFoundError: at start, when ``filepath`` does not exist (or is not a file).
        NodeInactiveError: a LINE-mode pull while the inlet is not started.
    """

    def __init__(
        self,
        filepath: str | os.PathLike[str],
        read_mode: FileInletMode | str = FileInletMode.LINE,
        metadata: dict[str, Any] | None = None,
        name: str | None = None,
        *,
        encoding: str = "utf-8",
    ) -> None:
        super().__init__(metadata, name)
        self.filepath = Path(filepath)
        self.read_mode = FileInletMode(read_mode)
        self.encoding = encoding
        self._file: IO[str] | None = None
        self._lock = threading.Lock()

    def on_start(self) -> None:
        if not self.filepath.is_file():
            raise FileNotFoundError(
                f"{self!r}: cannot start, {str(self.filepath)!r} does not exist or is not a file"
            )
        if self.read_mode is FileInletMode.LINE:
            self._file = self.filepath.open(encoding=self.encoding)

    def on_shutdown(self) -> None:
        with self._lock:
            file, self._file = self._file, None
        if file is not None:
            file.close()

    def pull(self, update: Update) -> list[str] | str:
        if self.read_mode is FileInletMode.FILE:
            content = self.filepath.read_text(encoding=self.encoding)
            return content if content else []
        with self._lock:
            if self._file is None:
                raise NodeInactiveError(f"{self!r}: pull() before on_start() (or after shutdown)")
            line = self._file.readline()
        if not line:
            return []
        return line[:-1] if line.endswith("\n") else line

    def __repr__(self) -> str:
        return (
            f"FileInlet(filepath={str(self.filepath)!r}, read_mode={self.read_mode.value!r}, "
            f"metadata={self.metadata!r})"
        )
