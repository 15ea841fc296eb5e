"""The query API: ``POST /api/query`` runs a Logs Insights query and answers like
``GetQueryResults``; ``DELETE /api/query/{queryId}`` cancels a running one; saved queries at
``/api/saved-queries``; ``GET /api/records?filterPattern=…`` lists records matching a
CloudWatch JSON filter pattern."""

from __future__ import annotations

import asyncio
import functools
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
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
from llmtrail.query import filter_pattern_query
from llmtrail.record import InvocationRecord, parse_timestamp
from llmtrail.server.api import json_response
from llmtrail.server.params import duration_param
from llmtrail.server.problems import from_error, problem
from llmtrail.server.query_pool import QueryLimitExceeded, QueryPool, QueryWithdrawn
from llmtrail.server.runtime import Runtime
from llmtrail.store.query_bounds import QueryFailed
from llmtrail.store.rows import from_row

MAX_DESCRIPTION = 4096


class QueryAPI:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.runner = QueryRunner(runtime.query_engine, runtime.db.schema)
        self.saved = SavedQueries(runtime.state)
        limits = runtime.settings.query
        self.pool = QueryPool(limits.concurrency, limits.queued)

    def routes(self) -> list[Route]:
        return [
            Route("/api/query", self.query, methods=["POST"]),
            Route("/api/query/{query_id}", self.status, methods=["GET"]),
            Route("/api/query/{query_id}", self.cancel, methods=["DELETE"]),
            Route("/api/saved-queries", self.list_saved, methods=["GET"]),
            Route("/api/saved-queries/{name:path}", self.get_saved, methods=["GET"]),
            Route("/api/saved-queries/{name:path}", self.put_saved, methods=["PUT"]),
            Route("/api/saved-queries/{name:path}", self.delete_saved, methods=["DELETE"]),
        ]

    async def query(self, request: Request) -> Response:
        try:
            body = await _json_object(request)
            text = _optional_str(body, "queryString")
            name = _optional_str(body, "name")
            next_token = _optional_str(body, "nextToken")
            query_id = _query_id(body.get("queryId")) or str(uuid.uuid4())
            start, end = time_range(body)
            limit = body.get("limit", 1000)
            if isinstance(limit, bool) or not isinstance(limit, int):
                raise ValidationError("limit", f"must be an integer from 1 to {MAX_LIMIT}")
            if text is None and name is not None:
                text = (await asyncio.to_thread(self.saved.get, name))["queryString"]
            if text is None:
                raise ValidationError("queryString", "is required (a Logs Insights query)")
            result = await self.pooled(
                text, start, end, limit=limit, next_token=next_token, query_id=query_id
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
    ) -> QueryResult:
        """The query on the query pool (`QueryLimitExceeded` when it is full): what the API,
        the web pages and dashboards' log widgets run; stopped in the engine when the caller
        goes away."""
        self.runner.schedule(query_id)
        try:
            return await self.pool.run(
                query_id,
                self.runner.run,
                text,
                start,
                end,
                limit=limit,
                next_token=next_token,
                query_id=query_id,
                when_done=functools.partial(self.runner.forget, query_id),
            )
        except QueryWithdrawn:  # cancelled while it waited for a thread
            return QueryResult(query_id, "Cancelled", [], [], [])
        except asyncio.CancelledError:
            if self.runner.status(query_id) is not None:
                self.pool.cancel_soon(self.runner.cancel, query_id)
            raise

    async def status(self, request: Request) -> Response:
        """``Scheduled`` or ``Running`` while query ``{queryId}`` is here (404 after)."""
        query_id = request.path_params["query_id"]
        state = self.runner.status(query_id)
        if state is None:
            return from_error(NotFound(f"no query {query_id!r} is running"))
        return json_response({"queryId": query_id, "status": state})

    async def cancel(self, request: Request) -> Response:
        """Stop query ``{queryId}``, on a cancel thread: never behind running queries."""
        query_id = request.path_params["query_id"]
        if self.pool.withdraw(query_id):  # still waiting: it never starts
            return json_response({"queryId": query_id, "cancelled": True})
        cancelled = await self.pool.cancel(self.runner.cancel, query_id)
        return json_response({"queryId": query_id, "cancelled": cancelled})

    async def list_saved(self, request: Request) -> Response:
        return json_response({"queries": await asyncio.to_thread(self.saved.list)})

    async def get_saved(self, request: Request) -> Response:
        try:
            value = await asyncio.to_thread(self.saved.get, request.path_params["name"])
        except LlmtrailError as exc:
            return from_error(exc)
        return json_response(value)

    async def put_saved(self, request: Request) -> Response:
        try:
            body = await _json_object(request)
            query = _optional_str(body, "queryString")
            if query is None:
                raise ValidationError("queryString", "is required (a Logs Insights query)")
            description = _optional_str(body, "description")
            if description is not None and len(description) > MAX_DESCRIPTION:
                raise ValidationError(
                    "description", f"is longer than the limit of {MAX_DESCRIPTION} characters"
                )
            value = await asyncio.to_thread(
                self.saved.put, request.path_params["name"], query, description
            )
        except LlmtrailError as exc:
            return from_error(exc)
        return json_response(value)

    async def delete_saved(self, request: Request) -> Response:
        try:
            await asyncio.to_thread(self.saved.delete, request.path_params["name"])
        except LlmtrailError as exc:
            return from_error(exc)
        return json_response({"deleted": request.path_params["name"]})

    def filtered(
        self, pattern: str, start: datetime, end: datetime, limit: int, offset: int
    ) -> list[InvocationRecord]:
        """Records matching a filter pattern, newest first (the ``logs --filter-pattern``
        path of ``GET /api/records``)."""
        schema = self.runtime.db.schema
        compiled = filter_pattern_query(
            pattern,
            dialect=self.runtime.query_engine.dialect,
            schema=schema,
            workspace="default",
            start=start,
            end=end,
            limit=limit,
            offset=offset,
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


def time_range(body: dict[str, Any]) -> tuple[datetime, datetime]:
    """``startTime``/``endTime`` (epoch seconds or RFC 3339) or ``since`` (``1h``); the end
    defaults to now and the start to an hour before it."""
    now = datetime.now(UTC)
    end = _instant(body.get("endTime"), "endTime") or now
    start = _instant(body.get("startTime"), "startTime")  # checked even when since wins
    since = body.get("since")
    if since is not None:
        try:
            return end - duration_param(since, "since"), end
        except OverflowError:
            raise ValidationError("since", "reaches too far back") from None
    return start or end - timedelta(hours=1), end


def _instant(value: Any, field: str) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            return datetime.fromtimestamp(value, UTC)
        except (OverflowError, OSError, ValueError):
            raise ValidationError(field, "is out of range") from None
    if isinstance(value, str):
        return parse_timestamp(value, field)
    raise ValidationError(field, "must be epoch seconds or an RFC 3339 timestamp")


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


async def _json_object(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if len(raw) > 1_000_000:
        raise ValidationError("body", "is larger than the limit of 1000000 bytes")
    try:
        body = orjson.loads(raw or b"{}")
    except orjson.JSONDecodeError as exc:
        raise ValidationError("body", f"is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise ValidationError("body", "must be a JSON object")
    return body
