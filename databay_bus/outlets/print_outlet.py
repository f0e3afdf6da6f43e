"""PrintOutlet: print every record, for trying pipelines out."""

from __future__ import annotations

import sys
import threading
from typing import TYPE_CHECKING, TextIO

from databay_bus.outlets.base import Outlet, Processor

if TYPE_CHECKING:
    from collections.abc import Sequence

    from databay_bus.records import Record
    from databay_bus.update import Update

__all__ = ["PrintOutlet"]

_print_lock = threading.Lock()  # lines of concurrent pushes never interleave


class PrintOutlet(Outlet):
    """Prints one line per record: ``'<update> <record>'``.

    Args:
        only_payload: print ``str(record.payload)`` instead of the whole record.
        skip_update: leave out the ``'<update> '`` prefix.
        processors, name: see :class:`~databay_bus.Outlet`.
        file: the stream to print to; default ``sys.stdout`` (looked up at every push).
    """

    def __init__(
        self,
        only_payload: bool = False,
        skip_update: bool = False,
        processors: Processor | Sequence[Processor] | None = None,
        name: str | None = None,
        *,
        file: TextIO | None = None,
    ) -> None:
        super().__init__(processors, name)
        self.only_payload = only_payload
        self.skip_update = skip_update
        self._file = file

    def push(self, records: list[Record], update: Update) -> None:
        lines = []
        for record in records:
            body = str(record.payload) if self.only_payload else str(record)
            lines.append(body if self.skip_update else f"{update} {body}")
        if not lines:
            return
        stream = self._file if self._file is not None else sys.stdout
        with _print_lock:
            stream.write("\n".join(lines) + "\n")
            stream.flush()

    def __repr__(self) -> str:
        return f"PrintOutlet(only_payload={self.only_payload}, skip_update={self.skip_update})"
