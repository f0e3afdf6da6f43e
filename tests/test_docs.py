"""The documentation holds together: every page is listed in the README, every relative link
(and its #anchor) leads somewhere, and every ``docs/*.md`` a text names exists."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = sorted((ROOT / "docs").glob("*.md"))
TEXTS = [ROOT / "README.md", ROOT / "examples" / "README.md", *PAGES]
_FENCE = re.compile(r"```.*?```", re.S)
_LINK = re.compile(r"\]\(([^)\s]+)\)")


def _prose(path: Path) -> str:
    return _FENCE.sub("", path.read_text(encoding="utf-8"))


def _anchor(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces as dashes."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    return {_anchor(h) for h in re.findall(r"^#+\s+(.*)$", _prose(path), re.M)}


def test_every_page_is_listed_in_the_readme() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    missing = [page.name for page in PAGES if f"docs/{page.name}" not in readme]
    assert not missing, f"README.md's table lacks {missing}"


@pytest.mark.parametrize("text", TEXTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_and_anchors_resolve(text: Path) -> None:
    broken = []
    for link in _LINK.findall(_prose(text)):
        if re.match(r"[a-z]+:", link):  # http:, https:, mailto:
            continue
        path, _, anchor = link.partition("#")
        target = (text.parent / path).resolve() if path else text
        if not target.exists():
            broken.append(f"{link} (no such file)")
        elif anchor and target.suffix == ".md" and anchor not in _anchors(target):
            broken.append(f"{link} (no such heading)")
    assert not broken, f"{text.relative_to(ROOT)}: {broken}"


def test_named_pages_exist() -> None:
    named = {m for text in TEXTS for m in re.findall(r"\bdocs/[\w\-]+\.md", _prose(text))}
    assert not [m for m in sorted(named) if not (ROOT / m).exists()]
