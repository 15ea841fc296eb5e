"""The web UI's routes: each page is an async function from a `PageContext` to a `View`,
run by one wrapper that reads the time range, turns an `LlmtrailError` into a page that says
what was wrong (400 for bad input, 404, 503 — never a traceback) and renders the template.

Every route declares its permission (`guarded_route`): the pages need ``read``, the static
files none (the login page uses them), saving a query ``manage``. Each page reads the
caller's workspace only (`PageContext.of`); another workspace's record, trace, alarm or
dashboard is "not found", like an unknown one."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from urllib.parse import parse_qs, urlencode, urlparse

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from llmtrail.errors import LlmtrailError, ValidationError
from llmtrail.security.principal import Permission
from llmtrail.server.access import guarded_route
from llmtrail.server.query_api import QueryAPI
from llmtrail.server.runtime import Runtime
from llmtrail.web import admin, assets, logs, overview, traces, usage
from llmtrail.web.page_context import PageContext, View
from llmtrail.web.rendering import page
from llmtrail.web.time_range import default_range, time_range

log = logging.getLogger("llmtrail.web")
Builder = Callable[[PageContext], Awaitable[View]]
MAX_FORM_BYTES = 64 * 1024


class WebUI:
    """The pages over one runtime and the query API's query path."""

    def __init__(self, runtime: Runtime, queries: QueryAPI) -> None:
        self.runtime = runtime
        self.queries = queries

    def routes(self) -> list[Route]:
        pages: list[tuple[str, Builder]] = [
            ("/", overview.overview),
            ("/logs", logs.logs),
            ("/logs/{request_id:path}", logs.record),
            ("/traces", traces.traces),
            ("/traces/{trace_id}", traces.trace),
            ("/sessions", traces.sessions),
            ("/applications", usage.applications),
            ("/errors", usage.errors),
            ("/cost", usage.cost),
            ("/profiles", usage.profiles),
            ("/alarms", admin.alarms),
            ("/alarms/{name:path}", admin.alarm),
            ("/dashboards", admin.dashboards),
            ("/dashboards/{name:path}", admin.dashboard),
            ("/settings", admin.settings),
        ]
        public, read = Permission.PUBLIC, Permission.READ
        return [
            guarded_route("/static/{path:path}", assets.static_file, public, methods=["GET"]),
            guarded_route("/logs", self.save_query, Permission.MANAGE, methods=["POST"]),
            *(
                guarded_route(path, self._page(build), read, methods=["GET"])
                for path, build in pages
            ),
        ]

    def _page(self, build: Builder) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            return await self.render(request, build)

        endpoint.__name__ = build.__name__
        return endpoint

    async def render(self, request: Request, build: Builder) -> Response:
        try:
            tr = time_range(request.query_params)
        except ValidationError as exc:
            return page(request, "error.j2", {"error": exc}, time_range=default_range(), status=400)
        ctx = PageContext.of(request, self.runtime, self.queries, tr)
        try:
            view = await build(ctx)
            return page(
                request,
                view.template,
                view.context,
                time_range=tr,
                keep=view.keep,
                status=view.status,
            )
        except LlmtrailError as exc:
            status = int(getattr(exc, "status", 500))
            return page(request, "error.j2", {"error": exc}, time_range=tr, status=status)
        except Exception as exc:  # a bug: logged with its traceback, shown as a message
            log.exception("page %s failed", request.url.path)
            error = f"this page failed ({type(exc).__name__}); the server log has the details"
            return page(request, "error.j2", {"error": error}, time_range=tr, status=500)

    async def save_query(self, request: Request) -> Response:
        """The editor's "save as": store the query under its name, then show it."""
        origin = request.headers.get("origin")
        if origin and urlparse(origin).netloc != request.headers.get("host"):
            error = ValidationError("origin", "a form of another site cannot save queries here")
            context = {"error": error}
            return page(request, "error.j2", context, time_range=default_range(), status=403)
        raw = await request.body()
        if len(raw) > MAX_FORM_BYTES:
            error = ValidationError("body", f"is larger than the limit of {MAX_FORM_BYTES} bytes")
            context = {"error": error}
            return page(request, "error.j2", context, time_range=default_range(), status=413)
        form = {k: v[0] for k, v in parse_qs(raw.decode(errors="replace")).items()}
        name, text = form.get("name", ""), form.get("q", "")
        params = {k: form[k] for k in ("range", "start", "end") if form.get(k)}

        try:
            tr = time_range(params)
            if not text.strip():
                raise ValidationError("q", "is required (a Logs Insights query)")
            saved = PageContext.of(request, self.runtime, self.queries, tr).queries.saved
            await asyncio.to_thread(saved.put, name, text, None)
        except LlmtrailError as exc:
            return page(request, "error.j2", {"error": exc}, time_range=default_range(), status=400)
        return RedirectResponse("/logs?" + urlencode({**tr.params(), "saved": name}), 303)
