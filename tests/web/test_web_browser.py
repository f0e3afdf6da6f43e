"""The web interface in a real browser: headless Chromium (Debian's) driven by Playwright.

No browser is downloaded: Playwright is pointed at the system's ``chromium``. Where it is
missing these tests are skipped with the reason, unless ``DATABAY_BUS_REQUIRE_BROWSER=1`` (set
by ``.ci/run``), which makes a missing browser a failure.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from web_fakes import PASSWORDS, PIPELINE, Numbers, Switch, user_table

from databay_bus import Link
from databay_bus.planners import ApsPlanner
from databay_bus.queue import MemoryQueue, RetryPolicy
from databay_bus.web import WebInterface
from tools.chromium import CHROMIUM_ARGS


def _unavailable(reason: str) -> None:
    if os.environ.get("DATABAY_BUS_REQUIRE_BROWSER") == "1":
        pytest.fail(f"DATABAY_BUS_REQUIRE_BROWSER=1 but {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One headless Chromium for the module (a start takes seconds)."""
    executable = shutil.which("chromium")
    if executable is None:
        _unavailable("no 'chromium' on PATH (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("the playwright package is not installed (pip install playwright)")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=executable, args=CHROMIUM_ARGS, timeout=60_000
        )
        try:
            yield chromium
        finally:
            chromium.close()


class Served:
    """A planner with one queued link, served on a real port, and a browser page."""

    def __init__(self, tmp_path: Path, browser: Any) -> None:
        self.outlet = Switch("sink")
        self.queue = MemoryQueue()
        self.link = Link(
            [Numbers()],
            [self.outlet],
            3600,
            tags=["numbers"],
            queue=self.queue,
            immediate_transfer=False,
            retry=RetryPolicy(max_attempts=1),
        )
        self.planner = ApsPlanner([self.link], ignore_exceptions=True)
        self.pipeline = tmp_path / "pipeline.toml"
        self.pipeline.write_text(PIPELINE)
        self.reloads: list[Path] = []
        self.web = WebInterface(
            self.planner,
            port=0,
            alias="BROWSER-TEST",
            users=user_table(),
            pipeline_file=self.pipeline,
            reload=self.reloads.append,
        )
        self.web.start()
        self.planner.start(block=False)
        self.context = browser.new_context()
        self.page = self.context.new_page()
        self.page.set_default_timeout(30_000)

    def goto(self, path: str) -> None:
        self.page.goto(self.web.url + path)

    def login(self, name: str) -> None:
        self.goto("/")
        self.page.fill("input[name=username]", name)
        self.page.fill("input[name=password]", PASSWORDS[name])
        self.page.click("button[type=submit]")
        self.page.wait_for_url(self.web.url + "/")

    def close(self) -> None:
        self.context.close()
        self.planner.shutdown()
        self.web.close()


@pytest.fixture
def served(tmp_path: Path, browser: Any) -> Iterator[Served]:
    s = Served(tmp_path, browser)
    try:
        yield s
    finally:
        s.close()


def test_log_in_see_the_alias_and_a_failing_link_turn_red(served: Served) -> None:
    page = served.page
    served.goto("/")
    assert "/login" in page.url  # not logged in: the login form
    served.login("vic")
    assert page.inner_text("#alias") == "BROWSER-TEST"
    row = page.locator('tr[data-link="numbers"]')
    assert row.get_attribute("class") == "state-ok"
    served.outlet.failing = True
    served.link.transfer()
    served.planner.flush_observers(10)
    page.reload()
    assert row.get_attribute("class") == "state-failing"
    assert "sink is down" in row.inner_text()
    colour = row.evaluate("element => getComputedStyle(element).backgroundColor")
    assert colour == "rgb(255, 205, 210)"  # the red of .state-failing


def test_replay_a_dead_letter_and_see_it_delivered(
    served: Served, wait_until: Callable[..., None]
) -> None:
    served.outlet.failing = True
    served.link.transfer()  # records 1 and 2 die (one attempt allowed)
    served.outlet.failing = False
    first = min(letter.id for letter in served.queue.dead_letters())
    page = served.page
    served.login("olga")
    served.goto("/dead")
    page.check(f'input[name=id][value="{first}"]')
    page.click("button[value=replay-selected]")
    assert page.inner_text("h1") == "Replay 1 dead letter?"
    page.click("#confirm")
    assert page.inner_text("#message") == "Replayed 1 dead letters."
    assert page.locator("table#dead tbody tr[data-id]").count() == 1
    served.goto("/")
    page.locator('tr[data-link="numbers"] button', has_text="Transfer now").click()
    assert "numbers: transfer started" in page.inner_text("#message")
    wait_until(lambda: 1 in served.outlet.received, message="the replayed record delivered")
    served.planner.flush_observers(10)
    served.goto("/links/numbers")
    assert "sink: 3" in page.inner_text("table.runs")  # the replayed 1, and the new 3 and 4


def test_edit_the_pipeline_file_and_see_a_bad_edit_rejected(served: Served) -> None:
    page = served.page
    served.login("ada")
    served.goto("/pipeline")
    page.fill("#pipeline-text", PIPELINE.replace('"1h"', '"-5s"'))
    page.click("#save")
    problems = page.inner_text("#problems")
    assert "The file was not saved" in problems and "links[0].interval" in problems
    assert served.pipeline.read_text() == PIPELINE
    page.fill("#pipeline-text", PIPELINE.replace('"1h"', '"2h"'))
    page.click("#save")
    assert page.inner_text("#message") == "Saved and reloaded."
    assert '"2h"' in served.pipeline.read_text()
    assert served.reloads == [served.pipeline]
