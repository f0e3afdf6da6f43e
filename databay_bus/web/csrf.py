"""CSRF defences for state-changing requests made with a session cookie.

Two independent checks, both required: the browser's own statement of where the request comes
from (``Sec-Fetch-Site``, else ``Origin``) must be this site, and the request must carry the
session's synchronizer token (a hidden form field or the ``X-CSRF-Token`` header). Requests
authenticated with a bearer token carry no ambient credential and need neither.
"""

from __future__ import annotations

import hmac

from aiohttp import web

__all__ = ["cross_site_reason", "token_matches"]

_SAFE_FETCH_SITES = ("same-origin", "none")


def cross_site_reason(request: web.Request) -> str | None:
    """Why ``request`` looks cross-site, or None when it comes from this site."""
    fetch_site = request.headers.get("Sec-Fetch-Site")
    if fetch_site is not None and fetch_site.lower() not in _SAFE_FETCH_SITES:
        return f"Sec-Fetch-Site is {fetch_site!r}"
    origin = request.headers.get("Origin")
    if origin is not None:
        own = f"{request.scheme}://{request.host}"
        if origin.lower() == "null" or origin.rstrip("/").lower() != own.lower():
            return f"Origin {origin!r} is not {own!r}"
    return None


def token_matches(expected: str, submitted: str | None) -> bool:
    """Constant-time comparison of the session's token with the submitted one."""
    return bool(submitted) and hmac.compare_digest(expected.encode(), str(submitted).encode())
