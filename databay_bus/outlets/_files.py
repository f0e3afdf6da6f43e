"""What CsvOutlet and FileOutlet share: choosing each record's file from its metadata.

A push is split into one group of records per target file, in the order the files first
appear. Parent folders are created. Mode ``'w'`` truncates a file once per transfer: the
first batch of a transfer that writes a file in ``'w'`` opens it with ``'w'``, every later
batch of the same transfer appends, so grouped transfers keep all their records.
"""

from __future__ import annotations

import abc
import os
import threading
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from databay_bus.errors import ConfigurationError, describe
from databay_bus.outlets.base import Outlet, Processor

if TYPE_CHECKING:
    from databay_bus.records import Record
    from databay_bus.update import Update

__all__ = ["FileTarget", "FileTargets", "TargetedFileOutlet", "check_mode"]

_MODES = ("a", "w")


@dataclass(frozen=True)
class FileTarget:
    """One file a push writes to: path, the mode to open it with now, and its encoding."""

    path: Path
    mode: str
    encoding: str

    @property
    def truncates(self) -> bool:
        """True when opening the file empties it."""
        return self.mode == "w"


def check_mode(mode: Any, owner: str) -> str:
    """Return ``mode`` if it is ``'a'`` or ``'w'``; raise ConfigurationError naming ``owner``."""
    if mode not in _MODES:
        raise ConfigurationError(
            f"{owner}: file mode must be 'a' (append) or 'w' (truncate once per transfer), "
            f"got {describe(mode)}"
        )
    return str(mode)


class FileTargets:
    """Resolves the file, mode and encoding of records from metadata, with defaults.

    Args:
        owner: the outlet (named in error messages).
        path_key, mode_key, encoding_key: metadata keys overriding the defaults (an
            ``encoding_key`` of None means the encoding is always ``default_encoding``).
        default_path, default_mode, default_encoding: used when a record lacks the key.
    """

    def __init__(
        self,
        owner: object,
        path_key: str,
        mode_key: str,
        encoding_key: str | None,
        default_path: str | os.PathLike[str],
        default_mode: str,
        default_encoding: str,
    ) -> None:
        self._owner = owner
        self._keys = (path_key, mode_key, encoding_key)
        self.default_path = Path(default_path)
        self.default_mode = check_mode(default_mode, type(owner).__name__)
        self.default_encoding = default_encoding
        self._truncated: dict[Path, Hashable] = {}
        self._lock = threading.Lock()

    def group(self, records: list[Record], update: Update) -> list[tuple[FileTarget, list[Record]]]:
        """Split ``records`` by target file; every mode already accounts for this transfer."""
        path_key, mode_key, encoding_key = self._keys
        groups: dict[tuple[Path, str, str], list[Record]] = {}
        for record in records:
            metadata = record.metadata
            path = Path(metadata.get(path_key, self.default_path))
            mode = check_mode(metadata.get(mode_key, self.default_mode), repr(self._owner))
            encoding = self.default_encoding
            if encoding_key is not None:
                encoding = str(metadata.get(encoding_key, encoding))
            groups.setdefault((path, mode, encoding), []).append(record)
        transfer = (tuple(update.tags), update.transfer_number)
        result = []
        with self._lock:
            for (path, mode, encoding), members in groups.items():
                if mode == "w":
                    if self._truncated.get(path) == transfer:
                        mode = "a"
                    else:
                        self._truncated[path] = transfer
                path.parent.mkdir(parents=True, exist_ok=True)
                result.append((FileTarget(path, mode, encoding), members))
        return result


class TargetedFileOutlet(Outlet):
    """Base of CsvOutlet and FileOutlet: one :class:`FileTargets`, pushes serialised by a lock.

    Subclasses check the whole push in :meth:`_check` (before anything is written) and write
    one file's records in :meth:`_write`.
    """

    def __init__(
        self,
        targets: tuple[str, str, str | None],
        default_filepath: str | os.PathLike[str],
        default_file_mode: str,
        default_encoding: str,
        processors: Processor | Sequence[Processor] | None,
        name: str | None,
    ) -> None:
        super().__init__(processors, name)
        path_key, mode_key, encoding_key = targets
        self._targets = FileTargets(
            self,
            path_key,
            mode_key,
            encoding_key,
            default_filepath,
            default_file_mode,
            default_encoding,
        )
        self._lock = threading.Lock()

    @property
    def default_filepath(self) -> str:
        """The file for records without a file metadata key."""
        return str(self._targets.default_path)

    @property
    def default_file_mode(self) -> str:
        """``'a'`` or ``'w'`` for records without a mode metadata key."""
        return self._targets.default_mode

    def push(self, records: list[Record], update: Update) -> None:
        self._check(records)
        with self._lock:
            for target, members in self._targets.group(records, update):
                self._write(target, members, update)

    def _check(self, records: list[Record]) -> None:
        """Raise before anything is written if a record cannot be written."""

    @abc.abstractmethod
    def _write(self, target: FileTarget, records: list[Record], update: Update) -> None:
        """Write ``records`` to ``target`` (opened and closed here)."""
