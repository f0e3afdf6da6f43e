"""Helpers of the web interface tests: a planner with one queued link, users of every role, a
synchronous aiohttp test client."""

from __future__ import annotations

import asyncio
import functools
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("aiohttp_jinja2")

from aiohttp.test_utils import TestClient, TestServer

from databay_bus import Inlet, Link, Outlet
from databay_bus.planners import ApsPlanner
from databay_bus.queue import MemoryQueue, RetryPolicy
from databay_bus.testing import FakeClock
from databay_bus.web import WebInterface
from databay_bus.web.auth import hash_password, hash_token

PASSWORDS = {"ada": "ada-pass", "olga": "olga-pass", "vic": "vic-pass"}
ROLES = {"ada": "administrator", "olga": "operator", "vic": "viewer"}
TOKENS = {"ada": "token-ada", "olga": "token-olga", "vic": "token-vic"}

PIPELINE = """\
[planner]
kind = "aps"

[[links]]
tags = ["numbers"]
interval = "1h"
inlets = ["null"]
outlets = ["null"]
"""


@functools.cache
def user_table() -> dict[str, Any]:
    """Every role once; hashed once per test session (scrypt is slow on purpose)."""
    return {
        name: {
            "role": ROLES[name],
            "password_hash": hash_password(PASSWORDS[name]),
            "tokens": [hash_token(TOKENS[name])],
        }
        for name in PASSWORDS
    }


class Numbers(Inlet):
    """Pulls 1, 2, 3, ... (two per transfer)."""

    def __init__(self) -> None:
        super().__init__()
        self.next = 0

    def pull(self, update: Any) -> list[int]:
        self.next += 2
        return [self.next - 1, self.next]


class Switch(Outlet):
    """Takes records, or fails while ``failing``."""

    def __init__(self, name: str) -> None:
        super().__init__(name=name)
        self.failing = False
        self.received: list[Any] = []

    def push(self, records: list[Any], update: Any) -> None:
        if self.failing:
            raise ConnectionError(f"{self.name} is down")
        self.received.extend(r.payload for r in records)


@dataclass
class Reply:
    status: int
    body: bytes
    headers: Any

    @property
    def text(self) -> str:
        return self.body.decode()

    def json(self) -> Any:
        import json

        return json.loads(self.body)


class Client:
    """A synchronous face of aiohttp's test client (its own loop; cookies kept)."""

    def __init__(self, web: WebInterface) -> None:
        self.web = web
        self.loop = asyncio.new_event_loop()
        self.client = TestClient(TestServer(web.app), loop=self.loop)
        self.loop.run_until_complete(self.client.start_server())

    @property
    def origin(self) -> str:
        return f"http://{self.client.host}:{self.client.port}"

    def request(self, method: str, path: str, **kwargs: Any) -> Reply:
        async def go() -> Reply:
            kwargs.setdefault("allow_redirects", False)
            async with self.client.request(method, path, **kwargs) as response:
                return Reply(response.status, await response.read(), response.headers)

        return self.loop.run_until_complete(go())

    def get(self, path: str, **kwargs: Any) -> Reply:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, data: Any = None, **kwargs: Any) -> Reply:
        """A browser-like same-origin POST (Origin and Sec-Fetch-Site set)."""
        headers = {"Origin": self.origin, "Sec-Fetch-Site": "same-origin"}
        headers.update(kwargs.pop("headers", {}))
        return self.request("POST", path, data=data, headers=headers, **kwargs)

    def logout(self) -> None:
        self.client.session.cookie_jar.clear()

    def login(self, name: str) -> None:
        self.logout()
        reply = self.post("/login", {"username": name, "password": PASSWORDS[name]})
        assert reply.status == 303, reply.text

    def csrf(self, path: str = "/") -> str:
        """The CSRF token of the session, read from a page's forms."""
        found = re.search(r'name="csrf_token" value="([^"]+)"', self.get(path).text)
        assert found, "no CSRF token on the page"
        return found.group(1)

    def form(self, path: str, data: dict[str, Any] | None = None, **kwargs: Any) -> Reply:
        """POST a form with the session's CSRF token."""
        fields = [("csrf_token", self.csrf())]
        for key, value in (data or {}).items():
            values = value if isinstance(value, list) else [value]
            fields.extend((key, item) for item in values)
        return self.post(path, fields, **kwargs)

    def api(self, method: str, path: str, who: str, body: Any = None) -> Reply:
        """An API call with ``who``'s bearer token."""
        headers = {"Authorization": f"Bearer {TOKENS[who]}"}
        return self.request(method, path, json=body, headers=headers)

    def close(self) -> None:
        self.loop.run_until_complete(self.client.close())
        self.loop.close()


@dataclass
class Setup:
    planner: ApsPlanner
    link: Link
    queue: MemoryQueue
    outlet: Switch
    web: WebInterface
    client: Client
    clock: FakeClock
    pipeline: Path
    reloads: list[Path]


def make_setup(
    tmp_path: Path, users: Any = None, start: bool = True, inlet: Inlet | None = None
) -> Iterator[Setup]:
    clock = FakeClock(time.time())  # events carry the real time
    queue = MemoryQueue()
    outlet = Switch("sink")
    link = Link(
        [inlet or Numbers()],
        [outlet],
        3600,
        tags=["numbers"],
        queue=queue,
        immediate_transfer=False,
        retry=RetryPolicy(max_attempts=1),
    )
    planner = ApsPlanner([link], ignore_exceptions=True)
    pipeline = tmp_path / "pipeline.toml"
    pipeline.write_text(PIPELINE)
    reloads: list[Path] = []
    web = WebInterface(
        planner,
        alias="TEST-ALIAS",
        users=users,
        pipeline_file=pipeline,
        reload=reloads.append,
        clock=clock,
    )
    if start:
        planner.start(block=False)
    client = Client(web)
    try:
        yield Setup(planner, link, queue, outlet, web, client, clock, pipeline, reloads)
    finally:
        client.close()
        planner.shutdown()
        web.close()


def dead_letter(s: Setup) -> list[str]:
    """Make the outlet fail once: the two records of that transfer die (max_attempts=1)."""
    s.outlet.failing = True
    s.link.transfer()
    s.outlet.failing = False
    letters = s.queue.dead_letters()
    assert letters
    return [letter.id for letter in letters]
