"""WebInterface: serves a planner's pages, JSON API, health and metrics.

It runs on a thread and event loop of its own (``start()`` / ``stop()``, or ``with
WebInterface(planner):``), so a slow page never slows a transfer, or is mounted into an
application's own aiohttp app (``app.add_subapp("/ops", interface.app)`` with
``prefix="/ops"``). Loopback only by default; listening on another address without TLS or
without users logs a WARNING.
"""

# ruff: noqa: E402 - the imports after require_extra() come after the check naming the extra
from __future__ import annotations

import asyncio
import ipaddress
import logging
import os
import ssl
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import quote

from databay_bus._lazy import require_extra

require_extra(
    "the web interface", "web", "aiohttp", "aiohttp_jinja2", "jinja2", "prometheus_client"
)

import aiohttp_jinja2
import jinja2
from aiohttp import web

from databay_bus._clock import Clock
from databay_bus._validation import integer, optional_callable, optional_positive_seconds, text
from databay_bus.errors import ArgumentTypeError, ConfigurationError, describe
from databay_bus.observers import Event, Observer, PlannerStarted, PlannerStopped
from databay_bus.planners.base import BasePlanner
from databay_bus.web.audit import AuditTrail
from databay_bus.web.auth import LoginLimiter, Role, Session, Sessions, User, Users
from databay_bus.web.control import Control, PipelineClosed
from databay_bus.web.csrf import cross_site_reason, token_matches
from databay_bus.web.history import HistoryObserver, RunHistory, history_for
from databay_bus.web.metrics import PlannerMetrics
from databay_bus.web.pipeline_file import MAX_PIPELINE_BYTES, PipelineFile
from databay_bus.web.routes import Routes
from databay_bus.web.view import PipelineView, StatusObserver

__all__ = ["PRINCIPAL", "Principal", "WebInterface", "see_other"]

_LOGGER = logging.getLogger(__name__)

COOKIE = "databay_bus_session"
_SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
_ANONYMOUS = User("anonymous", Role.ADMINISTRATOR)


@dataclass
class Principal:
    """Who makes a request, and how they proved it (``session``, ``token``; ``open``: an API
    call to an interface without users)."""

    name: str
    role: Role
    via: str
    session: Session | None = None

    @property
    def can_logout(self) -> bool:
        """True for a logged-in browser (not for the anonymous user of a user-less setup)."""
        return self.via == "session" and self.name != _ANONYMOUS.name


#: Where the middleware leaves the request's Principal (None when anonymous).
PRINCIPAL: Any = (
    web.RequestKey("principal", Principal) if hasattr(web, "RequestKey") else "db_principal"
)


