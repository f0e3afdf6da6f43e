"""FileInlet: read a text file line by line, whole, or only what was appended (tail)."""

from __future__ import annotations

import enum
import hashlib
import os
import threading
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from databay_bus._validation import positive_int
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
    TAIL = "tail"
    """The complete lines appended since the last committed offset (a cursor, see
    docs/cursors.md): with a queue, every line is ingested once, across restarts."""


class FileInlet(Inlet):
    """Reads a text file.

    In ``LINE`` mode the file is opened in :meth:`on_start` and each pull returns the next line
    without its line ending; at the end of the file a pull returns nothing, and lines appended
    later are picked up by later pulls. In ``FILE`` mode each pull returns the whole content as
    one record (nothing for an empty file).

    In ``TAIL`` mode each pull returns the complete lines (up to ``max_lines``) written after
    the position in its cursor, and commits the new position with them (``update.cursor``:
    the byte offset, the file's inode and a fingerprint of its first bytes). A line without
    its newline yet waits for the next pull. Rotation (a new file under the name: another
    inode) and truncation (the file is shorter than the offset, or its first bytes changed,
    as after ``copytruncate``) restart from the beginning of the new content; lines added to
    the old file after the last pull before a rotation are not read.

    Args:
        filepath: the file to read; it must exist when the inlet starts.
        read_mode: :class:`FileInletMode` (or its value, ``'line'``/``'file'``).
        encoding: the file's text encoding.
        max_lines: in ``TAIL`` mode, at most this many lines per pull.
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
        max_lines: int = 1000,
    ) -> None:
        super().__init__(metadata, name)
        self.filepath = Path(filepath)
        self.read_mode = FileInletMode(read_mode)
        self.encoding = encoding
        self.max_lines = positive_int(max_lines, "max_lines", "FileInlet")
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
        if self.read_mode is FileInletMode.TAIL:
            return self._tail(update)
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

    def _tail(self, update: Update) -> list[str]:
        """The complete lines after the committed position; commits the position after them."""
        cursor = update.cursor
        with self.filepath.open("rb") as file:
            inode = os.fstat(file.fileno()).st_ino
            size = os.fstat(file.fileno()).st_size
            offset, fingerprint = 0, ""
            if isinstance(cursor, dict) and cursor.get("inode") == inode:
                offset, fingerprint = int(cursor.get("offset", 0)), str(cursor.get("head", ""))
            if offset > size or (offset and _fingerprint(file, offset) != fingerprint):
                offset = 0  # truncated, or rewritten from the start: read the new content
            file.seek(offset)
            lines: list[bytes] = []
            while len(lines) < self.max_lines:
                line = file.readline()
                if not line.endswith(b"\n"):
                    break  # the end, or a line still being written: wait for its newline
                lines.append(line)
            end = offset + sum(len(line) for line in lines)
            state = {"inode": inode, "offset": end, "head": _fingerprint(file, end)}
        if state != cursor:
            update.commit_cursor(state)
        return [line.rstrip(b"\r\n").decode(self.encoding) for line in lines]

    def __repr__(self) -> str:
        return (
            f"FileInlet(filepath={str(self.filepath)!r}, read_mode={self.read_mode.value!r}, "
            f"metadata={self.metadata!r})"
        )


#: How many leading bytes identify a file's content across pulls (truncation detection).
_HEAD = 128


def _fingerprint(file: IO[bytes], offset: int) -> str:
    """A hash of the first ``min(offset, _HEAD)`` bytes of ``file``."""
    file.seek(0)
    head = file.read(min(offset, _HEAD))
    return hashlib.blake2b(head, digest_size=8).hexdigest()
