"""Pages and API of the web interface: what they show, and what they change (and what not)."""

from __future__ import annotations

import csv
import io
import json
import re
import urllib.request
from pathlib import Path

import pytest
from web_fakes import PIPELINE, Setup, dead_letter

from databay_bus import Link, Record
from databay_bus.errors import ConfigurationError, QueueError
from databay_bus.planners import ApsPlanner
from databay_bus.queue import SqliteQueue
from databay_bus.testing import FakeClock
from databay_bus.web import MemoryHistory, SqliteHistory, WebInterface
from databay_bus.web.auth import Users, hash_password, hash_token, verify_password
from databay_bus.web.history import RunEntry, history_for
from databay_bus.web.settings import parse_listen, web_settings


def test_overview_shows_links_state_counts_and_queue_depth(setup: Setup) -> None:
    setup.link.transfer()
    setup.client.login("vic")
    page = setup.client.get("/").text
    assert 'class="state-ok" data-link="numbers"' in page
    assert "sink: 0 pending" in page
    data = setup.client.api("GET", "/api/overview", "vic").json()
    assert data["alias"] == "TEST-ALIAS" and data["state"] == "running"
    (link,) = data["links"]
    assert (link["id"], link["transfers"], link["records_pulled"], link["state"]) == (
        "numbers",
        1,
        2,
        "ok",
    )
    assert link["outlets"] == [
        {"name": "sink", "pushed": 2, "failures": 0, "pending": 0, "retrying": 0, "dead": 0}
    ]
    assert link["next_transfer_at"] is not None


def test_a_failing_outlet_turns_the_link_red_until_a_clean_transfer(setup: Setup) -> None:
    dead_letter(setup)
    setup.planner.flush_observers(10)
    setup.client.login("vic")
    page = setup.client.get("/").text
    assert 'class="state-failing" data-link="numbers"' in page
    assert "sink: ConnectionError: sink is down" in page
    setup.link.transfer()
    setup.planner.flush_observers(10)
    assert 'class="state-ok" data-link="numbers"' in setup.client.get("/").text


def test_link_page_and_api_show_nodes_and_recent_transfers(setup: Setup) -> None:
    setup.link.transfer()
    setup.planner.flush_observers(10)
    setup.client.login("vic")
    page = setup.client.get("/links/numbers").text
    assert "Numbers" in page and "Switch" in page
    detail = setup.client.api("GET", "/api/links/numbers", "vic").json()
    assert [n["name"] for n in detail["nodes"]] == ["Numbers", "sink"]
    assert detail["recent"][0]["pushed"] == {"sink": 2}
    assert setup.client.get("/links/nope").status == 404
    assert setup.client.api("GET", "/api/links/nope", "vic").json() == {"error": "no link 'nope'"}


def test_pause_resume_and_transfer_now(setup: Setup, wait_until: object) -> None:
    client = setup.client
    assert client.api("POST", "/api/links/numbers/pause", "olga").json()["changed"] is True
    assert setup.link.job is None
    assert client.api("GET", "/api/overview", "vic").json()["links"][0]["state"] == "paused"
    assert client.api("POST", "/api/links/numbers/pause", "olga").json()["changed"] is False
    assert client.api("POST", "/api/links/numbers/resume", "olga").json()["changed"] is True
    assert setup.link.job is not None
    before = setup.link.metrics.transfers
    assert client.api("POST", "/api/links/numbers/transfer", "olga").status == 202
    wait_until(lambda: setup.link.metrics.transfers > before)  # type: ignore[operator]
    assert client.api("POST", "/api/planner/pause", "olga").status == 200
    assert client.api("GET", "/api/overview", "vic").json()["paused"] is True
    assert client.api("POST", "/api/planner/resume", "olga").status == 200
    actions = [e["action"] for e in client.api("GET", "/api/audit", "ada").json()["audit"]]
    assert actions[:3] == ["planner-resume", "planner-pause", "transfer"]


