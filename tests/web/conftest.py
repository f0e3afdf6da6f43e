"""Fixtures of the web interface tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("aiohttp_jinja2")

from web_fakes import Setup, make_setup, user_table


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[Setup]:
    """A running planner with one queued link, served with users of every role."""
    yield from make_setup(tmp_path, users=user_table())


@pytest.fixture
def open_setup(tmp_path: Path) -> Iterator[Setup]:
    """The same without users: everyone is an administrator."""
    yield from make_setup(tmp_path)
