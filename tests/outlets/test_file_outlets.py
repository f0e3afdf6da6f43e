"""CsvOutlet and FileOutlet: folders, headers, column alignment, modes, no leaked handles."""

from __future__ import annotations

import csv
import gc
import os
from pathlib import Path

import pytest

from databay_bus import Link, Record
from databay_bus.errors import ConfigurationError, PayloadError
from databay_bus.inlets.base import Inlet
from databay_bus.link import Update
from databay_bus.outlets import CsvOutlet, FileOutlet


def update(number: int = 0) -> Update:
    return Update(["files"], number)


def rows(path: Path) -> list[list[str]]:
    with path.open(newline="", encoding="utf-8") as file:
        return list(csv.reader(file))


# -- CsvOutlet ---------------------------------------------------------------------------------


def test_csv_creates_folders_and_writes_header_once(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "er" / "out.csv"
    outlet = CsvOutlet(path)
    outlet.push([Record({"a": 1, "b": 2})], update(0))
    outlet.push([Record({"a": 3, "b": 4})], update(1))
    assert rows(path) == [["a", "b"], ["1", "2"], ["3", "4"]]


def test_csv_columns_stay_aligned_when_keys_differ(tmp_path: Path) -> None:
    path = tmp_path / "out.csv"
    outlet = CsvOutlet(path)
    outlet.push([Record({"a": 1, "b": 2}), Record({"b": 3, "c": 4}), Record({"c": 5})], update(0))
    assert rows(path) == [["a", "b", "c"], ["1", "2", ""], ["", "3", "4"], ["", "", "5"]]


def test_csv_new_key_in_later_push_widens_file(tmp_path: Path) -> None:
    path = tmp_path / "out.csv"
    outlet = CsvOutlet(path)
    outlet.push([Record({"a": 1})], update(0))
    outlet.push([Record({"b": 2, "a": 3})], update(1))
    assert rows(path) == [["a", "b"], ["1", ""], ["3", "2"]]
    assert [p.name for p in tmp_path.iterdir()] == ["out.csv"]  # no temporary left behind


def test_csv_appends_under_existing_header_order(tmp_path: Path) -> None:
    path = tmp_path / "out.csv"
    path.write_text("b,a\n1,2\n", encoding="utf-8")
    CsvOutlet(path).push([Record({"a": "x", "b": "y"})], update(0))
    assert rows(path) == [["b", "a"], ["1", "2"], ["y", "x"]]


def test_csv_mode_w_truncates_once_per_transfer(tmp_path: Path) -> None:
    path = tmp_path / "out.csv"
    path.write_text("old\nrow\n", encoding="utf-8")
    outlet = CsvOutlet(path, default_file_mode="w")
    outlet.push([Record({"n": 1}), Record({"n": 2})], update(0))
    outlet.push([Record({"n": 3})], update(0))  # a second batch of the same transfer
    assert rows(path) == [["n"], ["1"], ["2"], ["3"]]
    outlet.push([Record({"n": 4})], update(1))
    assert rows(path) == [["n"], ["4"]]


def test_csv_metadata_picks_file_and_mode(tmp_path: Path) -> None:
    default, other = tmp_path / "default.csv", tmp_path / "sub" / "other.csv"
    other.parent.mkdir()
    other.write_text("n\n0\n", encoding="utf-8")
    outlet = CsvOutlet(default)
    outlet.push(
        [
            Record({"n": 1}),
            Record({"n": 2}, {CsvOutlet.CSV_FILE: str(other), CsvOutlet.FILE_MODE: "w"}),
        ],
        update(),
    )
    assert rows(default) == [["n"], ["1"]]
    assert rows(other) == [["n"], ["2"]]


def test_csv_rejects_non_dict_payload_before_writing(tmp_path: Path) -> None:
    path = tmp_path / "out.csv"
    with pytest.raises(PayloadError, match=r"\[1, 2\] \(list\)"):
        CsvOutlet(path).push([Record({"a": 1}), Record([1, 2])], update())
    assert not path.exists()


@pytest.mark.parametrize("mode", ["r", "ab", "x", None])
def test_bad_file_mode(tmp_path: Path, mode: object) -> None:
    with pytest.raises(ConfigurationError, match="file mode"):
        CsvOutlet(tmp_path / "x.csv", default_file_mode=mode)  # type: ignore[arg-type]
    outlet = FileOutlet(tmp_path / "x.txt")
    with pytest.raises(ConfigurationError, match="file mode"):
        outlet.push([Record(1, {FileOutlet.FILE_MODE: mode})], update())


def test_csv_keeps_file_permissions_when_widening(tmp_path: Path) -> None:
    path = tmp_path / "out.csv"
    outlet = CsvOutlet(path)
    outlet.push([Record({"a": 1})], update(0))
    path.chmod(0o644)
    outlet.push([Record({"b": 1})], update(1))
    assert path.stat().st_mode & 0o777 == 0o644


# -- FileOutlet --------------------------------------------------------------------------------


def test_file_outlet_writes_one_line_per_record(tmp_path: Path) -> None:
    path = tmp_path / "new" / "out.txt"
    outlet = FileOutlet(path)
    outlet.push([Record("a"), Record({"b": 1})], update(0))
    outlet.push([Record(3)], update(1))
    assert path.read_text(encoding="utf-8") == "a\n{'b': 1}\n3\n"


def test_file_outlet_metadata_path_mode_encoding(tmp_path: Path) -> None:
    other = tmp_path / "other.txt"
    other.write_text("old\n", encoding="utf-8")
    outlet = FileOutlet(tmp_path / "default.txt", default_file_mode="a")
    meta = {
        FileOutlet.FILEPATH: other,
        FileOutlet.FILE_MODE: "w",
        FileOutlet.FILE_ENCODING: "utf-16",
    }
    outlet.push([Record("é", dict(meta)), Record("x"), Record("ü", dict(meta))], update(0))
    assert other.read_text(encoding="utf-16") == "é\nü\n"
    assert (tmp_path / "default.txt").read_text(encoding="utf-8") == "x\n"


def test_file_outlet_mode_w_truncates_once_per_transfer(tmp_path: Path) -> None:
    path = tmp_path / "out.txt"
    outlet = FileOutlet(path, default_file_mode="w")
    outlet.push([Record(1)], update(0))
    outlet.push([Record(2)], update(0))
    assert path.read_text(encoding="utf-8") == "1\n2\n"
    outlet.push([Record(3)], update(1))
    assert path.read_text(encoding="utf-8") == "3\n"


class Numbers(Inlet):
    def pull(self, update: Update) -> list[dict[str, int]]:
        return [{"n": update.transfer_number, "i": i} for i in range(3)]


def test_groupers_with_mode_w_keep_every_batch(tmp_path: Path) -> None:
    path = tmp_path / "out.csv"
    link = Link(
        Numbers(),
        CsvOutlet(path, default_file_mode="w"),
        interval=1,
        groupers=[lambda batches: [[r] for batch in batches for r in batch]],
    )
    link.transfer()
    link.transfer()
    assert rows(path) == [["n", "i"], ["1", "0"], ["1", "1"], ["1", "2"]]


def _open_files() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.skipif(not Path("/proc/self/fd").exists(), reason="needs /proc to count descriptors")
def test_no_file_handles_leak(tmp_path: Path) -> None:
    csv_outlet = CsvOutlet(tmp_path / "a.csv")
    file_outlet = FileOutlet(tmp_path / "a.txt")
    gc.collect()
    before = _open_files()
    for number in range(20):
        csv_outlet.push([Record({"k": number, f"k{number % 3}": 1})], update(number))
        file_outlet.push([Record(number)], update(number))
    assert _open_files() == before


def test_reprs(tmp_path: Path) -> None:
    assert repr(CsvOutlet("x.csv")) == "CsvOutlet(default_filepath='x.csv', default_file_mode='a')"
    assert repr(FileOutlet("x.txt", "w")) == (
        "FileOutlet(default_filepath='x.txt', default_file_mode='w', default_encoding='utf-8')"
    )