def test_operating_a_stopped_planner_is_a_409(setup: Setup) -> None:
    setup.planner.shutdown()
    reply = setup.client.api("POST", "/api/links/numbers/pause", "olga")
    assert reply.status == 409
    assert "not running" in reply.json()["error"]


def test_dead_letters_page_filters_searches_and_lists_newest_first(setup: Setup) -> None:
    first = dead_letter(setup)
    setup.clock.advance(10)
    second = [i for i in dead_letter(setup) if i not in first]
    setup.client.login("vic")
    page = setup.client.get("/dead").text
    assert page.index(second[-1]) < page.index(first[0])
    assert "4 dead letters" in page
    assert "Replay selected" not in page  # a viewer sees no buttons
    found = setup.client.api("GET", f"/api/dead?q={second[0]}", "vic").json()["dead_letters"]
    assert [row["id"] for row in found] == [second[0]]
    assert setup.client.api("GET", "/api/dead?outlet=other", "vic").json() == {"dead_letters": []}
    assert setup.client.api("GET", "/api/dead?limit=x", "vic").status == 400


def test_replay_selected_with_confirmation_delivers_them(setup: Setup) -> None:
    ids = dead_letter(setup)
    setup.client.login("olga")
    confirm = setup.client.form("/dead/confirm", {"action": "replay-selected", "id": ids[0]})
    assert confirm.status == 200
    assert "Replay 1 dead letter?" in confirm.text
    assert len(setup.queue.dead_letters()) == 2  # nothing changed before confirming
    done = setup.client.form("/dead/apply", {"action": "replay", "id": ids[0]})
    assert done.status == 303
    assert "Replayed 1 dead letters." in setup.client.get("/dead").text
    assert [letter.id for letter in setup.queue.dead_letters()] == [ids[1]]
    setup.link.transfer()
    assert setup.outlet.received[:1] == [1]


def test_drop_all_matching_with_confirmation(setup: Setup) -> None:
    dead_letter(setup)
    setup.client.login("olga")
    confirm = setup.client.form("/dead/confirm", {"action": "drop-all", "link": "numbers"})
    assert "Drop 2 dead letters?" in confirm.text
    ids = re.findall(r'name="id" value="([^"]+)"', confirm.text)
    assert len(ids) == 2
    assert setup.client.form("/dead/apply", {"action": "drop", "id": ids}).status == 303
    assert setup.queue.dead_letters() == []


def test_unknown_ids_change_nothing(setup: Setup) -> None:
    ids = dead_letter(setup)
    reply = setup.client.api("POST", "/api/dead/drop", "olga", {"ids": [ids[0], "nope-1"]})
    assert reply.status == 404
    assert reply.json() == {"error": "not dead letters", "ids": ["nope-1"]}
    assert len(setup.queue.dead_letters()) == 2
    setup.client.login("olga")
    reply = setup.client.form("/dead/apply", {"action": "drop", "id": [ids[0], "nope-1"]})
    assert reply.status == 404 and "nope-1" in reply.text
    assert len(setup.queue.dead_letters()) == 2


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{not json", "the body is not valid JSON"),
        (b"[1, 2]", "the body must be a JSON object, got list"),
        (b'{"ids": []}', "ids must be a non-empty list of record ids"),
        (b'{"ids": ["a"], "all": true}', 'give either "ids": [...] or "all": true'),
        (b'{"all": "yes"}', "all must be true or false"),
        (b'{"all": true, "colour": 1}', "unknown keys ['colour']"),
    ],
)
def test_malformed_api_bodies_are_a_400(setup: Setup, body: bytes, message: str) -> None:
    dead_letter(setup)
    reply = setup.client.request(
        "POST",
        "/api/dead/replay",
        data=body,
        headers={"Authorization": "Bearer token-olga", "Content-Type": "application/json"},
    )
    assert reply.status == 400
    assert message in reply.json()["error"]
    assert len(setup.queue.dead_letters()) == 2


