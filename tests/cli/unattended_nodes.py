"""Nodes for the unattended-run CLI tests, driven by flag files (a real subprocess cannot be
reached otherwise): a source that is down while a file exists, an outlet that hangs."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

from databay_bus import Inlet, Outlet, Record, Update


class FlagSource(Inlet):
    """Pulls the next integer; raises ConnectionError while ``down_flag`` exists. Every
    attempt appends a line to ``attempts`` (so a test can see the source being tried)."""

    def __init__(self, down_flag: str, attempts: str, name: str | None = None) -> None:
        super().__init__(name=name)
        self.down_flag = Path(down_flag)
        self.attempts = Path(attempts)
        self.next = 0

    def pull(self, update: Update) -> list[int]:
        with self.attempts.open("a", encoding="utf-8") as file:
            file.write(f"{update.transfer_number}\n")
        if self.down_flag.exists():
            raise ConnectionError(f"source down ({self.down_flag.name} exists)")
        self.next += 1
        return [self.next]


class HangingOutlet(Outlet):
    """Writes JSON lines (payload, id) to ``path``; while ``hang_flag`` exists a push never
    returns (it notes that it started hanging in ``path`` + '.hung')."""

    def __init__(self, path: str, hang_flag: str, name: str | None = None) -> None:
        super().__init__(name=name)
        self.path = Path(path)
        self.hang_flag = Path(hang_flag)

    def push(self, records: list[Record], update: Update) -> None:
        if self.hang_flag.exists():
            Path(f"{self.path}.hung").write_text("hung\n", encoding="utf-8")
            threading.Event().wait()  # forever
        with self.path.open("a", encoding="utf-8") as file:
            for record in records:
                file.write(json.dumps({"payload": record.payload, "id": record.id}) + "\n")
            file.flush()
            os.fsync(file.fileno())
