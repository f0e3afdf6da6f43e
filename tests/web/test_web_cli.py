"""``databay-bus run --web``, the ``[web]`` table, reloading an edited file, ``hash-password``."""

from __future__ import annotations

import io
import json
import logging
import os
import signal
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from databay_bus.cli import main
from databay_bus.web.auth import hash_token, verify_password

TOKEN = "cli-admin-token"


def _pipeline(tags: str, port: int, interval: str = "1h") -> str:
    return f"""\
[queue]
path = "${{PIPELINE_DIR}}/queue.sqlite3"

[web]
listen = "127.0.0.1:{port}"
alias = "CLI"

[web.users.ada]
role = "administrator"
tokens = ["{hash_token(TOKEN)}"]

[[links]]
tags = ["{tags}"]
interval = "{interval}"
inlets = ["null"]
outlets = ["null"]
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _call(url: str, method: str = "GET", body: Any = None) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Authorization", f"Bearer {TOKEN}")
    request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as exc:
        return exc.code, json.load(exc)
    except OSError:
        return 0, None


@pytest.fixture(autouse=True)
def _logger_level() -> Iterator[None]:
    """``run`` sets the databay_bus logger's level: put it back (records hold planners)."""
    logger = logging.getLogger("databay_bus")
    level = logger.level
    yield
    logger.setLevel(level)


def test_run_serves_the_web_interface_and_reloads_an_edited_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    port = _free_port()
    path = tmp_path / "pipeline.toml"
    path.write_text(_pipeline("first", port))
    base = f"http://127.0.0.1:{port}"
    seen: dict[str, Any] = {}

    def drive() -> None:
        try:
            deadline = time.monotonic() + 30
            while _call(base + "/readyz")[0] != 200 and time.monotonic() < deadline:
                time.sleep(0.05)
            seen["first"] = _call(base + "/api/overview")[1]
            seen["bad"] = _call(base + "/api/pipeline", "PUT", {"text": "links = 3"})
            second = _pipeline("second", port).replace('alias = "CLI"', 'alias = "CLI-2"')
            seen["good"] = _call(base + "/api/pipeline", "PUT", {"text": second})
            while time.monotonic() < deadline:
                status, data = _call(base + "/api/overview")
                if status == 200 and data["links"][0]["id"] == "second":
                    seen["second"] = data
                    break
                time.sleep(0.05)
        finally:
            os.kill(os.getpid(), signal.SIGTERM)

    helper = threading.Thread(target=drive, daemon=True)
    helper.start()
    code = main(["run", str(path), "--web", f"127.0.0.1:{port}", "--duration", "60"])
    helper.join(10)
    assert code == 0
    assert seen["first"]["alias"] == "CLI"
    assert [link["id"] for link in seen["first"]["links"]] == ["first"]
    assert seen["bad"][0] == 422 and seen["bad"][1]["problems"]
    assert seen["good"] == (200, {"saved": True, "reloaded": True})
    assert [link["id"] for link in seen["second"]["links"]] == ["second"]
    assert seen["second"]["alias"] == "CLI-2"  # the reloaded [web] table's alias
    assert 'tags = ["first"]' in path.with_name("pipeline.toml.prev").read_text()
    assert "stopped (signal received)" in capsys.readouterr().out
    assert _call(base + "/healthz")[0] == 0  # no longer listening


def test_a_bad_web_table_is_reported_by_validate(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "pipeline.toml"
    path.write_text(_pipeline("x", 8080).replace('listen = "127.0.0.1:8080"', "listen = 80"))
    assert main(["validate", str(path)]) == 2
    assert "web.listen: must be 'HOST:PORT', got 80 (int)" in capsys.readouterr().err


def test_hash_password_reads_stdin_and_makes_tokens(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("s3cret\n"))
    assert main(["hash-password", "--stdin"]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith('password_hash = "scrypt$')
    assert verify_password("s3cret", line.split('"')[1])
    assert main(["hash-password", "--token"]) == 0
    token_line, hash_line = capsys.readouterr().out.strip().splitlines()
    token = token_line.rsplit(" ", 1)[1]
    assert hash_line == f'tokens = ["{hash_token(token)}"]'
    monkeypatch.setattr("sys.stdin", io.StringIO("\n"))
    assert main(["hash-password", "--stdin"]) == 2


def test_a_saved_file_that_cannot_load_after_all_runs_the_previous_version(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    port = _free_port()
    path = tmp_path / "pipeline.toml"
    path.write_text(_pipeline("first", port))
    base = f"http://127.0.0.1:{port}"
    # Valid (a dry run opens no queue), but its queue cannot be opened for real.
    broken = _pipeline("second", port).replace(
        "${PIPELINE_DIR}/queue.sqlite3", "${PIPELINE_DIR}/missing/dir/queue.sqlite3"
    )
    seen: dict[str, Any] = {}

    def drive() -> None:
        try:
            deadline = time.monotonic() + 30
            while _call(base + "/readyz")[0] != 200 and time.monotonic() < deadline:
                time.sleep(0.05)
            seen["saved"] = _call(base + "/api/pipeline", "PUT", {"text": broken})
            time.sleep(0.5)  # the reload happens on the main thread
            while time.monotonic() < deadline:
                status, data = _call(base + "/api/overview")
                if status == 200 and data["state"] == "running":
                    seen["after"] = data
                    break
                time.sleep(0.05)
        finally:
            os.kill(os.getpid(), signal.SIGTERM)

    helper = threading.Thread(target=drive, daemon=True)
    helper.start()
    code = main(["run", str(path), "--duration", "60"])
    helper.join(10)
    assert code == 0
    assert seen["saved"] == (200, {"saved": True, "reloaded": True})
    assert [link["id"] for link in seen["after"]["links"]] == ["first"]
    assert "missing/dir" in path.read_text()  # the file keeps the edit; the old one runs


def test_hash_password_at_the_end_of_input_is_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """No terminal and nothing to read (``< /dev/null``): a usage error, not an EOFError."""

    def no_input(prompt: str = "") -> str:
        raise EOFError

    monkeypatch.setattr("getpass.getpass", no_input)
    assert main(["hash-password"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--stdin" in err[0], err