def test_an_oversized_body_is_a_413(setup: Setup) -> None:
    reply = setup.client.request(
        "POST",
        "/api/dead/replay",
        data=b'{"ids": ["' + b"x" * 300_000 + b'"]}',
        headers={"Authorization": "Bearer token-olga", "Content-Type": "application/json"},
    )
    assert reply.status == 413


def test_replay_all_by_api(setup: Setup) -> None:
    dead_letter(setup)
    reply = setup.client.api("POST", "/api/dead/replay", "olga", {"all": True, "link": "numbers"})
    assert reply.json() == {"action": "replay", "changed": 2}


def test_export_streams_csv_and_json_lines(setup: Setup) -> None:
    ids = dead_letter(setup)
    setup.client.login("vic")
    reply = setup.client.get("/export/download?what=dead&format=csv")
    assert reply.headers["Content-Disposition"] == 'attachment; filename="dead.csv"'
    rows = list(csv.DictReader(io.StringIO(reply.text)))
    assert sorted(r["id"] for r in rows) == sorted(ids)
    assert {r["payload"] for r in rows} == {"1", "2"}
    setup.outlet.failing = True
    queue_stats = setup.queue.stats()
    assert queue_stats.pending() == 0
    lines = setup.client.get("/export/download?what=dead&format=jsonl").text.splitlines()
    assert sorted(json.loads(line)["id"] for line in lines) == sorted(ids)
    assert setup.client.get("/export/download?what=pending&format=jsonl").text == ""
    assert setup.client.get("/export/download?what=all").status == 400
    assert setup.client.get("/export/download?format=xml").status == 400
    assert setup.client.get("/export/download?link=nope").status == 404
    assert "Download" in setup.client.get("/export").text


def test_export_of_pending_deliveries_includes_retrying_ones(setup: Setup) -> None:
    ids = setup.queue.enqueue("numbers", [Record("a"), Record("b")], [["sink"], ["sink"]])
    setup.queue.fail("numbers", "sink", ids[:1], "not yet", lambda attempts: 600.0)
    rows = setup.client.api("GET", "/api/export?what=pending&format=jsonl", "vic").text
    assert sorted(json.loads(line)["payload"] for line in rows.splitlines()) == ["a", "b"]
    assert setup.queue.stats().pending() == 2  # reading changed nothing
    assert setup.queue.stats().outlets[0].retrying == 1


def test_export_of_delivered_entries_in_csv_and_json_lines(setup: Setup) -> None:
    """A delivered record is exported (page and API) until retention purges it."""
    setup.link.transfer()
    (stats,) = setup.queue.stats().outlets
    assert stats.delivered == 2
    before = setup.queue.stats()
    setup.client.login("vic")
    reply = setup.client.get("/export/download?what=delivered&format=csv")
    assert reply.headers["Content-Disposition"] == 'attachment; filename="delivered.csv"'
    rows = list(csv.DictReader(io.StringIO(reply.text)))
    assert sorted(r["payload"] for r in rows) == ["1", "2"]
    assert {(r["link"], r["outlet"]) for r in rows} == {("numbers", "sink")}
    assert all(float(r["delivered_at"]) > 0 for r in rows)
    lines = setup.client.api("GET", "/api/export?what=delivered&format=jsonl", "vic").text
    entries = [json.loads(line) for line in lines.splitlines()]
    assert sorted(e["payload"] for e in entries) == [1, 2]
    assert sorted(e["id"] for e in entries) == sorted(r["id"] for r in rows)
    assert setup.queue.stats() == before  # reading changed nothing
    assert 'value="delivered"' in setup.client.get("/export").text


def test_history_page_and_api(setup: Setup) -> None:
    setup.link.transfer()
    dead_letter(setup)
    setup.planner.flush_observers(10)
    runs = setup.client.api("GET", "/api/history?link=numbers", "vic").json()["runs"]
    assert [r["number"] for r in runs] == [1, 0]
    assert runs[0]["pushed"] == {"sink": 0} and runs[1]["pushed"] == {"sink": 2}
    setup.client.login("vic")
    assert "Run history" in setup.client.get("/history?link=numbers").text
    assert setup.client.api("GET", "/api/history?limit=0", "vic").status == 400


