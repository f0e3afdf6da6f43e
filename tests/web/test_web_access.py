"""Health, metrics, login, sessions, roles and CSRF of the web interface (aiohttp test client)."""

from __future__ import annotations

import logging
import re
import ssl
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from prometheus_client import REGISTRY
from web_fakes import TOKENS, Client, Setup, dead_letter, make_setup

from databay_bus import Link, Outlet
from databay_bus.errors import ArgumentTypeError, ConfigurationError
from databay_bus.planners import ApsPlanner
from databay_bus.web import WebInterface, hash_token


def test_healthz_needs_no_login(setup: Setup) -> None:
    reply = setup.client.get("/healthz")
    assert (reply.status, reply.json()) == (200, {"status": "ok"})


def test_readyz_is_503_until_the_planner_runs(tmp_path: Path) -> None:
    for s in make_setup(tmp_path, start=False):
        reply = s.client.get("/readyz")
        assert reply.status == 503
        assert "planner is stopped" in reply.json()["problems"]
        s.planner.start(block=False)
        assert s.client.get("/readyz").json() == {"status": "ready"}


class _WontStart(Outlet):
    def on_start(self) -> None:
        raise ConnectionError("no route to the database")

    def push(self, records: object, update: object) -> None:
        pass


def test_readyz_is_503_when_a_node_failed_to_start(tmp_path: Path) -> None:
    link = Link([], [_WontStart(name="db")], 3600, tags=["broken"], ignore_exceptions=True)
    planner = ApsPlanner([link], ignore_exceptions=True)
    web = WebInterface(planner)
    planner.start(block=False)
    client = Client(web)
    try:
        reply = client.get("/readyz")
        assert reply.status == 503
        assert reply.json()["problems"] == ["link broken: db did not start"]
    finally:
        client.close()
        planner.shutdown()
        web.close()


def test_metrics_need_a_viewer_and_take_a_bearer_token(setup: Setup) -> None:
    setup.link.transfer()
    setup.planner.flush_observers(10)  # durations and last success come through observers
    assert setup.client.get("/metrics").status == 401
    assert (
        setup.client.request("GET", "/metrics", headers={"Authorization": "Bearer wrong"}).status
        == 401
    )
    reply = setup.client.api("GET", "/metrics", "vic")
    assert reply.status == 200
    assert reply.headers["Content-Type"].startswith("text/plain")
    text = reply.text
    assert 'databay_bus_transfers_total{link="numbers"} 1.0' in text
    assert 'databay_bus_records_pushed_total{link="numbers",outlet="sink"} 2.0' in text
    assert 'databay_bus_queue_pending{link="numbers",outlet="sink"} 0.0' in text
    assert "databay_bus_transfer_duration_seconds_bucket" in text
    assert 'databay_bus_last_success_timestamp_seconds{link="numbers"}' in text


def test_two_interfaces_keep_their_metrics_apart(setup: Setup, tmp_path: Path) -> None:
    (tmp_path / "other").mkdir()
    for other in make_setup(tmp_path / "other"):
        setup.link.transfer()
        setup.link.transfer()
        other.link.transfer()
        mine = setup.client.api("GET", "/metrics", "vic").text
        theirs = other.client.get("/metrics").text  # no users there: open
        assert 'databay_bus_transfers_total{link="numbers"} 2.0' in mine
        assert 'databay_bus_transfers_total{link="numbers"} 1.0' in theirs
    assert not [m for m in REGISTRY.collect() if m.name.startswith("databay_bus")]


def test_the_style_sheet_needs_no_login(setup: Setup) -> None:
    reply = setup.client.get("/static/style.css")
    assert reply.status == 200 and "state-failing" in reply.text


def test_pages_redirect_to_the_login_form(setup: Setup) -> None:
    reply = setup.client.get("/dead?link=numbers")
    assert reply.status == 303
    location = urlsplit(reply.headers["Location"])
    assert location.path == "/login"
    assert parse_qs(location.query) == {"next": ["/dead?link=numbers"]}
    assert setup.client.get("/api/overview").status == 401


def test_login_sets_a_strict_http_only_cookie_and_shows_the_alias(setup: Setup) -> None:
    reply = setup.client.post("/login", {"username": "vic", "password": "vic-pass", "next": "/"})
    assert reply.status == 303
    cookie = reply.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Secure" not in cookie
    page = setup.client.get("/")
    assert page.status == 200
    assert '<span class="alias" id="alias">TEST-ALIAS</span>' in page.text
    assert "vic (viewer)" in page.text


def test_cookies_are_secure_under_tls(tmp_path: Path) -> None:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    link = Link([], [_WontStart(name="x")], 3600, tags=["t"])
    web = WebInterface(ApsPlanner([link]), tls=context)
    client = Client(web)  # the test server speaks plain HTTP; only the header is checked
    try:
        assert "Secure" in client.get("/").headers["Set-Cookie"]
    finally:
        client.close()
        web.close()


