"""HttpInlet: fetch a URL on every pull (needs the ``http`` extra: aiohttp).

Where the requests run: every HttpInlet keeps **one** ``aiohttp.ClientSession`` (its
timeout and cookies) on the library's shared background event loop
(``databay_bus._concurrency``). Transfers of a link run on whichever thread the planner uses,
and the per-thread loops close when their thread ends, possibly before ``on_shutdown``; a
session bound to such a loop could then never be closed cleanly. Bound to the long-lived
background loop instead, the session is reused by every pull from every thread and closed on
its own loop in :meth:`HttpInlet.on_shutdown`.

The sessions share their connections: one connector (connection pool, no limit of its own)
per TLS setting, closed when the last session using it closes. 200 inlets polling one API
then keep one pool of kept-alive connections rather than 200, which measured 5-8 % less time
per transfer (scenario 6 of ``benchmarks/``).

HttpInlet names that loop as its home (``Node._get_home_loop``), so a link whose async nodes are
all HttpInlets runs its whole transfer there: 200 inlets cost one hop between threads per
transfer, not 200. In a link with other async nodes each pull hops to the background loop
and back on its own; inlets still pull concurrently either way.
"""

from __future__ import annotations

import asyncio
import json as _json
import logging
import os
import re
import ssl
import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Literal

from databay_bus._concurrency import _shared_background_loop
from databay_bus._lazy import require_extra
from databay_bus._validation import as_bool, optional_positive_seconds
from databay_bus.errors import ConfigurationError, HttpInletError, ResponseDecodeError, describe
from databay_bus.inlets.base import Inlet

require_extra("HttpInlet", "http", "aiohttp")

import aiohttp  # noqa: E402 - after the check that names the extra

if TYPE_CHECKING:
    from databay_bus.update import Update

__all__ = ["DEFAULT_TIMEOUT", "HttpInlet"]

_LOGGER = logging.getLogger(__name__)

#: Seconds a whole request (connect, send, read the body) may take unless told otherwise.
DEFAULT_TIMEOUT = 30.0

_CLOSE_TIMEOUT = 10.0


class _Connectors:
    """The connectors HttpInlet sessions share, one per TLS setting, counted by user.

    Used only on the background loop's thread (sessions are made and closed there), so it
    needs no lock.
    """

    def __init__(self) -> None:
        self._shared: dict[ssl.SSLContext | bool, tuple[aiohttp.TCPConnector, int]] = {}

    def acquire(self, tls: ssl.SSLContext | bool) -> aiohttp.TCPConnector:
        connector, users = self._shared.get(tls) or (aiohttp.TCPConnector(ssl=tls, limit=0), 0)
        self._shared[tls] = (connector, users + 1)
        return connector

    async def release(self, tls: ssl.SSLContext | bool) -> None:
        connector, users = self._shared[tls]
        if users > 1:
            self._shared[tls] = (connector, users - 1)
            return
        del self._shared[tls]
        await connector.close()


_CONNECTORS = _Connectors()