def test_pipeline_file_view_and_edit(setup: Setup) -> None:
    setup.client.login("ada")
    page = setup.client.get("/pipeline").text
    assert "<textarea" in page and "numbers" in page
    new_text = PIPELINE.replace('"1h"', '"2h"')
    reply = setup.client.form("/pipeline", {"text": new_text})
    assert reply.status == 303
    assert setup.pipeline.read_text() == new_text
    assert setup.pipeline.with_name("pipeline.toml.prev").read_text() == PIPELINE
    assert setup.reloads == [setup.pipeline]
    assert "Saved and reloaded." in setup.client.get("/pipeline").text


def test_a_bad_pipeline_edit_is_rejected_and_changes_nothing(setup: Setup) -> None:
    setup.client.login("ada")
    bad = PIPELINE.replace('interval = "1h"', 'interval = "-5s"')
    reply = setup.client.form("/pipeline", {"text": bad})
    assert reply.status == 422
    assert "links[0].interval" in reply.text
    assert setup.pipeline.read_text() == PIPELINE
    assert not setup.pipeline.with_name("pipeline.toml.prev").exists()
    assert setup.reloads == []
    reply = setup.client.api("PUT", "/api/pipeline", "ada", {"text": "links = ["})
    assert reply.status == 422 and reply.json()["problems"]
    assert setup.client.api("PUT", "/api/pipeline", "ada", {"txt": 1}).status == 400
    assert setup.client.api("GET", "/api/pipeline", "vic").json()["text"] == PIPELINE


def test_unknown_pages_are_404_and_wrong_methods_405(setup: Setup) -> None:
    setup.client.login("vic")
    assert setup.client.get("/nope").status == 404
    assert setup.client.request("DELETE", "/api/dead").status == 405


def test_served_on_its_own_thread(tmp_path: Path) -> None:
    link = Link([], [], 3600, tags=["t"])
    planner = ApsPlanner([link])
    with WebInterface(planner, port=0, alias="LIVE") as web:
        assert web.port != 0
        with urllib.request.urlopen(web.url + "/healthz", timeout=10) as response:
            assert json.load(response) == {"status": "ok"}
        with urllib.request.urlopen(web.url + "/", timeout=10) as response:
            assert "LIVE" in response.read().decode()
    with pytest.raises(OSError):
        urllib.request.urlopen(web.url + "/healthz", timeout=2)


def test_a_busy_port_is_a_clear_error() -> None:
    planner = ApsPlanner([])
    with WebInterface(planner, port=0) as first:
        second = WebInterface(planner, port=first.port)
        with pytest.raises(ConfigurationError, match=r"cannot listen on 127\.0\.0\.1:"):
            second.start()
        second.close()


# -- units -----------------------------------------------------------------------------------


def test_password_and_token_hashes() -> None:
    stored = hash_password("s3cret")
    assert stored.startswith("scrypt$") and "s3cret" not in stored
    assert verify_password("s3cret", stored)
    assert not verify_password("S3cret", stored)
    assert not verify_password("s3cret", "scrypt$broken")
    assert hash_password("s3cret") != stored  # salted
    users = Users({"t": {"role": "viewer", "tokens": [hash_token("abc")]}})
    assert users.by_token("abc") is not None and users.by_token("abd") is None
    assert users.check_password("t", "anything") is None
    with pytest.raises(ConfigurationError, match="role must be viewer, operator or admin"):
        Users({"x": {"role": "boss"}})
    with pytest.raises(ConfigurationError, match="hash-password"):
        Users({"x": {"role": "viewer", "password_hash": "plain"}})


def test_memory_history_keeps_its_life_span() -> None:
    clock = FakeClock()
    history = MemoryHistory(life_span=60, clock=clock)
    history.add(RunEntry("a", 0, clock.time(), 0.1, 1))
    clock.advance(61)
    history.add(RunEntry("a", 1, clock.time(), 0.1, 1))
    assert history.prune() == 1
    assert [e.number for e in history.recent()] == [1]