def test_a_wrong_password_is_refused_and_logins_are_rate_limited(setup: Setup) -> None:
    for _ in range(5):
        reply = setup.client.post("/login", {"username": "ada", "password": "guess"})
        assert reply.status == 401
        assert "Wrong user name or password." in reply.text
    reply = setup.client.post("/login", {"username": "ada", "password": "ada-pass"})
    assert reply.status == 429
    assert int(reply.headers["Retry-After"]) > 0
    setup.clock.advance(301)
    setup.client.login("ada")
    audit = setup.client.get("/audit").text
    assert "wrong password" in audit and "rate-limited" in audit


def test_an_expired_session_must_log_in_again(setup: Setup) -> None:
    setup.client.login("vic")
    assert setup.client.get("/").status == 200
    setup.clock.advance(3601)
    assert setup.client.get("/").status == 303
    assert setup.client.request("GET", "/api/overview").status == 401


def test_logout_ends_the_session(setup: Setup) -> None:
    setup.client.login("vic")
    token = setup.client.csrf()
    assert setup.client.post("/logout", {"csrf_token": token}).status == 303
    assert setup.client.get("/").status == 303


@pytest.mark.parametrize(
    ("who", "path", "allowed"),
    [
        ("vic", "/api/links/numbers/pause", False),
        ("olga", "/api/links/numbers/pause", True),
        ("vic", "/api/planner/pause", False),
        ("olga", "/api/planner/pause", True),
        ("vic", "/api/links/numbers/transfer", False),
        ("olga", "/api/links/numbers/transfer", True),
    ],
)
def test_operating_needs_an_operator(setup: Setup, who: str, path: str, allowed: bool) -> None:
    reply = setup.client.api("POST", path, who)
    assert reply.status == (202 if "transfer" in path else 200) if allowed else 403, reply.text
    if not allowed:
        assert "viewer" in reply.json()["error"]


def test_a_viewer_cannot_replay_and_an_operator_can(setup: Setup) -> None:
    ids = dead_letter(setup)
    reply = setup.client.api("POST", "/api/dead/replay", "vic", {"ids": ids})
    assert reply.status == 403
    assert len(setup.queue.dead_letters()) == 2
    reply = setup.client.api("POST", "/api/dead/replay", "olga", {"ids": ids})
    assert reply.json() == {"action": "replay", "changed": 2}
    assert setup.queue.dead_letters() == []


def test_administrators_see_the_users_without_their_hashes(setup: Setup) -> None:
    assert setup.client.api("GET", "/api/users", "olga").status == 403
    users = setup.client.api("GET", "/api/users", "ada").json()["users"]
    assert users[0] == {"name": "ada", "role": "administrator", "password": True, "tokens": 1}
    assert [u["role"] for u in users] == ["administrator", "operator", "viewer"]
    setup.client.login("ada")
    page = setup.client.get("/audit").text
    assert "<td>olga</td><td>operator</td>" in page and "scrypt$" not in page


def test_an_operator_cannot_edit_the_pipeline_or_read_the_audit(setup: Setup) -> None:
    before = setup.pipeline.read_text()
    reply = setup.client.api("PUT", "/api/pipeline", "olga", {"text": before + "\n# x\n"})
    assert reply.status == 403
    assert setup.pipeline.read_text() == before
    assert setup.client.api("GET", "/api/audit", "olga").status == 403
    setup.client.login("olga")
    assert setup.client.get("/audit").status == 403
    page = setup.client.get("/pipeline").text
    assert "administrators edit it" in page and "<textarea" not in page


def test_a_forged_cross_site_post_is_refused(setup: Setup) -> None:
    setup.client.login("olga")
    token = setup.client.csrf()
    forged = {"csrf_token": token}
    for headers in (
        {"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"},
        {"Origin": "https://evil.example"},
        {"Sec-Fetch-Site": "same-site", "Origin": setup.client.origin},
        {"Origin": "null"},
    ):
        reply = setup.client.request("POST", "/links/numbers/pause", data=forged, headers=headers)
        assert reply.status == 403, headers
        assert "request refused" in reply.text
    assert not setup.web.control.is_paused(setup.link)
    assert "refused" in setup.client.api("GET", "/api/audit", "ada").text


def test_a_post_without_the_csrf_token_is_refused(setup: Setup) -> None:
    setup.client.login("olga")
    assert setup.client.post("/links/numbers/pause", {}).status == 403
    assert setup.client.post("/links/numbers/pause", {"csrf_token": "guess"}).status == 403
    reply = setup.client.request(
        "POST", "/api/links/numbers/pause", headers={"X-CSRF-Token": "guess"}
    )
    assert reply.status == 403
    assert not setup.web.control.is_paused(setup.link)
    assert setup.client.form("/links/numbers/pause").status == 303
    assert setup.web.control.is_paused(setup.link)


def test_bearer_tokens_need_no_csrf_token(setup: Setup) -> None:
    reply = setup.client.api("POST", "/api/links/numbers/pause", "olga")
    assert reply.json() == {"action": "pause", "target": "numbers", "changed": True}
    assert TOKENS["olga"] not in setup.client.api("GET", "/api/audit", "ada").text


