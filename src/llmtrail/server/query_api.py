"""The query API: ``POST /api/query`` runs a Logs Insights query and answers like
``GetQueryResults``; ``DELETE /api/query/{queryId}`` cancels a running one; saved queries at
``/api/saved-queries``; ``GET /api/records?filterPattern=…`` lists records matching a
CloudWatch JSON filter pattern.

A query runs over its caller's workspace only (the compiler filters it in the innermost
``SELECT``; nothing in the query text can name another); a query id, a saved query and a
cancel belong to the workspace that made them, so another workspace's are 404. A key without
the ``bodies`` permission gets 403 for a query or filter pattern that reads a body; a query
that reads bodies with it is audited (one entry per request)."""

from __future__ import annotations

import asyncio
import functools
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from llmtrail.analytics.insights import (
    DEFAULT_LIMIT,
    MAX_LIMIT,
    QueryResult,
    QueryRunner,
    SavedQueries,
)
from llmtrail.errors import LlmtrailError, NotFound, ValidationError
from llmtrail.query import filter_pattern_query, parse_query
from llmtrail.query.body_access import reads_bodies
from llmtrail.record import DEFAULT_WORKSPACE, InvocationRecord
from llmtrail.security.principal import Permission, principal_of
from llmtrail.server.access import guarded_route
from llmtrail.server.api import json_response
from llmtrail.server.audit_hooks import audit_body_read
from llmtrail.server.params import json_object
from llmtrail.server.problems import from_error, problem
from llmtrail.server.query_pool import QueryLimitExceeded, QueryPool, QueryWithdrawn
from llmtrail.server.runtime import Runtime
from llmtrail.store.query_bounds import QueryFailed
from llmtrail.store.rows import from_row
from llmtrail.timerange import parse_range

MAX_DESCRIPTION = 4096