def test_history_lives_in_the_sqlite_queue_file(tmp_path: Path) -> None:
    path = tmp_path / "q.sqlite3"
    clock = FakeClock()
    with SqliteQueue(path) as queue:
        history = history_for([queue], life_span=60, clock=clock)
        assert isinstance(history, SqliteHistory)
        history.add(RunEntry("a", 0, clock.time(), 0.5, 3, {"o": 3}))
        history.set_error("a", 0, "boom")
        history.close()
    with SqliteQueue(path) as queue:
        again = history_for([queue], life_span=60, clock=clock)
        (entry,) = again.recent("a")
        assert (entry.pushed, entry.error) == ({"o": 3}, "boom")
        clock.advance(61)
        assert again.prune() == 1
        again.close()


def test_web_settings() -> None:
    assert parse_listen("0.0.0.0:9000") == ("0.0.0.0", 9000)
    assert parse_listen("[::1]:80") == ("::1", 80)
    assert parse_listen(":8081") == ("127.0.0.1", 8081)
    for bad in ("8080", "host:http", "h:70000", 80):
        with pytest.raises(ConfigurationError, match=r"web\.listen"):
            parse_listen(bad)
    settings = web_settings({"listen": "127.0.0.1:0", "alias": "QA", "history_life_span": "1d"})
    assert (settings.port, settings.alias, settings.history_life_span) == (0, "QA", 86400.0)
    with pytest.raises(ConfigurationError, match="unknown keys"):
        web_settings({"port": 1})
    with pytest.raises(ConfigurationError, match=r"web\.tls\.cert: no file"):
        web_settings({"tls": {"cert": "none.pem", "key": "none.pem"}})


def test_a_cron_link_shows_its_schedule() -> None:
    from databay_bus.schedules import Cron

    link = Link([], [], Cron("*/5 * * * *"), tags=["cron"])
    web = WebInterface(ApsPlanner([link]))
    try:
        (summary,) = web.view.overview()["links"]
        assert (summary["schedule"], summary["interval"]) == ("cron: */5 * * * * (UTC)", None)
    finally:
        web.close()


def test_users_file(tmp_path: Path) -> None:
    (tmp_path / "users.toml").write_text(
        f'[users.vic]\nrole = "viewer"\ntokens = ["{hash_token("t")}"]\n'
    )
    settings = web_settings({"users_file": "users.toml"}, tmp_path)
    assert settings.users["vic"]["role"] == "viewer"
    (tmp_path / "bad.toml").write_text('[users.vic]\nrole = "king"\n')
    with pytest.raises(ConfigurationError, match=r"web\.users: 'vic': role must be"):
        web_settings({"users_file": "bad.toml"}, tmp_path)
    with pytest.raises(ConfigurationError, match=r"web\.users_file: cannot read"):
        web_settings({"users_file": "none.toml"}, tmp_path)


def test_a_queue_that_cannot_list_waiting_records_is_a_clear_error(
    setup: Setup, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(**kwargs: object) -> None:
        raise QueueError("this backend cannot list waiting records")

    monkeypatch.setattr(setup.queue, "waiting_records", refuse)
    reply = setup.client.api("GET", "/api/export?what=pending", "vic")
    assert reply.status == 501
    assert "cannot list waiting records" in reply.json()["error"]


def test_the_overview_is_a_pipeline_status(setup: Setup) -> None:
    from databay_bus.status import PipelineStatus

    setup.link.transfer()
    data = setup.client.api("GET", "/api/overview", "vic").json()
    status = PipelineStatus.from_dict(data, source="test")  # what `databay-bus status --url` does
    (link,) = status.links
    assert (status.state, link.id, link.state, link.transfers) == ("running", "numbers", "ok", 1)
    assert (link.outlets[0].name, link.outlets[0].pushed, link.pending) == ("sink", 2, 0)
