"""The operations interface: web pages, a JSON API, health and Prometheus metrics.

Needs the ``web`` extra (``pip install databay_bus[web]``); see docs/web.md. Names are imported
on first use, so ``databay_bus.web.settings`` and ``databay_bus.web.auth`` (what the pipeline
loader and ``databay-bus hash-password`` need) work without aiohttp.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from databay_bus._lazy import lazy_attributes

if TYPE_CHECKING:
    from databay_bus.web.app import WebInterface
    from databay_bus.web.auth import Role, User, hash_password, hash_token, new_token
    from databay_bus.web.history import MemoryHistory, RunHistory, SqliteHistory

__all__ = [
    "MemoryHistory",
    "Role",
    "RunHistory",
    "SqliteHistory",
    "User",
    "WebInterface",
    "hash_password",
    "hash_token",
    "new_token",
]

__getattr__, __dir__ = lazy_attributes(
    globals(),
    {
        "WebInterface": "databay_bus.web.app",
        "Role": "databay_bus.web.auth",
        "User": "databay_bus.web.auth",
        "hash_password": "databay_bus.web.auth",
        "hash_token": "databay_bus.web.auth",
        "new_token": "databay_bus.web.auth",
        "MemoryHistory": "databay_bus.web.history",
        "RunHistory": "databay_bus.web.history",
        "SqliteHistory": "databay_bus.web.history",
    },
)
