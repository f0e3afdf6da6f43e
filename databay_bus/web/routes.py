"""Request handlers: the pages and the JSON API under ``/api/``, one handler per action.

Each handler names the least role it needs (``@needs(Role.X)``); the middleware in
``app.py`` authenticates, enforces that role and the CSRF checks before a handler runs.
Handlers validate their whole input before changing anything, so a bad request changes
nothing; blocking work (queue reads, the planner's metrics) runs on the executor, never on
the interface's event loop.
"""

from __future__ import annotations

import asyncio
import csv
import io
import itertools
import json
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import quote

from aiohttp import web

from databay_bus.errors import (
    ConfigError,
    ConfigurationError,
    CursorError,
    DatabayBusError,
    MissingNodeError,
    PlannerStateError,
    describe,
)
from databay_bus.queue.cursors import encode_cursor
from databay_bus.web.auth import Role

if TYPE_CHECKING:
    from databay_bus.web.app import Principal, WebInterface

from databay_bus.web.control import PipelineClosed

__all__ = ["Handler", "Routes", "json_error", "needs"]

_LOGGER = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_H = TypeVar("_H", bound=Callable[..., Any])
_T = TypeVar("_T")

#: Largest JSON or form body accepted by the API and forms (the pipeline editor excepted).
MAX_BODY = 256 * 1024


def needs(role: Role | None) -> Callable[[_H], _H]:
    """Mark a handler with the least role that may call it (None: no login needed)."""

    def mark(handler: _H) -> _H:
        handler.needs_role = role  # type: ignore[attr-defined]
        return handler

    return mark


def json_error(status: int, message: str, **extra: Any) -> web.HTTPException:
    """An HTTP error whose body is ``{"error": message, ...}``."""
    body = json.dumps({"error": message, **extra})
    if status == 413:
        return web.HTTPRequestEntityTooLarge(
            max_size=MAX_BODY, actual_size=0, text=body, content_type="application/json"
        )
    classes: tuple[type[web.HTTPException], ...] = (
        web.HTTPBadRequest,
        web.HTTPUnauthorized,
        web.HTTPForbidden,
        web.HTTPNotFound,
        web.HTTPConflict,
        web.HTTPTooManyRequests,
        web.HTTPServiceUnavailable,
        web.HTTPUnprocessableEntity,
        web.HTTPNotImplemented,
    )
    cls = next((c for c in classes if c.status_code == status), web.HTTPBadRequest)
    return cls(text=body, content_type="application/json")