class HttpInlet(Inlet):
    """Requests ``url`` on every pull and turns the response body into records.

    With ``json=True`` a JSON array becomes one record per element, any other JSON value one
    record; with ``json=False`` the body text is one record. An empty body gives no record.

    Args:
        url: the address to request.
        json: parse the body as JSON (default) or pass it on as text.
        cacert: path of a PEM file of CA certificates to verify the server with (for a private
            CA); None (or False, Databay's spelling) uses the system's default trust store.
        params: query-string parameters.
        headers: request headers (e.g. an ``Authorization`` token); never logged or shown in
            ``repr``.
        metadata, name: see :class:`~databay_bus.Inlet`.
        method: the HTTP method.
        body: a request body: ``str``/``bytes`` are sent as they are, anything else as JSON.
        timeout: seconds the whole request may take; None for no limit (not recommended).
        cursor_param: for "since=" style APIs: send the inlet's cursor (``update.cursor``,
            docs/cursors.md) as this query parameter (not sent while the cursor is None).
        next_cursor: where the next cursor comes from in the decoded response: a callable
            (``data -> cursor``) or a JSON path like ``'meta.next'`` or ``'items[-1].id'``.
            It is committed with the pull's records; None (or a missing path) keeps the cursor.

    Raises:
        HttpInletError: from ``pull``, for a non-2xx status, a timeout or a connection/TLS
            failure; the message names the method, the URL and the cause. A body that is not
            valid JSON (or text) raises its subclass ``ResponseDecodeError``, also a
            ``ValueError`` as in Databay.
        ConfigurationError: a bad ``timeout``.
    """

    def __init__(
        self,
        url: str,
        json: bool = True,
        cacert: str | os.PathLike[str] | Literal[False] | None = None,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        metadata: dict[str, Any] | None = None,
        name: str | None = None,
        *,
        method: str = "GET",
        body: Any = None,
        timeout: float | None = DEFAULT_TIMEOUT,
        cursor_param: str | None = None,
        next_cursor: Callable[[Any], Any] | str | None = None,
    ) -> None:
        super().__init__(metadata, name)
        owner = f"HttpInlet({url!r})"
        timeout = optional_positive_seconds(timeout, "timeout", owner)
        json = as_bool(json, "json", owner)
        self.url = url
        self.json = json
        self.cacert = os.fspath(cacert) if cacert else None
        self.params = dict(params) if params else None
        #: Request headers, sent with every request (read at each pull, so they may be changed).
        self.headers = dict(headers) if headers else None
        self.method = method.upper()
        self.body = body
        self.timeout = timeout
        self.cursor_param = cursor_param
        if next_cursor is not None and not (callable(next_cursor) or isinstance(next_cursor, str)):
            raise ConfigurationError(
                f"HttpInlet({url!r}): next_cursor must be a callable or a JSON path, got "
                f"{describe(next_cursor)}"
            )
        self.next_cursor = next_cursor
        # Built now so a missing or unreadable CA file fails at construction, not at first pull.
        self._tls: ssl.SSLContext | bool = (
            ssl.create_default_context(cafile=self.cacert) if self.cacert else True
        )
        self._session: aiohttp.ClientSession | None = None
        self._session_lock = threading.Lock()

    @property
    def context(self) -> ssl.SSLContext | None:
        """The TLS context verifying with ``cacert``; None without ``cacert`` (system trust)."""
        return self._tls if isinstance(self._tls, ssl.SSLContext) else None

    @property
    def tcp_connector(self) -> aiohttp.TCPConnector | None:
        """The connector (connection pool) the inlet's session uses; None while it has none
        (before the first pull, after ``on_shutdown``). Shared by inlets of one TLS setting."""
        session = self._session
        return None if session is None else session.connector  # type: ignore[return-value]

    # -- lifecycle ---------------------------------------------------------------------------

    def on_shutdown(self) -> None:
        """Close the client session (a later pull opens a new one)."""
        with self._session_lock:
            session, self._session = self._session, None
        if session is None:
            return
        loop = _shared_background_loop()
        future = asyncio.run_coroutine_threadsafe(self._close(session), loop)
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is not loop:  # never block the loop the close has to run on
            future.result(_CLOSE_TIMEOUT)

    async def _close(self, session: aiohttp.ClientSession) -> None:
        """On the background loop: close ``session``, then its connector if no one else uses it."""
        try:
            await session.close()
        finally:
            await _CONNECTORS.release(self._tls)

    # -- pulling -----------------------------------------------------------------------------

    _get_home_loop = staticmethod(_shared_background_loop)

    async def pull(self, update: Update) -> Any:
        """Request the URL once; see the class docstring for what it returns."""
        _LOGGER.info("%s %s %s", update, self.method, self.url)
        params = self.params
        if self.cursor_param is not None and (cursor := update.cursor) is not None:
            value = cursor if isinstance(cursor, str | int | float) else _json.dumps(cursor)
            params = {**(params or {}), self.cursor_param: value}
        home = _shared_background_loop()
        if asyncio.get_running_loop() is home:
            status, raw, charset = await self._fetch(params)
        else:
            request = asyncio.run_coroutine_threadsafe(self._fetch(params), home)
            status, raw, charset = await asyncio.wrap_future(request)
        _LOGGER.debug("%s %s %s -> %s, %d bytes", update, self.method, self.url, status, len(raw))
        data = self._decode(raw, charset)
        if self.next_cursor is not None:
            found = (
                self.next_cursor(data)
                if callable(self.next_cursor)
                else _json_path(data, self.next_cursor)
            )
            if found is not None:
                update.commit_cursor(found)
        return data

    async def _fetch(self, params: Mapping[str, Any] | None) -> tuple[int, bytes, str]:
        """Runs on the background loop: send the request, return status, body and charset."""
        session = self._session_for_request()
        kwargs: dict[str, Any] = {"params": params, "headers": self.headers}
        if isinstance(self.body, str | bytes):
            kwargs["data"] = self.body
        elif self.body is not None:
            kwargs["json"] = self.body
        try:
            async with session.request(self.method, self.url, **kwargs) as response:
                raw = await response.read()
                if not 200 <= response.status < 300:
                    raise HttpInletError(
                        f"{self.method} {self.url} failed: HTTP {response.status} "
                        f"{response.reason or ''}".rstrip()
                    )
                return response.status, raw, response.charset or "utf-8"
        except (TimeoutError, asyncio.TimeoutError) as exc:  # distinct types before 3.11
            raise HttpInletError(
                f"{self.method} {self.url} failed: no complete response within {self.timeout}s"
            ) from exc
        except aiohttp.ClientError as exc:
            raise HttpInletError(
                f"{self.method} {self.url} failed: {type(exc).__name__}: {exc}"
            ) from exc

    def _session_for_request(self) -> aiohttp.ClientSession:
        session = self._session
        if session is not None:
            return session
        with self._session_lock:
            if self._session is None:
                self._session = aiohttp.ClientSession(
                    connector=_CONNECTORS.acquire(self._tls),
                    connector_owner=False,
                    timeout=aiohttp.ClientTimeout(total=self.timeout),
                )
            return self._session

    def _decode(self, raw: bytes, charset: str) -> Any:
        if not raw.strip():
            return []
        try:
            text = raw.decode(charset)
        except (UnicodeDecodeError, LookupError) as exc:
            raise ResponseDecodeError(
                f"{self.method} {self.url}: response body is not valid {charset} text: {exc}"
            ) from exc
        if not self.json:
            return text
        try:
            return _json.loads(text)
        except ValueError as exc:
            raise ResponseDecodeError(
                f"{self.method} {self.url}: Response does not contain valid JSON ({exc}); "
                f"body starts with {text[:60]!r}"
            ) from exc

    def __repr__(self) -> str:
        parts = [f"url={self.url!r}"]
        if self.method != "GET":
            parts.append(f"method={self.method!r}")
        if not self.json:
            parts.append("json=False")
        if self.params:
            parts.append(f"params={sorted(self.params)!r}")  # names only: values may be secrets
        if self.cacert:
            parts.append(f"cacert={self.cacert!r}")
        if self.metadata:
            parts.append(f"metadata={self.metadata!r}")
        return f"HttpInlet({', '.join(parts)})"


_STEP = re.compile(r"([^.\[\]]+)|\[(-?\d+)\]")


def _json_path(data: Any, path: str) -> Any:
    """``data`` at ``path`` (``'meta.next'``, ``'$.items[-1].id'``), or None if it is absent."""
    for name, index in _STEP.findall(path.removeprefix("$").lstrip(".")):
        try:
            data = data[int(index)] if index else data[name]
        except (KeyError, IndexError, TypeError):
            return None
    return data
