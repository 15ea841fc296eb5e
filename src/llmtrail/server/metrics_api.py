"""The metrics API: ``POST /api/metrics`` takes a CloudWatch ``GetMetricData`` body,
``GET /api/metrics`` the same as query parameters (several ``metric``s at once, optionally one
series per value of a ``by`` dimension), ``GET /api/metrics/list`` answers like
``ListMetrics``, and ``POST /api/metrics/rebuild`` recomputes the rollups.

Every read is of the caller's workspace: the rollups are kept per workspace and the workspace
is named apart from the dimensions (a ``workspace`` dimension is refused), so no query widens
it. Rebuilding recomputes every workspace's rollups from their own records (a management
change)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from llmtrail.errors import LlmtrailError, ValidationError
from llmtrail.metrics.dimensions import resolve
from llmtrail.metrics.model import MetricDataQuery, MetricDataResult, MetricStat
from llmtrail.metrics.requests import parse_queries
from llmtrail.security.principal import Permission, principal_of
from llmtrail.server.access import guarded_route, operator_only
from llmtrail.server.api import json_response
from llmtrail.server.cost_api import MAX_BODY_BYTES
from llmtrail.server.params import int_param, json_object
from llmtrail.server.problems import from_error
from llmtrail.server.runtime import Runtime
from llmtrail.timerange import optional_instant, parse_instant, parse_range

MAX_SINCE = timedelta(days=455)


def query_range(params: Any, now: datetime) -> tuple[datetime, datetime]:
    """``start``/``end`` or ``since`` (1 s to 455 days), defaulting to the last 3 hours."""
    found = parse_range(
        params.get("start"),
        params.get("end"),
        since=params.get("since"),
        now=now,
        default=timedelta(hours=3),
        longest_since=MAX_SINCE,
    )
    return found.start, found.end


def _body_time(body: dict[str, Any], key: str) -> datetime:
    if body.get(key) is None:
        raise ValidationError(key, "is required: an RFC 3339 timestamp or epoch seconds")
    return parse_instant(body[key], key, epoch=True)


class MetricsAPI:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def routes(self) -> list[Route]:
        read = Permission.READ
        return [
            guarded_route("/api/metrics", self.get, read, ["GET"]),
            guarded_route("/api/metrics", self.post, read, ["POST"]),
            guarded_route("/api/metrics/list", self.list_metrics, read, ["GET"]),
            guarded_route("/api/metrics/rebuild", self.rebuild, Permission.MANAGE, ["POST"]),
        ]

    async def post(self, request: Request) -> Response:
        try:
            body = await json_object(request, MAX_BODY_BYTES)
            queries = parse_queries(body.get("MetricDataQueries"))
            start, end = _body_time(body, "StartTime"), _body_time(body, "EndTime")
            scan = body.get("ScanBy", "TimestampDescending")
            if scan not in ("TimestampDescending", "TimestampAscending"):
                raise ValidationError("ScanBy", "must be TimestampDescending or TimestampAscending")
            results = await self._data(queries, start, end, principal_of(request.scope).workspace)
        except LlmtrailError as exc:
            return from_error(exc)
        return json_response(_answer(results, descending=scan == "TimestampDescending"))

    async def get(self, request: Request) -> Response:
        p = request.query_params
        workspace = principal_of(request.scope).workspace
        try:
            start, end = query_range(p, datetime.now(UTC))
            period = int_param(
                p.get("period"), "period", default=300, minimum=1, maximum=455 * 86400
            )
            stat = p.get("stat", "Sum")
            dims = []
            for spec in p.getlist("dimension"):
                name, sep, value = spec.partition("=")
                if not sep:
                    raise ValidationError("dimension", f"must be Name=Value, got {spec[:40]!r}")
                dims.append((resolve(name, "dimension").name, value))
            metrics = p.getlist("metric") or ["Invocations"]
            if len(metrics) > 20:
                raise ValidationError("metric", "at most 20 metrics per request")
            by = resolve(p["by"], "by").name if p.get("by") else None
            queries, searches = [], []
            for i, spec in enumerate(metrics):
                name, _, own_stat = spec.partition(":")
                if by:
                    schema = ",".join(["AWS/Bedrock", *(n for n, _ in dims), by])
                    terms = " ".join(f'{n}="{v}"' for n, v in dims)
                    expression = f'{{{schema}}} MetricName="{name}" {terms}'
                    searches.append((i, name, expression, own_stat or stat))
                else:
                    queries.append(
                        MetricDataQuery(
                            f"m{i}", MetricStat(name, own_stat or stat, period, tuple(dims))
                        )
                    )
            results = await self._data(queries, start, end, workspace) if queries else []
            for i, name, expression, s in searches:  # one series per value of `by`
                found = await asyncio.to_thread(
                    self.runtime.metrics.search,
                    expression,
                    s,
                    period,
                    start,
                    end,
                    workspace,
                )
                for n, series in enumerate(found):
                    series.id = f"m{i}_{n}"
                    if len(metrics) > 1:
                        series.label = f"{name} {series.label}"
                results += found
        except LlmtrailError as exc:
            return from_error(exc)
        return json_response(_answer(results, descending=False))

    async def list_metrics(self, request: Request) -> Response:
        p = request.query_params
        try:
            start, end = query_range(p, datetime.now(UTC))
            names = p.get("dimensions")
            found = await asyncio.to_thread(
                self.runtime.metrics.list_metrics,
                workspace=principal_of(request.scope).workspace,
                metric=p.get("metric"),
                dimension_names=tuple(n for n in names.split(",") if n)
                if names is not None
                else None,
                start=start,
                end=end,
            )
        except LlmtrailError as exc:
            return from_error(exc)
        return json_response(
            {
                "Metrics": [
                    {
                        "Namespace": "AWS/Bedrock",
                        "MetricName": name,
                        "Dimensions": [{"Name": n, "Value": v} for n, v in dims],
                    }
                    for name, dims in found
                ]
            }
        )

    async def rebuild(self, request: Request) -> Response:
        refused = operator_only(request, "rollups")  # a rebuild covers every workspace
        if refused is not None:
            return refused
        p = request.query_params
        try:
            since = optional_instant(p.get("since"), "since")
            await asyncio.to_thread(self.runtime.metric_store.rebuild, since)
        except LlmtrailError as exc:
            return from_error(exc)
        return json_response({"rebuilt": True, "since": p.get("since")})

    async def _data(
        self, queries: list[MetricDataQuery], start: datetime, end: datetime, workspace: str
    ) -> list[MetricDataResult]:
        return await asyncio.to_thread(
            self.runtime.metrics.get_metric_data,
            queries,
            start,
            end,
            workspace=workspace,
        )


def _answer(results: list[MetricDataResult], descending: bool) -> dict[str, Any]:
    out = []
    for result in results:
        item = result.to_dict()
        if descending:
            item["Timestamps"].reverse()
            item["Values"].reverse()
        out.append(item)
    return {"MetricDataResults": out, "Messages": []}
