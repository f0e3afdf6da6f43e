"""``databay-bus cursor list|set|reset``: the operator's view of inlet cursors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from databay_bus.cli import main
from databay_bus.queue import SqliteQueue
from databay_bus.queue.cursors import CursorWrite


@pytest.fixture
def queue_file(tmp_path: Path) -> str:
    path = tmp_path / "q.db"
    with SqliteQueue(path) as queue:
        queue.enqueue("prices", [], [], cursors={"feed": CursorWrite('{"since":"t1"}', 0)})
    return str(path)


def test_list_set_reset(queue_file: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["cursor", "list", "--queue", queue_file, "--json"]) == 0
    (row,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert (row["link"], row["inlet"], row["value"], row["version"]) == (
        "prices",
        "feed",
        {"since": "t1"},
        1,
    )
    args = ["--queue", queue_file, "--link", "prices", "--inlet", "feed"]
    assert main(["cursor", "set", *args, '{"since": "t0"}']) == 0
    assert main(["cursor", "list", "--queue", queue_file]) == 0
    out = capsys.readouterr().out
    assert '{"since": "t0"}' in out and " 2 " in out
    assert main(["cursor", "reset", *args]) == 0
    assert "reset" in capsys.readouterr().out
    with SqliteQueue(queue_file) as queue:
        assert queue.cursor("prices", "feed") is None


def test_bad_values_and_a_running_pipeline_are_refused(
    queue_file: str, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["--queue", queue_file, "--link", "prices", "--inlet", "feed"]
    assert main(["cursor", "set", *args, "not json"]) == 1
    assert "must be JSON" in capsys.readouterr().err
    with SqliteQueue(queue_file):  # a pipeline holds the queue
        assert main(["cursor", "list", "--queue", queue_file]) == 0  # reading is fine
        assert '{"since": "t1"}' in capsys.readouterr().out
        assert main(["cursor", "reset", *args]) == 1
        assert "in use (a pipeline runs with it)" in capsys.readouterr().err
        assert main(["cursor", "set", *args, "3"]) == 1
    with SqliteQueue(queue_file) as queue:
        stored = queue.cursor("prices", "feed")
        assert stored is not None and stored.value == {"since": "t1"}
    assert main(["cursor", "list", "--queue", str(Path(queue_file).with_name("nope.db"))]) == 1