class Routes:
    """The handlers of one :class:`WebInterface`."""

    def __init__(self, interface: WebInterface) -> None:
        self.web = interface

    # -- helpers ----------------------------------------------------------------------------

    async def _run(self, func: Callable[..., _T], *args: Any) -> _T:
        """``func(*args)`` on the executor, while the planner's queues are open (else 503)."""
        return await asyncio.get_running_loop().run_in_executor(
            None, self.web.while_open, func, *args
        )

    @staticmethod
    def _principal(request: web.Request) -> Principal:
        from databay_bus.web.app import PRINCIPAL

        principal: Principal = request[PRINCIPAL]
        return principal

    def _audit(self, request: web.Request, action: str, target: str, outcome: str) -> None:
        principal = self._principal(request)
        self.web.audit.record(
            principal.name,
            principal.role.label,
            action,
            target,
            outcome,
            request.remote or "?",
        )

    def _page(
        self, request: web.Request, template: str, context: dict[str, Any], status: int = 200
    ) -> web.Response:
        return self.web.render(request, template, context, status)

    def _back(self, request: web.Request, path: str, message: str) -> web.Response:
        session = self._principal(request).session
        if session is not None:
            session.flash = message
        from databay_bus.web.app import see_other

        return see_other(self.web.prefix + path)

    def _link_or_404(self, request: web.Request, api: bool) -> Any:
        link_id = request.match_info["link"]
        link = self.web.view.find(link_id)
        if link is None:
            message = f"no link {link_id!r}"
            if api:
                raise json_error(404, message)
            raise web.HTTPNotFound(text=message)
        return link

    @staticmethod
    async def _json_body(request: web.Request) -> dict[str, Any]:
        if request.content_length is not None and request.content_length > MAX_BODY:
            raise json_error(413, f"the body is larger than {MAX_BODY} bytes")
        raw = await request.content.read(MAX_BODY + 1)
        if len(raw) > MAX_BODY:
            raise json_error(413, f"the body is larger than {MAX_BODY} bytes")
        if not raw.strip():
            return {}
        try:
            body = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            raise json_error(400, f"the body is not valid JSON: {exc}") from None
        if not isinstance(body, dict):
            raise json_error(400, f"the body must be a JSON object, got {type(body).__name__}")
        return body

    # -- health and metrics -----------------------------------------------------------------

    @needs(None)
    async def healthz(self, request: web.Request) -> web.StreamResponse:
        return web.json_response({"status": "ok"})

    @needs(None)
    async def readyz(self, request: web.Request) -> web.StreamResponse:
        from databay_bus.web.health import readiness_problems

        try:
            problems = await self._run(readiness_problems, self.web.planner)
        except PipelineClosed as exc:
            problems = [str(exc)]
        if problems:
            return web.json_response({"status": "not ready", "problems": problems}, status=503)
        return web.json_response({"status": "ready"})

    @needs(Role.VIEWER)
    async def metrics(self, request: web.Request) -> web.StreamResponse:
        body = await self._run(self.web.metrics.render)
        return web.Response(
            body=body, headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"}
        )

    # -- login ------------------------------------------------------------------------------

    @needs(None)
    async def login_page(self, request: web.Request) -> web.StreamResponse:
        if not self.web.users:
            raise web.HTTPSeeOther(self.web.prefix + "/")
        return self._page(request, "login.html", {"next": request.query.get("next", "")})

    @needs(None)
    async def login(self, request: web.Request) -> web.StreamResponse:
        return await self.web.login(request)

    @needs(Role.VIEWER)
    async def logout(self, request: web.Request) -> web.StreamResponse:
        return await self.web.logout(request)

    @needs(Role.VIEWER)
    async def whoami(self, request: web.Request) -> web.StreamResponse:
        principal = self._principal(request)
        return web.json_response({"user": principal.name, "role": principal.role.label})

    # -- overview and links -----------------------------------------------------------------

    @needs(Role.VIEWER)
    async def overview(self, request: web.Request) -> web.StreamResponse:
        data = await self._run(self.web.view.overview)
        return self._page(request, "overview.html", {"data": data, "refresh": 5})

    @needs(Role.VIEWER)
    async def api_overview(self, request: web.Request) -> web.StreamResponse:
        return web.json_response(await self._run(self.web.view.overview))

    @needs(Role.VIEWER)
    async def link_page(self, request: web.Request) -> web.StreamResponse:
        detail = await self._run(self.web.view.link_detail, request.match_info["link"])
        if detail is None:
            raise web.HTTPNotFound(text=f"no link {request.match_info['link']!r}")
        can_admin = self._principal(request).role >= Role.ADMINISTRATOR
        return self._page(
            request,
            "link.html",
            {"link": detail, "runs": detail["recent"], "can_admin": can_admin},
        )

    @needs(Role.VIEWER)
    async def api_link(self, request: web.Request) -> web.StreamResponse:
        detail = await self._run(self.web.view.link_detail, request.match_info["link"])
        if detail is None:
            raise json_error(404, f"no link {request.match_info['link']!r}")
        return web.json_response(detail)

    @needs(Role.VIEWER)
    async def api_nodes(self, request: web.Request) -> web.StreamResponse:
        return web.json_response({"nodes": await self._run(self.web.view.nodes)})

    @needs(Role.VIEWER)
    async def api_queue(self, request: web.Request) -> web.StreamResponse:
        def stats() -> list[dict[str, Any]]:
            seen: set[int] = set()
            result = []
            for link in self.web.planner.links:
                queue = link.queue
                if queue is not None and id(queue) not in seen:
                    seen.add(id(queue))
                    result.append({"queue": repr(queue), **queue.stats().as_dict()})
            return result

        return web.json_response({"queues": await self._run(stats)})

    async def _operate(self, request: web.Request, api: bool, what: str) -> web.StreamResponse:
        control = self.web.control
        if what.startswith("planner-"):
            target, link = "planner", None
        else:
            link = self._link_or_404(request, api)
            target = request.match_info["link"]
        try:
            if what == "planner-pause":
                await self._run(control.pause_planner)
                changed = True
            elif what == "planner-resume":
                await self._run(control.resume_planner)
                changed = True
            elif what == "transfer":
                assert link is not None
                control.transfer_now(link)
                changed = True
            elif what == "pause":
                changed = await self._run(control.pause, link)
            else:
                changed = await self._run(control.resume, link)
        except PlannerStateError as exc:
            self._audit(request, what, target, f"refused: {exc}")
            if api:
                raise json_error(409, str(exc)) from None
            raise web.HTTPConflict(text=str(exc)) from None
        outcome = "done" if changed else "no change"
        self._audit(request, what, target, outcome)
        if api:
            return web.json_response(
                {"action": what, "target": target, "changed": changed},
                status=202 if what == "transfer" else 200,
            )
        verb = {"transfer": "transfer started"}.get(what, what.replace("planner-", "") + "d")
        back = "/" if link is None else request.headers.get("Referer", "/")
        path = "/" + back.split("/", 3)[3] if back.count("/") >= 3 and "://" in back else "/"
        if self.web.prefix and path.startswith(self.web.prefix):
            path = path[len(self.web.prefix) :] or "/"
        return self._back(request, path, f"{target}: {verb}" + ("" if changed else " (no change)"))

    def operate(self, what: str, api: bool) -> Handler:
        """A handler for ``what`` (pause, resume, transfer, planner-pause, planner-resume)."""

        @needs(Role.OPERATOR)
        async def handler(request: web.Request) -> web.StreamResponse:
            return await self._operate(request, api, what)

        return handler

    # -- inlet cursors (docs/cursors.md) ----------------------------------------------------

    @needs(Role.VIEWER)
    async def api_cursors(self, request: web.Request) -> web.StreamResponse:
        link = self._link_or_404(request, api=True)
        rows = await self._run(self.web.view.cursors, link)
        return web.json_response({"link": request.match_info["link"], "cursors": rows})

    async def _cursor_value(self, request: web.Request, api: bool, owner: str) -> Any:
        """The new cursor a set request carries (validated: 400 naming it when bad)."""

        def bad(message: str) -> web.HTTPException:
            return json_error(400, message) if api else web.HTTPBadRequest(text=message)

        if api:
            body = await self._json_body(request)
            if set(body) != {"value"}:
                raise bad('the body must be {"value": <the new cursor as JSON>}')
            value = body["value"]
        else:
            form = await request.post()
            text = form.get("value")
            if not isinstance(text, str):
                raise bad("the form has no cursor value")
            try:
                value = json.loads(text)
            except ValueError as exc:
                raise bad(
                    f'{owner}: the cursor must be JSON (quote strings: "x"), '
                    f"got {describe(text)}: {exc}"
                ) from None
        try:
            encode_cursor(value, owner)
        except CursorError as exc:
            raise bad(str(exc)) from None
        return value

    async def _cursor_change(
        self, request: web.Request, api: bool, reset: bool
    ) -> web.StreamResponse:
        link = self._link_or_404(request, api)
        link_id, inlet = request.match_info["link"], request.match_info["inlet"]
        target = f"{link_id}/{inlet}"
        if inlet not in [node.name for node in link.inlets]:
            message = f"link {link_id!r} has no inlet named {inlet!r}"
            raise json_error(404, message) if api else web.HTTPNotFound(text=message)
        what = "cursor-reset" if reset else "cursor-set"
        value = None if reset else await self._cursor_value(request, api, f"inlet {target!r}")
        try:
            if reset:
                await self._run(link.reset_cursor, inlet)
            else:
                await self._run(link.set_cursor, inlet, value)
        except MissingNodeError as exc:  # the inlet was removed meanwhile
            raise json_error(404, str(exc)) if api else web.HTTPNotFound(text=str(exc)) from None
        except CursorError as exc:  # the link runs: pause it first
            self._audit(request, what, target, f"refused: {exc}")
            raise json_error(409, str(exc)) if api else web.HTTPConflict(text=str(exc)) from None
        outcome = "reset" if reset else f"set to {json.dumps(value)}"
        self._audit(request, what, target, outcome)
        if api:
            stored = await self._run(link.cursor, inlet)
            cursor = None if stored is None else stored._asdict()
            return web.json_response({"link": link_id, "inlet": inlet, "cursor": cursor})
        return self._back(
            request, f"/links/{quote(link_id, safe='')}", f"{target}: cursor {outcome}"
        )

    def cursor_change(self, reset: bool, api: bool) -> Handler:
        """A handler setting (or resetting) an inlet's cursor; administrators only."""

        @needs(Role.ADMINISTRATOR)
        async def handler(request: web.Request) -> web.StreamResponse:
            return await self._cursor_change(request, api, reset)

        return handler

    # -- dead letters -----------------------------------------------------------------------

    def _filters(self, source: Any) -> dict[str, str | None]:
        return {
            key: (str(source.get(key)).strip() or None) if source.get(key) is not None else None
            for key in ("link", "outlet", "q")
        }

    async def _letters(self, filters: dict[str, str | None], limit: int) -> list[dict[str, Any]]:
        return await self._run(
            self.web.view.dead_letters, filters["link"], filters["outlet"], filters["q"], limit
        )

    @needs(Role.VIEWER)
    async def dead_page(self, request: web.Request) -> web.StreamResponse:
        filters = self._filters(request.query)
        letters = await self._letters(filters, 501)
        return self._page(
            request,
            "dead.html",
            {
                "letters": letters[:500],
                "truncated": len(letters) > 500,
                "filters": filters,
                "link_ids": [i for i, _ in self.web.view.link_ids()],
            },
        )

    @needs(Role.VIEWER)
    async def api_dead(self, request: web.Request) -> web.StreamResponse:
        filters = self._filters(request.query)
        try:
            limit = int(request.query.get("limit", "500"))
        except ValueError:
            raise json_error(
                400, f"limit must be a number, got {request.query['limit']!r}"
            ) from None
        if not 1 <= limit <= 100_000:
            raise json_error(400, f"limit must be 1..100000, got {limit}")
        letters = await self._letters(filters, limit)
        return web.json_response({"dead_letters": letters}, dumps=_dumps)

    async def _select(
        self, filters: dict[str, str | None], ids: list[str] | None
    ) -> tuple[list[dict[str, Any]], list[str]]:
        """The dead letters chosen (all matching the filters, or those ``ids``), and the
        ids asked for that are not dead letters (any: nothing is to change)."""
        letters = await self._letters(filters, 10**9)
        if ids is None:
            return letters, []
        by_id = {row["id"]: row for row in letters}
        unknown = [i for i in ids if i not in by_id]
        return [by_id[i] for i in dict.fromkeys(ids) if i in by_id], unknown

    @needs(Role.OPERATOR)
    async def dead_confirm(self, request: web.Request) -> web.StreamResponse:
        form = await request.post()
        action = str(form.get("action", ""))
        verb, _, scope = action.partition("-")
        if verb not in ("replay", "drop") or scope not in ("selected", "all"):
            raise web.HTTPBadRequest(text=f"unknown action {action!r}")
        filters = self._filters(form)
        ids = [str(v) for v in form.getall("id", [])] if scope == "selected" else None
        if ids == []:
            return self._back(request, "/dead", "Select dead letters first.")
        letters, unknown = await self._select(filters, ids)
        if unknown:
            raise web.HTTPNotFound(text=f"not dead letters (any more): {', '.join(unknown)}")
        if not letters:
            return self._back(request, "/dead", "No dead letters match.")
        return self._page(request, "confirm.html", {"verb": verb, "letters": letters})

    @needs(Role.OPERATOR)
    async def dead_apply(self, request: web.Request) -> web.StreamResponse:
        form = await request.post()
        verb = str(form.get("action", ""))
        if verb not in ("replay", "drop"):
            raise web.HTTPBadRequest(text=f"unknown action {verb!r}")
        ids = [str(v) for v in form.getall("id", [])]
        if not ids:
            raise web.HTTPBadRequest(text="no dead letters given")
        letters, unknown = await self._select(self._filters({}), ids)
        if unknown:
            raise web.HTTPNotFound(text=f"not dead letters (any more): {', '.join(unknown)}")
        done = await self._run(self.web.view.settle_dead, verb, letters)
        self._audit(request, f"dead-{verb}", f"{len(ids)} dead letters", f"{done} changed")
        return self._back(request, "/dead", f"{verb.capitalize()}ed {done} dead letters.")

    def api_settle(self, verb: str) -> Handler:
        """``POST /api/dead/replay|drop`` with ``{"ids": [...]}`` or ``{"all": true, ...}``."""

        @needs(Role.OPERATOR)
        async def handler(request: web.Request) -> web.StreamResponse:
            body = await self._json_body(request)
            unknown_keys = set(body) - {"ids", "all", "link", "outlet", "q"}
            if unknown_keys:
                raise json_error(400, f"unknown keys {sorted(unknown_keys)}")
            ids = body.get("ids")
            every = body.get("all", False)
            if every is not True and every is not False:
                raise json_error(400, f"all must be true or false, got {every!r}")
            if (ids is None) == (not every):
                raise json_error(400, 'give either "ids": [...] or "all": true')
            if ids is not None and (
                not isinstance(ids, list) or not ids or not all(isinstance(i, str) for i in ids)
            ):
                raise json_error(400, "ids must be a non-empty list of record ids")
            for key in ("link", "outlet", "q"):
                if body.get(key) is not None and not isinstance(body[key], str):
                    raise json_error(400, f"{key} must be a string")
            letters, unknown = await self._select(self._filters(body), ids)
            if unknown:
                raise json_error(404, "not dead letters", ids=unknown)
            done = await self._run(self.web.view.settle_dead, verb, letters)
            target = "all matching" if every else f"{len(letters)} ids"
            self._audit(request, f"dead-{verb}", target, f"{done} changed")
            return web.json_response({"action": verb, "changed": done})

        return handler

    # -- export -----------------------------------------------------------------------------

    @needs(Role.VIEWER)
    async def export_page(self, request: web.Request) -> web.StreamResponse:
        return self._page(
            request, "export.html", {"link_ids": [i for i, _ in self.web.view.link_ids()]}
        )

    @needs(Role.VIEWER)
    async def export(self, request: web.Request) -> web.StreamResponse:
        what = request.query.get("what", "dead")
        fmt = request.query.get("format", "csv")
        link = request.query.get("link") or None
        if what not in ("dead", "pending", "delivered"):
            raise json_error(400, f"what must be 'dead', 'pending' or 'delivered', got {what!r}")
        if fmt not in ("csv", "jsonl"):
            raise json_error(400, f"format must be 'csv' or 'jsonl', got {fmt!r}")
        if link is not None and self.web.view.find(link) is None:
            raise json_error(404, f"no link {link!r}")
        rows = self.web.view.export_rows(what, link)
        try:  # the first rows before any byte is sent: a failure is still a clean error
            chunk = await self._run(lambda: list(itertools.islice(rows, 500)))
        except DatabayBusError as exc:
            raise json_error(501, f"cannot export {what} entries: {exc}") from None
        response = web.StreamResponse(
            headers={
                "Content-Type": "text/csv; charset=utf-8"
                if fmt == "csv"
                else "application/x-ndjson; charset=utf-8",
                "Content-Disposition": f'attachment; filename="{what}.{fmt}"',
            }
        )
        await response.prepare(request)
        if fmt == "csv":
            await response.write(_csv_line(_COLUMNS))
        count = 0
        while chunk:
            count += len(chunk)
            if fmt == "csv":
                data = b"".join(_csv_line([_cell(row.get(c)) for c in _COLUMNS]) for row in chunk)
            else:
                data = b"".join((_dumps(row) + "\n").encode() for row in chunk)
            await response.write(data)
            chunk = await self._run(lambda: list(itertools.islice(rows, 500)))
        await response.write_eof()
        _LOGGER.info("exported %d %s rows as %s", count, what, fmt)
        return response

    # -- history ----------------------------------------------------------------------------

    def _history_args(self, request: web.Request, api: bool) -> tuple[str | None, int]:
        link = request.query.get("link") or None
        try:
            limit = int(request.query.get("limit", "200"))
        except ValueError:
            raise json_error(
                400, f"limit must be a number, got {request.query['limit']!r}"
            ) from None
        if not 1 <= limit <= 10_000:
            raise json_error(400, f"limit must be 1..10000, got {limit}")
        return link, limit

    @needs(Role.VIEWER)
    async def history_page(self, request: web.Request) -> web.StreamResponse:
        link, limit = self._history_args(request, api=False)
        runs = await self._run(self.web.view.history_page, link, limit)
        span = self.web.history.life_span
        return self._page(
            request,
            "history.html",
            {
                "runs": runs,
                "link": link,
                "link_ids": [i for i, _ in self.web.view.link_ids()],
                "life_span": "ever" if span is None else f"{span / 3600:g} hours",
            },
        )

    @needs(Role.VIEWER)
    async def api_history(self, request: web.Request) -> web.StreamResponse:
        link, limit = self._history_args(request, api=True)
        runs = await self._run(self.web.view.history_page, link, limit)
        return web.json_response({"runs": runs})

    # -- pipeline file ----------------------------------------------------------------------

    def _pipeline_context(self, request: web.Request) -> dict[str, Any]:
        file = self.web.pipeline_file
        principal = self._principal(request)
        return {
            "path": None if file is None else str(file.path),
            "can_edit": file is not None and principal.role >= Role.ADMINISTRATOR,
            "can_reload": file is not None and file.reload is not None,
            "problems": [],
        }

    @needs(Role.VIEWER)
    async def pipeline_page(self, request: web.Request) -> web.StreamResponse:
        context = self._pipeline_context(request)
        file = self.web.pipeline_file
        context["text"] = "" if file is None else await self._run(file.read)
        return self._page(request, "pipeline.html", context)

    @needs(Role.VIEWER)
    async def api_pipeline(self, request: web.Request) -> web.StreamResponse:
        file = self.web.pipeline_file
        if file is None:
            raise json_error(404, "this interface has no pipeline file")
        text = await self._run(file.read)
        return web.json_response({"path": str(file.path), "text": text})

    async def _save_pipeline(self, request: web.Request, text: str) -> tuple[bool, list[str]]:
        """Save ``text``: (reloaded, problems); problems non-empty means nothing changed."""
        file = self.web.pipeline_file
        assert file is not None
        try:
            reloaded = await self._run(file.save, text)
        except ConfigError as exc:
            problems = [f"{path}: {msg}" if path else msg for path, msg in exc.problems]
            self._audit(request, "pipeline-save", str(file.path), "rejected")
            return False, problems or [str(exc)]
        except ConfigurationError as exc:
            self._audit(request, "pipeline-save", str(file.path), "rejected")
            return False, [str(exc)]
        self._audit(request, "pipeline-save", str(file.path), "reloaded" if reloaded else "saved")
        return reloaded, []

    @needs(Role.ADMINISTRATOR)
    async def pipeline_save(self, request: web.Request) -> web.StreamResponse:
        if self.web.pipeline_file is None:
            raise web.HTTPNotFound(text="this interface has no pipeline file")
        form = await request.post()
        text = form.get("text")
        if not isinstance(text, str):
            raise web.HTTPBadRequest(text="the form has no pipeline text")
        text = text.replace("\r\n", "\n")
        reloaded, problems = await self._save_pipeline(request, text)
        if problems:
            context = self._pipeline_context(request)
            context.update(text=text, problems=problems)
            return self._page(request, "pipeline.html", context, status=422)
        message = "Saved and reloaded." if reloaded else "Saved; a restart applies it."
        return self._back(request, "/pipeline", message)

    @needs(Role.ADMINISTRATOR)
    async def api_pipeline_save(self, request: web.Request) -> web.StreamResponse:
        if self.web.pipeline_file is None:
            raise json_error(404, "this interface has no pipeline file")
        body = await self._json_body(request)
        text = body.get("text")
        if not isinstance(text, str):
            raise json_error(400, 'the body must be {"text": "<the new pipeline file>"}')
        reloaded, problems = await self._save_pipeline(request, text)
        if problems:
            raise json_error(422, "the pipeline file does not validate", problems=problems)
        return web.json_response({"saved": True, "reloaded": reloaded})

    # -- audit ------------------------------------------------------------------------------

    @needs(Role.ADMINISTRATOR)
    async def audit_page(self, request: web.Request) -> web.StreamResponse:
        import time

        entries = []
        for entry in self.web.audit.recent():
            row = entry.as_dict()
            row["when"] = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(entry.at))
            entries.append(row)
        users = self.web.users.listing()
        return self._page(request, "audit.html", {"entries": entries, "users": users})

    @needs(Role.ADMINISTRATOR)
    async def api_users(self, request: web.Request) -> web.StreamResponse:
        return web.json_response({"users": self.web.users.listing()})

    @needs(Role.ADMINISTRATOR)
    async def api_audit(self, request: web.Request) -> web.StreamResponse:
        return web.json_response({"audit": [e.as_dict() for e in self.web.audit.recent()]})

    # -- table ------------------------------------------------------------------------------

    def add_to(self, app: web.Application) -> None:
        """Register every route on ``app``."""
        r = app.router
        r.add_get("/healthz", self.healthz)
        r.add_get("/readyz", self.readyz)
        r.add_get("/metrics", self.metrics)
        r.add_get("/login", self.login_page)
        r.add_post("/login", self.login)
        r.add_post("/logout", self.logout)
        r.add_get("/", self.overview)
        r.add_get("/links/{link}", self.link_page)
        for what in ("pause", "resume", "transfer"):
            r.add_post(f"/links/{{link}}/{what}", self.operate(what, api=False))
            r.add_post(f"/api/links/{{link}}/{what}", self.operate(what, api=True))
        for what in ("pause", "resume"):
            r.add_post(f"/planner/{what}", self.operate(f"planner-{what}", api=False))
            r.add_post(f"/api/planner/{what}", self.operate(f"planner-{what}", api=True))
        for verb, reset in (("set", False), ("reset", True)):
            r.add_post(
                f"/links/{{link}}/cursors/{{inlet}}/{verb}", self.cursor_change(reset, False)
            )
        r.add_get("/api/links/{link}/cursors", self.api_cursors)
        r.add_put("/api/links/{link}/cursors/{inlet}", self.cursor_change(False, True))
        r.add_delete("/api/links/{link}/cursors/{inlet}", self.cursor_change(True, True))
        r.add_get("/dead", self.dead_page)
        r.add_post("/dead/confirm", self.dead_confirm)
        r.add_post("/dead/apply", self.dead_apply)
        r.add_get("/export", self.export_page)
        r.add_get("/export/download", self.export)
        r.add_get("/history", self.history_page)
        r.add_get("/pipeline", self.pipeline_page)
        r.add_post("/pipeline", self.pipeline_save)
        r.add_get("/audit", self.audit_page)
        r.add_get("/api/whoami", self.whoami)
        r.add_get("/api/overview", self.api_overview)
        r.add_get("/api/links", self.api_overview)
        r.add_get("/api/links/{link}", self.api_link)
        r.add_get("/api/queue", self.api_queue)
        r.add_get("/api/nodes", self.api_nodes)
        r.add_get("/api/dead", self.api_dead)
        r.add_post("/api/dead/replay", self.api_settle("replay"))
        r.add_post("/api/dead/drop", self.api_settle("drop"))
        r.add_get("/api/export", self.export)
        r.add_get("/api/history", self.api_history)
        r.add_get("/api/pipeline", self.api_pipeline)
        r.add_put("/api/pipeline", self.api_pipeline_save)
        r.add_get("/api/audit", self.api_audit)
        r.add_get("/api/users", self.api_users)


_COLUMNS = [
    "id",
    "link",
    "outlet",
    "attempts",
    "last_error",
    "failed_at",
    "delivered_at",
    "payload",
    "metadata",
]


def _dumps(value: Any) -> str:
    return json.dumps(value, default=str)


def _cell(value: Any) -> str:
    if isinstance(value, (dict, list)):
        return _dumps(value)
    return "" if value is None else str(value)


def _csv_line(cells: list[str]) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer).writerow(cells)
    return buffer.getvalue().encode()
