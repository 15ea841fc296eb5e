"""The dashboards API: ``PUT/GET/DELETE /api/dashboards/{name}`` and ``GET /api/dashboards``,
with a CloudWatch dashboard body as the format (``PUT`` takes the body itself, or a
``PutDashboard`` request ``{"DashboardName", "DashboardBody": "<json>"}``, and answers its
``DashboardValidationMessages``), and ``GET /api/dashboards/{name}/view`` — the computed
widgets (`WidgetView` as JSON) over ``startTime``/``endTime`` or ``since``, log widgets run on
the query pool like ``POST /api/query``.

Dashboards belong to a workspace: every call is in the caller's (`principal_of`), so another
workspace's dashboard answers 404 like an unknown one, and a view reads only that
workspace's metrics, records and alarms (log widgets that read bodies need the ``bodies``
permission). Reads need ``read``; PUT and DELETE ``manage``."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from datetime import UTC, datetime
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from llmtrail.analytics.insights import QueryResult
from llmtrail.dashboards.store import DashboardStore
from llmtrail.dashboards.view import DashboardContext, view_dashboard
from llmtrail.errors import LlmtrailError, ValidationError
from llmtrail.record import DEFAULT_WORKSPACE
from llmtrail.security.principal import Permission, principal_of
from llmtrail.server.access import guarded_route
from llmtrail.server.api import json_response
from llmtrail.server.problems import from_error, problem
from llmtrail.server.query_api import QueryAPI, time_range
from llmtrail.server.runtime import Runtime

MAX_BODY = 1_000_000


class DashboardsAPI:
    def __init__(self, runtime: Runtime, queries: QueryAPI) -> None:
        self.runtime = runtime
        self.queries = queries
        existing = getattr(runtime, "dashboards", None)
        self.store: DashboardStore = existing or DashboardStore(runtime.state)

    def routes(self) -> list[Route]:
        read, manage, one = Permission.READ, Permission.MANAGE, "/api/dashboards/{name}"
        return [
            guarded_route("/api/dashboards", self.list, read, methods=["GET"]),
            guarded_route(one + "/view", self.view, read, methods=["GET"]),
            guarded_route(one, self.get, read, methods=["GET"]),
            guarded_route(one, self.put, manage, methods=["PUT"]),
            guarded_route(one, self.delete, manage, methods=["DELETE"]),
        ]

    async def list(self, request: Request) -> Response:
        entries = await asyncio.to_thread(self.store.list, workspace=_workspace(request))
        return json_response({"DashboardEntries": entries})

    async def get(self, request: Request) -> Response:
        try:
            body = await asyncio.to_thread(
                self.store.get, request.path_params["name"], workspace=_workspace(request)
            )
        except LlmtrailError as exc:
            return from_error(exc)
        return json_response(body)

    async def put(self, request: Request) -> Response:
        name = request.path_params["name"]
        try:
            raw = await request.body()
            if len(raw) > MAX_BODY:
                raise ValidationError(
                    "DashboardBody", f"is larger than the limit of {MAX_BODY} bytes"
                )
            try:
                parsed = orjson.loads(raw or b"null")
            except orjson.JSONDecodeError as exc:
                raise ValidationError("DashboardBody", f"is not valid JSON: {exc}") from None
            body = parsed
            if isinstance(parsed, dict) and "DashboardBody" in parsed and "widgets" not in parsed:
                body = parsed["DashboardBody"]  # a PutDashboard request
                if not isinstance(body, str | dict):
                    raise ValidationError("DashboardBody", "must be a string of JSON or an object")
            ws = _workspace(request)
            warnings = await asyncio.to_thread(self.store.put, name, body, workspace=ws)
        except ValidationError as exc:
            messages = getattr(exc, "messages", [{"DataPath": exc.field, "Message": exc.message}])
            return problem(
                exc.status,
                "Invalid request",
                exc.message,
                field=exc.field,
                DashboardValidationMessages=messages,
            )
        except LlmtrailError as exc:
            return from_error(exc)
        return json_response({"DashboardName": name, "DashboardValidationMessages": warnings})

    async def delete(self, request: Request) -> Response:
        name = request.path_params["name"]
        try:
            await asyncio.to_thread(self.store.delete, name, workspace=_workspace(request))
        except LlmtrailError as exc:
            return from_error(exc)
        return json_response({"deleted": name})

    async def view(self, request: Request) -> Response:
        """The widgets computed; ``startTime``/``endTime``/``since`` as ``POST /api/query``
        takes them, the body's own range when none is given."""
        params = dict(request.query_params)
        principal = principal_of(request.scope)
        try:
            body = await asyncio.to_thread(
                self.store.get, request.path_params["name"], workspace=principal.workspace
            )
            explicit = any(k in params for k in ("startTime", "endTime", "since"))
            start, end = time_range(_numeric(params))
            context = dashboard_context(
                self.runtime,
                self.queries,
                asyncio.get_running_loop(),
                start,
                end,
                explicit,
                workspace=principal.workspace,
                bodies_allowed=principal.can(Permission.BODIES),
                reader=(request, "dashboards"),
            )
            views = await asyncio.to_thread(view_dashboard, body, context)
        except LlmtrailError as exc:
            return from_error(exc)
        return json_response({"widgets": [dataclasses.asdict(v) for v in views]})


def dashboard_context(
    runtime: Runtime,
    queries: QueryAPI,
    loop: asyncio.AbstractEventLoop,
    start: datetime,
    end: datetime,
    explicit_range: bool = True,
    *,
    workspace: str = DEFAULT_WORKSPACE,
    bodies_allowed: bool = True,
    reader: tuple[Request, str] | None = None,
) -> DashboardContext:
    """A `DashboardContext` over the server's services in ``workspace``, for
    `view_dashboard` called on a thread other than ``loop``'s: log widgets run on the query
    pool, as ``POST /api/query``, over ``workspace`` (refused when they read a body and
    ``bodies_allowed`` is false)."""

    def run_query(text: str, start: datetime, end: datetime) -> QueryResult:
        asked = queries.pooled(
            text,
            start,
            end,
            query_id=f"dashboard-{uuid.uuid4()}",
            workspace=workspace,
            bodies_allowed=bodies_allowed,
            reader=reader,
        )
        future = asyncio.run_coroutine_threadsafe(asked, loop)
        return future.result()

    return DashboardContext(
        metrics=getattr(runtime, "metrics", None),
        run_query=run_query,
        start=start,
        end=end,
        workspace=workspace,
        alarms=getattr(runtime, "alarms", None),
        now=datetime.now(UTC),
        explicit_range=explicit_range,
    )


def _workspace(request: Request) -> str:
    """The only workspace this request may read or change."""
    return principal_of(request.scope).workspace


def _numeric(params: dict[str, Any]) -> dict[str, Any]:
    """Query parameters as `time_range` takes them: epoch seconds as numbers."""
    out: dict[str, Any] = dict(params)
    for key in ("startTime", "endTime"):
        value = out.get(key)
        if isinstance(value, str) and value.isascii() and value.isdigit():
            out[key] = int(value)
    return out
