"""The switches Debian's Chromium runs with under Playwright, in the browser tests
(tests/web/test_web_browser.py) and in tools/web_screenshots.py."""

from __future__ import annotations

__all__ = ["CHROMIUM_ARGS"]

#: Chromium's switches for a headless run in a container, with nothing fetched from the net.
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