class WebInterface:
    """The operations interface of ``planner``.

    Args:
        planner: the planner to show and operate.
        host, port: where ``start()`` listens (port 0 picks a free one: see :attr:`port`).
        alias: a name shown at the top of every page (e.g. ``"TEST"`` or ``"LIVE"``).
        users: ``User`` objects or a ``{name: {role, password_hash, tokens}}`` mapping;
            without users everyone is an administrator (fine on loopback only).
        tls: an ``ssl.SSLContext`` or ``(certfile, keyfile)``; cookies are then ``Secure``.
        history: a :class:`RunHistory`; by default one in the first SQLite queue's file
            of the planner's links, else in memory.
        history_life_span: seconds run history is kept (when ``history`` is not given).
        pipeline_file: the pipeline file to show (and let administrators edit).
        reload: called with the file's path after an edit was saved, to apply it.
        prefix: the path the app is mounted under in another application (``"/ops"``).
        clock: time source of sessions, the login limit and the history (tests).
    """

    def __init__(
        self,
        planner: Any,
        *,
        host: str = "127.0.0.1",
        port: int = 8080,
        alias: str = "",
        users: Sequence[User] | Mapping[str, Any] | None = None,
        tls: ssl.SSLContext | tuple[str, str] | None = None,
        history: RunHistory | None = None,
        history_life_span: float | None = 7 * 86400.0,
        pipeline_file: str | Path | None = None,
        reload: Callable[[Path], None] | None = None,
        prefix: str = "",
        clock: Clock | None = None,
    ) -> None:
        owner = "WebInterface"
        if not isinstance(planner, BasePlanner):
            raise ArgumentTypeError(
                f"{owner}: planner must be a databay_bus planner, got {describe(planner)}"
            )
        self.host = text(host, "host", owner)
        self._port = integer(port, "port", owner, low=0, high=65535)
        alias = text(alias, "alias", owner, empty=True)
        prefix = text(prefix, "prefix", owner, empty=True)
        if prefix and (not prefix.startswith("/") or prefix.endswith("/")):
            raise ConfigurationError(
                f"WebInterface: prefix must start with '/' and not end with one, got {prefix!r}"
            )
        history_life_span = optional_positive_seconds(history_life_span, "history_life_span", owner)
        if pipeline_file is not None and not isinstance(pipeline_file, (str, os.PathLike)):
            raise ArgumentTypeError(
                f"{owner}: pipeline_file must be a path or None, got {describe(pipeline_file)}"
            )
        reload = optional_callable(reload, "reload", owner)
        self.alias = alias
        self.prefix = prefix
        self.users = Users(users)
        self.ssl_context = _ssl_context(tls)
        self.sessions = Sessions(clock=clock)
        self.limiter = LoginLimiter(clock=clock)
        self.audit = AuditTrail(clock=clock)
        self.pipeline_file = None if pipeline_file is None else PipelineFile(pipeline_file, reload)
        queues = [link.queue for link in planner.links if link.queue is not None]
        self._own_history = history is None
        self.history = history or history_for(queues, history_life_span, clock)
        self.status = StatusObserver()
        self.metrics = PlannerMetrics(planner.metrics)
        self._history_observer = HistoryObserver(self.history)
        # Held while a request reads the planner's queues; a stopped planner's queues are
        # about to be closed (a SQLite connection closed under a reader crashes the process).
        self._open_lock = threading.Lock()
        self._closed_planner = False
        self._lifecycle = _Lifecycle(self)
        self.planner: Any = None
        self.set_planner(planner)
        self._app: web.Application | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None

    # -- the planner ------------------------------------------------------------------------

    def _observers(self) -> tuple[Any, ...]:
        return (self._history_observer, self.status, self.metrics, self._lifecycle)

    def while_open(self, func: Callable[..., Any], *args: Any) -> Any:
        """``func(*args)`` unless the planner stopped (its queues may be closing): then
        :class:`PipelineClosed`. Runs on the executor, never on the event loop."""
        with self._open_lock:
            if self._closed_planner:
                raise PipelineClosed(
                    "the pipeline is not running (stopped, or reloading): try again in a moment"
                )
            return func(*args)

    def _planner_closed(self, closed: bool) -> None:
        with self._open_lock:  # waits for a request reading the queues to finish
            self._closed_planner = closed

    def set_planner(self, planner: Any) -> None:
        """Show and operate ``planner`` from now on (after a reload built a new one)."""
        if self.planner is not None:
            for observer in self._observers():
                self.planner.remove_observer(observer)
        self.planner = planner
        self._planner_closed(False)
        self.metrics.planner_metrics = planner.metrics
        for observer in self._observers():
            planner.add_observer(observer)
        self.control = Control(planner)
        self.view = PipelineView(planner, self.history, self.status, self.control, self.alias)

    def update(
        self,
        *,
        alias: str | None = None,
        users: Sequence[User] | Mapping[str, Any] | None = None,
    ) -> None:
        """Take a new alias and/or users (a reloaded pipeline file's); sessions of users
        that are gone end at their next request."""
        if users is not None:
            self.users = Users(users)
        if alias is not None:
            self.alias = alias
            self.view.alias = alias

    # -- the application --------------------------------------------------------------------

    @property
    def app(self) -> web.Application:
        """The aiohttp application (built once); mount it with ``add_subapp(prefix, app)``."""
        if self._app is None:
            self._app = self._build_app()
        return self._app

    def _build_app(self) -> web.Application:
        app = web.Application(
            middlewares=[self._errors, self._authenticate],
            client_max_size=2 * MAX_PIPELINE_BYTES,
        )
        env = aiohttp_jinja2.setup(
            app,
            loader=jinja2.PackageLoader("databay_bus.web", "templates"),
            autoescape=jinja2.select_autoescape(default=True, default_for_string=True),
            undefined=jinja2.StrictUndefined,
        )
        env.filters["urlencode"] = lambda value: quote(str(value), safe="")
        app.router.add_static("/static", Path(__file__).with_name("static"))
        Routes(self).add_to(app)
        return app

    def render(
        self, request: web.Request, template: str, context: dict[str, Any], status: int = 200
    ) -> web.Response:
        """Render a page: the common header values, then ``context``."""
        response: web.Response = aiohttp_jinja2.render_template(
            template, request, {**self._context(request), **context}, status=status
        )
        return response

    def _context(self, request: web.Request) -> dict[str, Any]:
        principal: Principal | None = request.get(PRINCIPAL)
        session = principal.session if principal else None
        message = None
        if session is not None and session.flash:
            message, session.flash = session.flash, None
        return {
            "alias": self.alias,
            "base": self.prefix,
            "principal": principal,
            "csrf": session.csrf if session else "",
            "can_operate": principal is not None and principal.role >= Role.OPERATOR,
            "message": message,
            "message_kind": "info",
            "refresh": None,
        }

    def _is_api(self, request: web.Request) -> bool:
        path = request.path[len(self.prefix) :] if self.prefix else request.path
        return path.startswith("/api/") or path in ("/metrics", "/healthz", "/readyz")

    @web.middleware
    async def _errors(
        self, request: web.Request, handler: Callable[[web.Request], Any]
    ) -> web.StreamResponse:
        try:
            response: web.StreamResponse = await handler(request)
            return response
        except web.HTTPException as exc:
            if exc.status < 400 or self._is_api(request) or exc.content_type != "text/plain":
                raise
            if exc.status == 401:
                raise
            return self._error_page(request, exc.status, exc.reason, exc.text or "")
        except PipelineClosed as exc:
            if self._is_api(request):
                return web.json_response({"error": str(exc)}, status=503)
            return self._error_page(request, 503, "Service Unavailable", str(exc))
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            _LOGGER.error("%s %s failed", request.method, request.path, exc_info=exc)
            detail = "internal error; the server log has the details"
            if self._is_api(request):
                return web.json_response({"error": detail}, status=500)
            return self._error_page(request, 500, "Internal Server Error", detail)

    def _error_page(
        self, request: web.Request, status: int, reason: str, detail: str
    ) -> web.Response:
        try:
            return self.render(
                request,
                "error.html",
                {"status": status, "reason": reason, "detail": detail},
                status=status,
            )
        except Exception:
            return web.Response(status=status, text=detail)

    @web.middleware
    async def _authenticate(
        self, request: web.Request, handler: Callable[[web.Request], Any]
    ) -> web.StreamResponse:
        match = request.match_info
        if match.http_exception is not None:  # 404/405: nothing to protect
            raise match.http_exception
        needed: Role | None = getattr(match.handler, "needs_role", Role.ADMINISTRATOR)
        if isinstance(match.route.resource, web.StaticResource):
            needed = None  # the style sheet, also for the login page
        api = self._is_api(request)
        principal, new_session = self._identify(request)
        if principal is None and needed is not None and request.headers.get("Authorization"):
            return self._deny(request, 401, "invalid or unknown bearer token", api)
        request[PRINCIPAL] = principal
        if needed is not None:
            if principal is None:
                if api or request.method not in _SAFE_METHODS:
                    return self._deny(request, 401, "log in first (or send a bearer token)", api)
                target = quote(request.path_qs, safe="")
                raise web.HTTPSeeOther(f"{self.prefix}/login?next={target}")
            if principal.role < needed:
                return self._deny(
                    request,
                    403,
                    f"{principal.name} is a {principal.role.label}; this needs "
                    f"{needed.label} or more",
                    api,
                )
        if request.method not in _SAFE_METHODS:
            refusal = await self._csrf_refusal(request, principal, api)
            if refusal is not None:
                self._audit_refusal(request, principal, refusal)
                return self._deny(request, 403, f"request refused: {refusal}", api)
        response: web.StreamResponse
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            if new_session is not None:
                self._set_cookie(exc, new_session)
            raise
        if new_session is not None:
            self._set_cookie(response, new_session)
        return response

    def _identify(self, request: web.Request) -> tuple[Principal | None, Session | None]:
        """Who sends ``request``, and a session created for it now (user-less setups)."""
        header = request.headers.get("Authorization", "")
        if header:
            scheme, _, token = header.partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                return None, None
            user = self.users.by_token(token.strip())
            if user is None:
                return None, None
            return Principal(user.name, user.role, "token"), None
        session = self.sessions.get(request.cookies.get(COOKIE))
        if session is not None:
            if self.users and self.users.get(session.user.name) is None:
                self.sessions.end(session.id)  # a user removed by a reload
                return None, None
            return Principal(session.user.name, session.user.role, "session", session), None
        if not self.users and self._is_api(request):
            return Principal(_ANONYMOUS.name, _ANONYMOUS.role, "open"), None  # scripts, curl
        if not self.users:
            session = self.sessions.create(_ANONYMOUS)
            return Principal(_ANONYMOUS.name, _ANONYMOUS.role, "session", session), session
        return None, None

    async def _csrf_refusal(
        self, request: web.Request, principal: Principal | None, api: bool
    ) -> str | None:
        """Why a state-changing request is refused as a possible forgery, or None."""
        if principal is not None and principal.via == "token":
            return None  # a bearer token is no ambient credential: nothing to forge
        reason = cross_site_reason(request)
        if reason is not None:
            return reason
        if principal is not None and principal.via == "open":
            # No users, no cookie: a cross-site page can still post a form here, but not JSON
            # (that needs a CORS preflight, which this server never grants).
            if request.content_type != "application/json":
                return "without users, API changes need Content-Type: application/json"
            return None
        if principal is None or principal.session is None:
            return None  # the login form: the origin check above is what applies
        submitted = request.headers.get("X-CSRF-Token")
        if submitted is None and request.content_type in (
            "application/x-www-form-urlencoded",
            "multipart/form-data",
        ):
            form = await request.post()
            value = form.get("csrf_token")
            submitted = value if isinstance(value, str) else None
        if not token_matches(principal.session.csrf, submitted):
            return "missing or wrong CSRF token (reload the page and try again)"
        return None

    def _audit_refusal(self, request: web.Request, principal: Principal | None, why: str) -> None:
        name = principal.name if principal else "-"
        role = principal.role.label if principal else "-"
        self.audit.record(
            name,
            role,
            f"{request.method} {request.path}",
            "-",
            f"refused: {why}",
            request.remote or "?",
        )

    def _deny(self, request: web.Request, status: int, message: str, api: bool) -> web.Response:
        if api:
            return web.json_response({"error": message}, status=status)
        return self._error_page(
            request, status, {401: "Unauthorized", 403: "Forbidden"}[status], message
        )

    def _set_cookie(self, response: web.StreamResponse, session: Session) -> None:
        response.set_cookie(
            COOKIE,
            session.id,
            httponly=True,
            samesite="Strict",
            secure=self.ssl_context is not None,
            path=self.prefix or "/",
        )

    # -- login ------------------------------------------------------------------------------

    async def login(self, request: web.Request) -> web.StreamResponse:
        """``POST /login``: check the password (rate-limited), start a session."""
        form = await request.post()
        username = str(form.get("username", ""))[:200]
        password = str(form.get("password", ""))[:1000]
        target = str(form.get("next", "")) or "/"
        if not target.startswith("/") or target.startswith("//"):
            target = "/"
        keys = (f"ip:{request.remote}", f"user:{username}")
        wait = self.limiter.retry_after(*keys)
        context = {"next": target, "message_kind": "error", "principal": None}
        if wait > 0:
            self.audit.record(username, "-", "login", "-", "rate-limited", request.remote or "?")
            context["message"] = f"Too many failed logins; try again in {int(wait) + 1} s."
            response = self.render(request, "login.html", context, status=429)
            response.headers["Retry-After"] = str(int(wait) + 1)
            return response
        loop = asyncio.get_running_loop()
        user = await loop.run_in_executor(None, self.users.check_password, username, password)
        if user is None:
            self.limiter.failed(*keys)
            self.audit.record(username, "-", "login", "-", "wrong password", request.remote or "?")
            context["message"] = "Wrong user name or password."
            return self.render(request, "login.html", context, status=401)
        self.limiter.succeeded(*keys)
        session = self.sessions.create(user)
        self.audit.record(user.name, user.role.label, "login", "-", "ok", request.remote or "?")
        response = see_other(self.prefix + target)
        self._set_cookie(response, session)
        return response

    async def logout(self, request: web.Request) -> web.StreamResponse:
        """``POST /logout``: end the session."""
        principal: Principal = request[PRINCIPAL]
        if principal.session is not None:
            self.sessions.end(principal.session.id)
        response = see_other(self.prefix + "/login")
        response.del_cookie(COOKIE, path=self.prefix or "/")
        return response

    # -- serving on its own thread ----------------------------------------------------------

    @property
    def port(self) -> int:
        """The port listened on (the real one once started with port 0)."""
        return self._port

    @property
    def url(self) -> str:
        """The base URL of the running interface."""
        scheme = "https" if self.ssl_context else "http"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{host}:{self._port}{self.prefix}"

    def start(self, timeout: float = 30.0) -> None:
        """Listen on ``host:port`` from a background thread; returns once listening."""
        if self._thread is not None:
            raise ConfigurationError("WebInterface: already started")
        self._warn_if_exposed()
        ready = threading.Event()
        failure: list[BaseException] = []
        loop = asyncio.new_event_loop()
        self._loop = loop

        def serve() -> None:
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self._open())
            except BaseException as exc:  # reported to start()
                failure.append(exc)
                ready.set()
                loop.close()
                return
            ready.set()
            try:
                loop.run_forever()
            finally:
                loop.run_until_complete(loop.shutdown_default_executor())
                loop.close()

        self._thread = threading.Thread(target=serve, name="databay_bus-web", daemon=True)
        self._thread.start()
        if not ready.wait(timeout):
            raise ConfigurationError(f"WebInterface: not listening after {timeout} s")
        if failure:
            self._thread.join()
            self._thread = None
            raise ConfigurationError(
                f"WebInterface: cannot listen on {self.host}:{self._port}: {failure[0]}"
            ) from failure[0]
        _LOGGER.info("web interface listening on %s", self.url)

    async def _open(self) -> None:
        self._runner = web.AppRunner(self.app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self._port, ssl_context=self.ssl_context)
        await site.start()
        server = getattr(site, "_server", None)
        sockets = getattr(server, "sockets", None) or []
        if sockets:
            self._port = int(sockets[0].getsockname()[1])

    def stop(self, timeout: float = 10.0) -> None:
        """Stop listening and end the thread (safe to call more than once)."""
        thread, loop, runner = self._thread, self._loop, self._runner
        if thread is None or loop is None:
            return
        if runner is not None:
            future = asyncio.run_coroutine_threadsafe(runner.cleanup(), loop)
            try:
                future.result(timeout)
            except Exception as exc:
                _LOGGER.warning("web interface: stopping the server failed", exc_info=exc)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout)
        self._thread = self._loop = self._runner = None
        self._app = None

    def close(self) -> None:
        """Stop serving, stop observing the planner, close the history it opened."""
        self.stop()
        for observer in self._observers():
            self.planner.remove_observer(observer)
        if self._own_history:
            self.history.close()

    def _warn_if_exposed(self) -> None:
        try:
            loopback = ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            loopback = self.host == "localhost"
        if loopback:
            return
        if self.ssl_context is None or not self.users:
            missing = " and ".join(
                what
                for what, absent in (("TLS", self.ssl_context is None), ("users", not self.users))
                if absent
            )
            _LOGGER.warning(
                "web interface listens on %s without %s: anyone who can reach it %s",
                self.host,
                missing,
                "can operate the pipeline" if not self.users else "can read its traffic",
            )

    def __enter__(self) -> WebInterface:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class _Lifecycle(Observer):
    """Stops the interface reading a planner's queues once it stopped (before
    ``Pipeline.run`` closes them: it flushes the observers first), and resumes on start."""

    def __init__(self, interface: WebInterface) -> None:
        self.interface = interface

    def notify(self, event: Event) -> None:
        if isinstance(event, PlannerStopped):
            self.interface._planner_closed(True)
        elif isinstance(event, PlannerStarted):
            self.interface._planner_closed(False)


def see_other(location: str) -> web.Response:
    """A 303 redirect to ``location`` (a response, so cookies can be set on it)."""
    return web.Response(status=303, headers={"Location": location})


def _ssl_context(tls: ssl.SSLContext | tuple[str, str] | None) -> ssl.SSLContext | None:
    if tls is None or isinstance(tls, ssl.SSLContext):
        return tls
    if isinstance(tls, tuple) and len(tls) == 2:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        try:
            context.load_cert_chain(tls[0], tls[1])
        except (OSError, ssl.SSLError) as exc:
            raise ConfigurationError(
                f"WebInterface: cannot load TLS cert/key {tls}: {exc}"
            ) from None
        return context
    raise ConfigurationError(
        f"WebInterface: tls must be an SSLContext or (certfile, keyfile), got {describe(tls)}"
    )