class QueryAPI:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.runners: dict[str, QueryRunner] = {}
        self.runner = self.runner_for(DEFAULT_WORKSPACE)
        self.saved = SavedQueries(runtime.state)  # the default workspace's
        limits = runtime.settings.query
        self.pool = QueryPool(limits.concurrency, limits.queued)

    def runner_for(self, workspace: str) -> QueryRunner:
        """The runner of ``workspace``'s queries: it compiles them over that workspace and
        knows only that workspace's running query ids."""
        runner = self.runners.get(workspace)
        if runner is None:
            engine, schema = self.runtime.query_engine, self.runtime.query_engine.schema
            groups = functools.partial(self.runtime.log_groups, workspace)
            runner = self.runners.setdefault(
                workspace, QueryRunner(engine, schema, workspace, groups)
            )
        return runner

    def saved_for(self, workspace: str) -> SavedQueries:
        """``workspace``'s saved queries."""
        return SavedQueries(self.runtime.state, workspace)

    def routes(self) -> list[Route]:
        read, manage = Permission.READ, Permission.MANAGE
        saved = "/api/saved-queries/{name:path}"
        return [
            guarded_route("/api/query", self.query, read, ["POST"]),
            guarded_route("/api/query/{query_id}", self.status, read, ["GET"]),
            guarded_route("/api/query/{query_id}", self.cancel, read, ["DELETE"]),
            guarded_route("/api/saved-queries", self.list_saved, read, ["GET"]),
            guarded_route(saved, self.get_saved, read, ["GET"]),
            guarded_route(saved, self.put_saved, manage, ["PUT"]),
            guarded_route(saved, self.delete_saved, manage, ["DELETE"]),
        ]

    async def query(self, request: Request) -> Response:
        principal = principal_of(request.scope)
        bodies = principal.can(Permission.BODIES)
        try:
            body = await json_object(request, 1_000_000)
            text = _optional_str(body, "queryString")
            name = _optional_str(body, "name")
            next_token = _optional_str(body, "nextToken")
            query_id = _query_id(body.get("queryId")) or str(uuid.uuid4())
            start, end = time_range(body)
            limit = body.get("limit", 1000)
            if isinstance(limit, bool) or not isinstance(limit, int):
                raise ValidationError("limit", f"must be an integer from 1 to {MAX_LIMIT}")
            if text is None and name is not None:
                saved = self.saved_for(principal.workspace)
                text = (await asyncio.to_thread(saved.get, name))["queryString"]
            if text is None:
                raise ValidationError("queryString", "is required (a Logs Insights query)")
            result = await self.pooled(
                text,
                start,
                end,
                limit=limit,
                next_token=next_token,
                query_id=query_id,
                workspace=principal.workspace,
                bodies_allowed=bodies,
                reader=(request, "query"),
            )
        except QueryLimitExceeded as exc:
            answer = problem(429, "LimitExceededException", str(exc), field="queryString")
            answer.headers["retry-after"] = "1"
            return answer
        except LlmtrailError as exc:
            return from_error(exc)
        return json_response(result.to_dict())

    async def pooled(
        self,
        text: str,
        start: datetime,
        end: datetime,
        *,
        query_id: str,
        limit: int = DEFAULT_LIMIT,
        next_token: str | None = None,
        workspace: str = DEFAULT_WORKSPACE,
        bodies_allowed: bool = True,
        reader: tuple[Request, str] | None = None,
    ) -> QueryResult:
        """The query over ``workspace`` on the query pool (`QueryLimitExceeded` when it is
        full): what the API, the web pages and dashboards' log widgets run; stopped in the
        engine when the caller goes away. Callers pass their principal's workspace and
        whether it may read bodies (`Forbidden` for a query that reads one otherwise), and
        ``reader`` — the request and its surface — so that a query that showed bodies is in
        the audit log, one entry for the request, whichever surface ran it."""
        result = await self._pooled(
            text, start, end, query_id, limit, next_token, workspace, bodies_allowed
        )
        shown = bodies_allowed and result.status == "Complete" and reads_bodies(parse_query(text))
        if reader is not None and shown:
            await audit_body_read(self.runtime, reader[0], reader[1], _request_ids(result))
        return result

    async def _pooled(
        self,
        text: str,
        start: datetime,
        end: datetime,
        query_id: str,
        limit: int,
        next_token: str | None,
        workspace: str,
        bodies_allowed: bool,
    ) -> QueryResult:
        runner = self.runner_for(workspace)
        runner.schedule(query_id)
        try:
            return await self.pool.run(
                _pool_key(workspace, query_id),
                runner.run,
                text,
                start,
                end,
                limit=limit,
                next_token=next_token,
                query_id=query_id,
                bodies_allowed=bodies_allowed,
                when_done=functools.partial(runner.forget, query_id),
            )
        except QueryWithdrawn:  # cancelled while it waited for a thread
            return QueryResult(query_id, "Cancelled", [], [], [])
        except asyncio.CancelledError:
            if runner.status(query_id) is not None:
                self.pool.cancel_soon(runner.cancel, query_id)
            raise

    async def status(self, request: Request) -> Response:
        """``Scheduled`` or ``Running`` while query ``{queryId}`` is here (404 after)."""
        query_id = request.path_params["query_id"]
        state = self.runner_for(principal_of(request.scope).workspace).status(query_id)
        if state is None:
            return from_error(NotFound(f"no query {query_id!r} is running"))
        return json_response({"queryId": query_id, "status": state})

    async def cancel(self, request: Request) -> Response:
        """Stop query ``{queryId}``, on a cancel thread: never behind running queries."""
        query_id = request.path_params["query_id"]
        cancelled = await self.stop(principal_of(request.scope).workspace, query_id)
        return json_response({"queryId": query_id, "cancelled": cancelled})

    async def stop(self, workspace: str, query_id: str) -> bool:
        """Withdraw query ``query_id`` of ``workspace`` if it still waits, else cancel it in
        the engine; whether it was stopped."""
        if self.pool.withdraw(_pool_key(workspace, query_id)):  # still waiting: never starts
            return True
        return bool(await self.pool.cancel(self.runner_for(workspace).cancel, query_id))

    def _saved(self, request: Request) -> SavedQueries:
        return self.saved_for(principal_of(request.scope).workspace)

    async def list_saved(self, request: Request) -> Response:
        return json_response({"queries": await asyncio.to_thread(self._saved(request).list)})

    async def get_saved(self, request: Request) -> Response:
        try:
            value = await asyncio.to_thread(self._saved(request).get, request.path_params["name"])
        except LlmtrailError as exc:
            return from_error(exc)
        return json_response(value)

    async def put_saved(self, request: Request) -> Response:
        try:
            body = await json_object(request, 1_000_000)
            query = _optional_str(body, "queryString")
            if query is None:
                raise ValidationError("queryString", "is required (a Logs Insights query)")
            description = _optional_str(body, "description")
            if description is not None and len(description) > MAX_DESCRIPTION:
                raise ValidationError(
                    "description", f"is longer than the limit of {MAX_DESCRIPTION} characters"
                )
            value = await asyncio.to_thread(
                self._saved(request).put, request.path_params["name"], query, description
            )
        except LlmtrailError as exc:
            return from_error(exc)
        return json_response(value)

    async def delete_saved(self, request: Request) -> Response:
        try:
            await asyncio.to_thread(self._saved(request).delete, request.path_params["name"])
        except LlmtrailError as exc:
            return from_error(exc)
        return json_response({"deleted": request.path_params["name"]})

    def filtered(
        self,
        pattern: str,
        start: datetime,
        end: datetime,
        limit: int,
        offset: int,
        *,
        workspace: str = DEFAULT_WORKSPACE,
        bodies_allowed: bool = True,
        with_bodies: bool = True,
    ) -> list[InvocationRecord]:
        """Records of ``workspace`` matching a filter pattern, newest first (the ``logs
        --filter-pattern`` path of ``GET /api/records``); `Forbidden` for a body selector
        when ``bodies_allowed`` is false, and bodies only ``with_bodies``."""
        schema = self.runtime.query_engine.schema
        compiled = filter_pattern_query(
            pattern,
            dialect=self.runtime.query_engine.dialect,
            schema=schema,
            workspace=workspace,
            start=start,
            end=end,
            limit=limit,
            offset=offset,
            with_bodies=with_bodies,
            database=getattr(self.runtime.query_engine, "database", None),
            bodies_allowed=bodies_allowed,
        )
        try:
            result = self.runtime.query_engine.execute(compiled.sql, f"filter-{id(compiled)}")
        except QueryFailed as exc:
            raise ValidationError("filterPattern", exc.reason) from None
        records = []
        body_names = {"input_body_json", "output_body_json"}
        for row in result.rows:
            values = dict(zip(compiled.fields, row, strict=True))
            body = {k: values.pop(k) for k in list(values) if k in body_names}
            body["record_id"] = values.get("record_id")
            records.append(from_row(values, body, schema))
        return records


