"""FileInlet's tail mode: only appended lines, by a cursor committed with the records."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from databay_bus import Link, Outlet, Record, Update
from databay_bus.inlets import FileInlet
from databay_bus.queue import SqliteQueue


class Keep(Outlet):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[Any] = []

    def push(self, records: list[Record], update: Update) -> None:
        self.lines.extend(r.payload for r in records)


def tail_link(path: Path, queue: SqliteQueue, keep: Keep, **options: Any) -> Link:
    inlet = FileInlet(path, "tail", name="log", **options)
    link = Link(inlet, keep, 1, tags="logs", queue=queue)
    link.on_start()
    return link


def append(path: Path, text: str) -> None:
    with path.open("a", encoding="utf-8") as file:
        file.write(text)


def test_only_complete_appended_lines_once_across_restarts(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    log.write_text("a\nb\n", encoding="utf-8")
    queue, keep = SqliteQueue(tmp_path / "q.db"), Keep()
    link = tail_link(log, queue, keep)
    link.transfer()
    append(log, "c\nd-partial")
    link.transfer()
    link.transfer()  # nothing new: the partial line waits
    link.on_shutdown()
    queue.close()
    append(log, "-done\ne\n")
    queue = SqliteQueue(tmp_path / "q.db")  # a restart: a new inlet reads from the cursor
    link = tail_link(log, queue, keep)
    link.transfer()
    link.on_shutdown()
    queue.close()
    assert keep.lines == ["a", "b", "c", "d-partial-done", "e"]


def test_rotation_and_truncation_restart_from_the_new_content(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    log.write_text("one\ntwo\n", encoding="utf-8")
    queue, keep = SqliteQueue(tmp_path / "q.db"), Keep()
    link = tail_link(log, queue, keep)
    link.transfer()
    os.rename(log, tmp_path / "app.log.1")  # rotated: a new file under the name
    log.write_text("three\n", encoding="utf-8")
    link.transfer()
    log.write_text("", encoding="utf-8")  # truncated
    append(log, "four\n")
    link.transfer()
    with log.open("r+", encoding="utf-8") as file:  # copytruncate, then more than before
        file.truncate(0)
        file.write("FIVE\nsix\n")
    link.transfer()
    link.on_shutdown()
    queue.close()
    assert keep.lines == ["one", "two", "three", "four", "FIVE", "six"]


def test_max_lines_per_pull(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    log.write_text("".join(f"{n}\n" for n in range(5)), encoding="utf-8")
    queue, keep = SqliteQueue(tmp_path / "q.db"), Keep()
    link = tail_link(log, queue, keep, max_lines=2)
    for expected in (["0", "1"], ["0", "1", "2", "3"], ["0", "1", "2", "3", "4"]):
        link.transfer()
        assert keep.lines == expected
    link.on_shutdown()
    queue.close()