def test_without_users_everyone_administers_but_csrf_still_applies(open_setup: Setup) -> None:
    client = open_setup.client
    page = client.get("/")
    assert page.status == 200 and "anonymous (administrator)" in page.text
    assert client.post("/links/numbers/pause", {}).status == 403
    assert client.form("/links/numbers/pause").status == 303
    assert open_setup.web.control.is_paused(open_setup.link)


def test_without_users_the_api_takes_json_from_scripts_but_no_forms(open_setup: Setup) -> None:
    client = open_setup.client
    reply = client.request("POST", "/api/links/numbers/pause", json={})
    assert reply.json() == {"action": "pause", "target": "numbers", "changed": True}
    refused = client.request("POST", "/api/links/numbers/resume", data={"x": "1"})
    assert refused.status == 403
    assert "Content-Type: application/json" in refused.json()["error"]
    forged = client.request(
        "POST", "/api/links/numbers/resume", json={}, headers={"Origin": "https://evil.example"}
    )
    assert forged.status == 403
    assert open_setup.web.control.is_paused(open_setup.link)
    assert "Set-Cookie" not in client.get("/api/overview").headers


def test_listening_beyond_loopback_without_users_or_tls_warns(
    caplog: pytest.LogCaptureFixture,
) -> None:
    link = Link([], [_WontStart(name="x")], 3600, tags=["t"])
    web = WebInterface(ApsPlanner([link]), host="0.0.0.0", port=0)
    caplog.set_level(logging.WARNING, logger="databay_bus.web")
    web._warn_if_exposed()
    assert "without TLS and users" in caplog.text
    caplog.clear()
    WebInterface(ApsPlanner([link]), host="127.0.0.1")._warn_if_exposed()
    assert caplog.text == ""
    web.close()


def test_mounted_in_an_application_of_its_own(tmp_path: Path) -> None:
    import asyncio

    from aiohttp import web as aioweb
    from aiohttp.test_utils import TestClient, TestServer

    link = Link([], [_WontStart(name="x")], 3600, tags=["t"])
    interface = WebInterface(ApsPlanner([link]), prefix="/ops", alias="MOUNTED")
    outer = aioweb.Application()
    outer.add_subapp("/ops", interface.app)

    async def go() -> None:
        async with TestClient(TestServer(outer)) as client:
            assert (await client.get("/ops/healthz")).status == 200
            page = await client.get("/ops/")
            text = await page.text()
            assert "MOUNTED" in text and 'href="/ops/dead"' in text
            assert 'href="/ops/static/style.css"' in text
            assert (await client.get("/ops/static/style.css")).status == 200
            cookie = page.headers["Set-Cookie"]
            assert "Path=/ops" in cookie

    try:
        asyncio.run(go())
    finally:
        interface.close()


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"port": -1}, ConfigurationError, "port must be an int in [0, 65535], got -1"),
        ({"port": 70000}, ConfigurationError, "port must be an int in [0, 65535], got 70000"),
        ({"port": "80"}, ArgumentTypeError, "port must be an int in [0, 65535], got '80'"),
        ({"host": 5}, ArgumentTypeError, "host must be a non-empty str, got 5"),
        ({"history_life_span": -1}, ConfigurationError, "history_life_span must be"),
        ({"pipeline_file": 5}, ArgumentTypeError, "pipeline_file must be a path or None, got 5"),
        ({"reload": "x"}, ArgumentTypeError, "reload must be callable or None, got 'x'"),
        ({"prefix": 5}, ArgumentTypeError, "prefix must be a str, got 5"),
        ({"alias": 5}, ArgumentTypeError, "alias must be a str, got 5"),
    ],
)
def test_bad_constructor_arguments_are_named(
    kwargs: dict[str, object], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=re.escape(f"WebInterface: {message}")):
        WebInterface(ApsPlanner(), **kwargs)  # type: ignore[arg-type]


def test_a_planner_is_needed_and_tokens_are_strings() -> None:
    with pytest.raises(ArgumentTypeError, match=r"planner must be a databay_bus planner, got 5"):
        WebInterface(5)
    with pytest.raises(ArgumentTypeError, match=r"token must be a non-empty str, got 5 \(int\)"):
        hash_token(5)  # type: ignore[arg-type]


def test_a_stopped_planner_s_queues_are_not_read_any_more(setup: Setup) -> None:
    setup.planner.shutdown()
    setup.planner.flush_observers(10)  # what Pipeline.run does before closing the queues
    setup.queue.close()
    for path in ("/api/overview", "/api/dead", "/metrics"):
        reply = setup.client.api("GET", path, "vic")
        assert reply.status == 503, path
        assert "not running" in reply.json()["error"]
    ready = setup.client.get("/readyz")
    assert ready.status == 503 and "not running" in ready.json()["problems"][0]
    setup.planner.start(block=False)  # a started planner is read again
    setup.planner.flush_observers(10)
    assert setup.client.api("GET", "/api/history", "vic").status == 200


def test_a_user_who_could_never_log_in_is_refused() -> None:
    from databay_bus.web.auth import Users

    with pytest.raises(ConfigurationError, match="'vic' has neither a password_hash nor tokens"):
        Users({"vic": {"role": "viewer"}})