def _pool_key(workspace: str, query_id: str) -> str:
    """A query's key in the pool, shared by every workspace (workspaces have no ``/``)."""
    return f"{workspace}/{query_id}"


def _request_ids(result: QueryResult) -> list[str]:
    """The ``@requestId`` values a query's rows show (none when it does not show them)."""
    if "@requestId" not in result.fields:
        return []
    at = result.fields.index("@requestId")
    return [str(row[at]) for row in result.rows if row[at] is not None]


def time_range(body: dict[str, Any]) -> tuple[datetime, datetime]:
    """``startTime``/``endTime`` (epoch seconds or RFC 3339) or ``since`` (``1h``); the end
    defaults to now and the start to an hour before it (`parse_range`)."""
    found = parse_range(
        body.get("startTime"),
        body.get("endTime"),
        since=body.get("since"),
        now=datetime.now(UTC),
        default=timedelta(hours=1),
        names=("startTime", "endTime", "since"),
        epoch=True,
    )
    return found.start, found.end


def _query_id(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not 1 <= len(value) <= 128 or not value.isprintable():
        raise ValidationError("queryId", "must be a string of 1 to 128 printable characters")
    return value


def _optional_str(body: dict[str, Any], field: str) -> str | None:
    value = body.get(field)
    if value is not None and not isinstance(value, str):
        raise ValidationError(field, f"must be a string, got {_json_type(value)}")
    return value


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    return "an array" if isinstance(value, list) else "an object"
