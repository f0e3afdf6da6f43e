"""FileInlet: LINE mode follows a file, FILE mode reads it whole, a missing file fails at start."""

from __future__ import annotations

from pathlib import Path

import pytest

from databay_bus import Link, Outlet, Record
from databay_bus.errors import NodeInactiveError
from databay_bus.inlets import FileInlet, FileInletMode
from databay_bus.link import Update

UPDATE = Update([], 0)


class Collect(Outlet):
    def __init__(self) -> None:
        super().__init__()
        self.payloads: list[object] = []

    def push(self, records: list[Record], update: Update) -> None:
        self.payloads.extend(r.payload for r in records)


def test_line_mode_one_line_per_pull_then_nothing(tmp_path: Path) -> None:
    path = tmp_path / "log.txt"
    path.write_text("first\nsecond\r\nlast-without-newline", encoding="utf-8")
    inlet = FileInlet(path)
    inlet.try_start()
    try:
        pulled = [inlet.pull(UPDATE) for _ in range(5)]
    finally:
        inlet.try_shutdown()
    assert pulled == ["first", "second", "last-without-newline", [], []]


def test_line_mode_picks_up_appended_lines(tmp_path: Path) -> None:
    path = tmp_path / "log.txt"
    path.write_text("one\n", encoding="utf-8")
    inlet = FileInlet(path)
    outlet = Collect()
    link = Link(inlet, outlet, interval=1)
    link.on_start()
    try:
        link.transfer()
        link.transfer()
        with path.open("a", encoding="utf-8") as file:
            file.write("two\nthree\n")
        link.transfer()
        link.transfer()
        link.transfer()
    finally:
        link.on_shutdown()
    assert outlet.payloads == ["one", "two", "three"]


def test_line_mode_keeps_empty_lines_as_records(tmp_path: Path) -> None:
    path = tmp_path / "log.txt"
    path.write_text("a\n\nb\n", encoding="utf-8")
    inlet = FileInlet(path, "line")
    inlet.try_start()
    try:
        assert [inlet.pull(UPDATE) for _ in range(4)] == ["a", "", "b", []]
    finally:
        inlet.try_shutdown()


def test_line_mode_pull_when_not_started(tmp_path: Path) -> None:
    path = tmp_path / "log.txt"
    path.write_text("a\n", encoding="utf-8")
    with pytest.raises(NodeInactiveError, match="before on_start"):
        FileInlet(path).pull(UPDATE)


def test_file_mode_reads_whole_file_every_pull(tmp_path: Path) -> None:
    path = tmp_path / "data.txt"
    path.write_text("a\nb\n", encoding="utf-8")
    inlet = FileInlet(path, read_mode=FileInletMode.FILE)
    inlet.try_start()
    try:
        assert inlet.pull(UPDATE) == "a\nb\n"
        path.write_text("changed", encoding="utf-8")
        assert inlet.pull(UPDATE) == "changed"
        path.write_text("", encoding="utf-8")
        assert inlet.pull(UPDATE) == []
    finally:
        inlet.try_shutdown()


@pytest.mark.parametrize("mode", list(FileInletMode))
def test_missing_file_fails_at_start(tmp_path: Path, mode: FileInletMode) -> None:
    inlet = FileInlet(tmp_path / "absent.txt", mode)
    with pytest.raises(FileNotFoundError, match=r"absent\.txt"):
        inlet.try_start()
    assert not inlet.active


def test_shutdown_closes_the_file(tmp_path: Path) -> None:
    path = tmp_path / "log.txt"
    path.write_text("a\n", encoding="utf-8")
    inlet = FileInlet(path)
    inlet.try_start()
    handle = inlet._file
    inlet.try_shutdown()
    assert handle is not None and handle.closed
    assert inlet._file is None


def test_encoding_and_repr(tmp_path: Path) -> None:
    path = tmp_path / "latin.txt"
    path.write_bytes("café\n".encode("latin-1"))
    inlet = FileInlet(path, encoding="latin-1", metadata={"k": 1})
    inlet.try_start()
    try:
        assert inlet.pull(UPDATE) == "café"
    finally:
        inlet.try_shutdown()
    assert (
        repr(inlet) == f"FileInlet(filepath={str(path)!r}, read_mode='line', metadata={{'k': 1}})"
    )


def test_bad_mode_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="'words'"):
        FileInlet(tmp_path / "x", "words")
