"""Regenerate the screenshots of docs/web.md with the browser tests' tooling.

Runs the planner of ``examples/web_interface.py`` (transfers driven by hand, so every run
shows the same numbers), serves it, and photographs the main pages in headless Debian
Chromium through Playwright (no browser download)::

    python tools/web_screenshots.py              # writes docs/images/web-*.png
    python tools/web_screenshots.py --out /tmp/shots

Prints one line per image written.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "examples")]

from web_interface import build  # noqa: E402 - examples/web_interface.py

from tools.chromium import CHROMIUM_ARGS  # noqa: E402 - ROOT is on sys.path now

__all__ = ["main"]

PIPELINE = """\
# The pipeline behind the demo (shown on the pipeline page).
[planner]
kind = "aps"

[queue]
path = "${PIPELINE_DIR}/queue.sqlite3"

[web]
alias = "DEMO"

[[links]]
tags = ["orders"]
interval = "2s"
inlets = ["null"]
outlets = [{ type = "null", name = "warehouse" }, { type = "null", name = "archive" }]
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "images")
    args = parser.parse_args(argv)
    executable = shutil.which("chromium")
    if executable is None:
        print("no 'chromium' on PATH (apt-get install chromium)", file=sys.stderr)
        return 1
    from playwright.sync_api import sync_playwright

    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        pipeline = Path(tmp, "pipeline.toml")
        pipeline.write_text(PIPELINE, encoding="utf-8")
        planner, web, queue = build(Path(tmp, "queue.sqlite3"), 3600, 0, "DEMO", pipeline)
        orders, sensors = planner.links
        web.start()
        planner.start(block=False)
        try:
            for _ in range(4):
                orders.transfer()
                sensors.transfer()
            planner.flush_observers(10)
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(
                    executable_path=executable, args=CHROMIUM_ARGS, timeout=60_000
                )
                page = browser.new_page(viewport={"width": 1280, "height": 720})
                page.set_default_timeout(30_000)

                def shoot(name: str) -> None:
                    path = args.out / f"web-{name}.png"
                    page.screenshot(path=str(path), full_page=True)
                    print(f"wrote {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")

                page.goto(web.url + "/login")
                shoot("login")
                page.fill("input[name=username]", "admin")
                page.fill("input[name=password]", "demo")
                page.click("button[type=submit]")
                page.wait_for_url(web.url + "/")
                shoot("overview")
                page.goto(web.url + "/links/orders")
                shoot("link")
                page.goto(web.url + "/dead")
                page.locator("input[name=id]").first.check()
                shoot("dead-letters")
                page.click("button[value=replay-selected]")
                shoot("confirm")
                page.goto(web.url + "/history")
                shoot("history")
                page.goto(web.url + "/pipeline")
                page.fill("#pipeline-text", PIPELINE.replace('"2s"', '"-2s"'))
                page.click("#save")
                shoot("pipeline-rejected")
                browser.close()
        finally:
            planner.shutdown()
            web.close()
            queue.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
