"""Inlet cursors in the web interface: shown to every role, set and reset by administrators
while the link is paused, CSRF-protected and audited (aiohttp test client)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from web_fakes import Setup, make_setup, user_table

from databay_bus import Inlet


class Pages(Inlet):
    """Pulls the next page after its cursor and commits it; remembers each cursor seen."""

    def __init__(self) -> None:
        super().__init__(name="pages")
        self.seen: list[Any] = []

    def pull(self, update: Any) -> list[int]:
        since = update.cursor
        self.seen.append(since)
        page = (since or 0) + 1
        update.commit_cursor(page)
        return [page]


@pytest.fixture
def cur(tmp_path: Path) -> Iterator[Setup]:
    """The usual setup, with an inlet that keeps a cursor."""
    yield from make_setup(tmp_path, users=user_table(), inlet=Pages())


def _pause(s: Setup) -> None:
    reply = s.client.api("POST", "/api/links/numbers/pause", "olga")
    assert reply.status == 200, reply.text


def test_every_role_sees_the_cursors(cur: Setup) -> None:
    cur.link.transfer()
    reply = cur.client.api("GET", "/api/links/numbers/cursors", "vic")
    assert reply.status == 200, reply.text
    [row] = reply.json()["cursors"]
    assert (row["inlet"], row["value"], row["json"], row["version"]) == ("pages", 1, "1", 1)
    assert cur.client.api("GET", "/api/links/numbers", "vic").json()["cursors"] == [row]
    cur.client.login("vic")
    page = cur.client.get("/links/numbers").text
    assert '<tr class="cursor"><td>pages</td><td><code>1</code></td><td>1</td>' in page
    assert "/cursors/pages/set" not in page  # no forms for a viewer
    assert cur.client.api("GET", "/api/links/nope/cursors", "vic").status == 404


@pytest.mark.parametrize("who", ["vic", "olga"])
def test_viewers_and_operators_cannot_change_a_cursor(cur: Setup, who: str) -> None:
    _pause(cur)
    for method, body in (("PUT", {"value": 7}), ("DELETE", None)):
        reply = cur.client.api(method, "/api/links/numbers/cursors/pages", who, body)
        assert reply.status == 403, reply.text
        assert "administrator" in reply.json()["error"]
    cur.client.login(who)
    assert cur.client.form("/links/numbers/cursors/pages/set", {"value": "7"}).status == 403
    assert cur.client.form("/links/numbers/cursors/pages/reset").status == 403
    assert cur.link.cursor("pages") is None


def test_an_administrator_sets_a_paused_links_cursor_and_its_next_pull_sees_it(
    cur: Setup,
) -> None:
    _pause(cur)
    reply = cur.client.api("PUT", "/api/links/numbers/cursors/pages", "ada", {"value": 41})
    assert reply.status == 200, reply.text
    assert reply.json()["cursor"]["value"] == 41
    cur.link.transfer()
    inlet = cur.link.inlets[0]
    assert isinstance(inlet, Pages) and inlet.seen == [41]
    assert cur.link.cursor("pages").value == 42  # type: ignore[union-attr]
    # the page's form, with the session's CSRF token
    cur.client.login("ada")
    reply = cur.client.form("/links/numbers/cursors/pages/set", {"value": '{"page": "x"}'})
    assert reply.status == 303, reply.text
    assert cur.link.cursor("pages").value == {"page": "x"}  # type: ignore[union-attr]
    page = cur.client.get("/links/numbers").text
    assert "pages: cursor set to" in page and "/cursors/pages/set" in page
    assert 'value="{&#34;page&#34;: &#34;x&#34;}"' in page  # the form starts from the cursor
    assert cur.client.form("/links/numbers/cursors/pages/reset").status == 303
    assert cur.link.cursor("pages") is None
    reply = cur.client.api("DELETE", "/api/links/numbers/cursors/pages", "ada")
    assert reply.json() == {"link": "numbers", "inlet": "pages", "cursor": None}
    entries = [e.as_dict() for e in cur.web.audit.recent()]
    audit = [(e["user"], e["action"], e["outcome"]) for e in entries]
    assert ("ada", "cursor-set", "set to 41") in audit
    assert ("ada", "cursor-reset", "reset") in audit


def test_a_running_link_refuses_with_409(cur: Setup) -> None:
    reply = cur.client.api("PUT", "/api/links/numbers/cursors/pages", "ada", {"value": 3})
    assert reply.status == 409, reply.text
    assert "pause it first" in reply.json()["error"]
    assert cur.client.api("DELETE", "/api/links/numbers/cursors/pages", "ada").status == 409
    cur.client.login("ada")
    reply = cur.client.form("/links/numbers/cursors/pages/set", {"value": "3"})
    assert reply.status == 409 and "pause it first" in reply.text
    assert cur.link.cursor("pages") is None
    audit = cur.client.api("GET", "/api/audit", "ada").text
    assert "cursor-set" in audit and "refused" in audit


def test_bad_values_are_400_and_unknown_inlets_404(cur: Setup) -> None:
    _pause(cur)
    for raw in ('{"value": NaN}', '{"cursor": 1}', "{}", "[1]", "{nope"):
        reply = cur.client.request(
            "PUT",
            "/api/links/numbers/cursors/pages",
            data=raw,
            headers={"Authorization": "Bearer token-ada", "Content-Type": "application/json"},
        )
        assert reply.status == 400, (raw, reply.text)
        if "NaN" in raw:
            assert "nan" in reply.json()["error"]
    reply = cur.client.api("PUT", "/api/links/numbers/cursors/nope", "ada", {"value": 1})
    assert reply.status == 404 and "nope" in reply.json()["error"]
    cur.client.login("ada")
    reply = cur.client.form("/links/numbers/cursors/pages/set", {"value": "not json"})
    assert reply.status == 400 and "not json" in reply.text
    assert cur.client.form("/links/numbers/cursors/nope/reset").status == 404
    assert cur.link.cursor("pages") is None


def test_a_forged_cross_site_cursor_post_is_refused(cur: Setup) -> None:
    _pause(cur)
    cur.client.login("ada")
    token = cur.client.csrf()
    for headers in ({"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"}, {}):
        reply = cur.client.request(
            "POST",
            "/links/numbers/cursors/pages/set",
            data={"csrf_token": token if headers else "guess", "value": "9"},
            headers=headers,
        )
        assert reply.status == 403, reply.text
    assert cur.link.cursor("pages") is None
