"""Keeping secrets out of what is printed: `validate` output, error messages, broker URLs.

A value is treated as secret when its key looks like one (``token``, ``password``,
``headers``, ...), when it came from a ``${VARIABLE}`` whose name or key looks like one, or
when it is the password, user or query string of a URL (``https://u:***@host/?key=***``).
"""

from __future__ import annotations

import re
from collections.abc import Collection
from typing import Any
from urllib.parse import urlsplit, urlunsplit

__all__ = ["MASK", "is_secret_name", "mask_text", "mask_url", "shown"]

MASK = "***"
_SECRET = re.compile(
    r"token|secret|password|passwd|authori[sz]ation|api_?key|headers|auth|credential|cookie|dsn",
    re.I,
)
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://[^\s'\"<>]+")
#: Shorter expanded values are not searched for in messages (they would mask ordinary words).
_MIN_SECRET = 3


def is_secret_name(name: str) -> bool:
    """True for a key or variable name that looks like it holds a secret."""
    return bool(_SECRET.search(name))


def mask_url(url: str) -> str:
    """``url`` with the userinfo's password (or a lone user, often a token) and every query
    value replaced by ``***``; anything that is not a URL is returned unchanged."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if not parts.scheme or not parts.netloc:
        return url
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, host = netloc.rpartition("@")
        user, colon, _ = userinfo.partition(":")
        netloc = f"{user}:{MASK}@{host}" if colon else f"{MASK}@{host}"
    query = "&".join(
        f"{item.partition('=')[0]}={MASK}" if "=" in item else MASK
        for item in parts.query.split("&")
        if item
    )
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def mask_text(text: str, secrets: Collection[str] = ()) -> str:
    """``text`` with every secret value and every URL's credentials and query masked."""
    for secret in sorted(secrets, key=len, reverse=True):
        if len(secret) >= _MIN_SECRET:
            text = text.replace(secret, MASK)
    return _URL.sub(lambda match: mask_url(match.group(0)), text)


def shown(key: str, value: Any, secrets: Collection[str] = ()) -> str:
    """How ``validate`` prints the argument ``key = value``: secrets as ``***``."""
    if is_secret_name(key):
        return MASK
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}={shown(k, v, secrets)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(shown(key, v, secrets) for v in value) + "]"
    return mask_text(repr(value), secrets)
