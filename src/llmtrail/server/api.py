"""The records API: ``POST /api/records`` (ingest), ``GET /api/records`` (list and follow),
``GET /api/records/{requestId}``; plus ``/healthz``, ``/readyz`` and ``/metrics``.

Every request acts for its caller's key (`principal_of`): records ingested belong to the
key's workspace, and reads see only that workspace (a record of another one is 404, as an
unknown id is). A key without the ``bodies`` permission gets records without
``input.inputBodyJson`` and ``output.outputBodyJson`` (``bodiesOmitted: true`` in a list,
the header ``x-llmtrail-bodies: omitted`` on every such answer; the S3 paths of offloaded
bodies stay, as no route serves those objects), and 403 when it asks for bodies
(``bodies=1``) or filters on a body field. Bodies read with the permission are audited, one
entry per request (`audit_body_read`)."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from starlette.requests import ClientDisconnect, Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from llmtrail.capture.ingest_body import ingest_summary
from llmtrail.errors import LlmtrailError, NotFound, PayloadTooLarge, Unavailable, ValidationError
from llmtrail.gunzip import is_gzip_encoded
from llmtrail.metrics.prometheus import genai_metrics
from llmtrail.record import DEFAULT_WORKSPACE, InvocationRecord
from llmtrail.security.principal import Permission, Principal, principal_of
from llmtrail.server.access import guarded_route
from llmtrail.server.audit_hooks import audit_body_read
from llmtrail.server.params import int_param
from llmtrail.server.problems import from_error, problem
from llmtrail.server.record_bodies import OMITTED, bodies_wanted, has_body, without_bodies
from llmtrail.server.runtime import Runtime
from llmtrail.store.interfaces import RecordQuery
from llmtrail.timerange import optional_instant, parse_bounds

log = logging.getLogger("llmtrail.api")
MAX_PAGE = 1000
MAX_OFFSET = 10**9 - 1  # a filter-pattern cursor: an offset


def json_response(value: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(value), status, media_type="application/json")


async def answer(work: Callable[[], Any], status: int = 200) -> Response:
    """Run ``work`` off the event loop; its value as JSON (or its `Response`), or the problem
    JSON of the `LlmtrailError` it raised."""
    try:
        result = await asyncio.to_thread(work)
    except LlmtrailError as exc:
        return from_error(exc)
    return result if isinstance(result, Response) else json_response(result, status)


class RecordsAPI:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        # (pattern, start, end, limit, offset, *, workspace, bodies_allowed, with_bodies) ->
        # records: set when the query API is mounted
        self.filtered: Callable[..., list[InvocationRecord]] | None = None

    def routes(self) -> list[Route]:
        """The routes app.py mounts from this class, each with the permission it needs."""
        return [
            guarded_route("/healthz", self.healthz, Permission.PUBLIC, ["GET"]),
            guarded_route("/readyz", self.readyz, Permission.PUBLIC, ["GET"]),
            guarded_route("/metrics", self.metrics, Permission.READ, ["GET"]),
            guarded_route("/api/records", self.ingest, Permission.INGEST, ["POST"]),
            guarded_route("/api/records", self.list, Permission.READ, ["GET"]),
            guarded_route("/api/records/{request_id:path}", self.get, Permission.READ, ["GET"]),
        ]

    async def ingest(self, request: Request) -> Response:
        """Records of the caller's workspace, whatever their own ``workspace`` key says."""
        limits = self.runtime.settings.limits
        workspace = principal_of(request.scope).workspace
        try:
            gzipped = is_gzip_encoded(request.headers.get("content-encoding"))
            raw = await _read_limited(request, limits.max_ingest_bytes)
            # decoded, validated, priced and spooled by the record path (the recorder
            # process under a server); answered only after the spool's fsync
            results, where, fresh = await self.runtime.recording.ingest_body(
                raw, gzipped, workspace
            )
        except Unavailable as exc:
            return problem(503, "Unavailable", str(exc))
        except LlmtrailError as exc:
            return from_error(exc)
        return json_response(ingest_summary(results, where, fresh))

    async def list(self, request: Request) -> Response:
        principal = principal_of(request.scope)
        try:
            with_bodies = bodies_wanted(principal, request.query_params.get("bodies"))
        except LlmtrailError as exc:
            return from_error(exc)
        pattern = request.query_params.get("filterPattern")
        if pattern is not None and self.filtered is not None:
            return await self._filtered(request, pattern, principal, with_bodies)
        try:
            query = record_query(
                dict(request.query_params),
                request.query_params.getlist("metadata"),
                workspace=principal.workspace,
                with_bodies=with_bodies,
            )
            page = await asyncio.to_thread(self.runtime.records.find, query)
        except LlmtrailError as exc:
            return from_error(exc)
        return await self._page(
            request, principal, page.records, page.next_cursor, with_bodies, "records"
        )

    async def _page(
        self,
        request: Request,
        principal: Principal,
        records: Sequence[InvocationRecord],
        cursor: str | None,
        with_bodies: bool,
        surface: str,
    ) -> Response:
        """The answer of a list: bodies only for a key allowed them (their read audited)."""
        if not principal.can(Permission.BODIES):
            docs = [without_bodies(r.data) for r in records]
            answer = {"records": docs, "nextCursor": cursor, "bodiesOmitted": True}
            return Response(orjson.dumps(answer), 200, OMITTED, "application/json")
        docs = [r.data for r in records]
        if with_bodies:
            read = [r.request_id for r in records if has_body(r.data)]
            if read:
                await audit_body_read(self.runtime, request, surface, read)
        return json_response({"records": docs, "nextCursor": cursor})

    async def _filtered(
        self, request: Request, pattern: str, principal: Principal, with_bodies: bool
    ) -> Response:
        """Records matching a CloudWatch filter pattern, newest first; the cursor is an
        offset."""
        params = dict(request.query_params)
        assert self.filtered is not None
        try:
            query = record_query(params, [], workspace=principal.workspace)
            offset = int_param(
                params.get("cursor") or None, "cursor", default=0, minimum=0, maximum=MAX_OFFSET
            )
            end = query.end or datetime.now(UTC)
            start = query.start or datetime(1970, 1, 1, tzinfo=UTC)
            records = await asyncio.to_thread(
                functools.partial(
                    self.filtered,
                    pattern,
                    start,
                    end,
                    query.limit + 1,
                    offset,
                    workspace=principal.workspace,
                    bodies_allowed=principal.can(Permission.BODIES),
                    with_bodies=with_bodies,
                )
            )
        except LlmtrailError as exc:
            return from_error(exc)
        more = len(records) > query.limit
        cursor = str(offset + query.limit) if more else None
        return await self._page(
            request, principal, records[: query.limit], cursor, with_bodies, "records"
        )

    async def get(self, request: Request) -> Response:
        """One record of the caller's workspace (404 for any other, as for an unknown id);
        without bodies for a key that may not read them (``bodies=0`` leaves them out)."""
        principal = principal_of(request.scope)
        request_id = request.path_params["request_id"]
        try:
            with_bodies = bodies_wanted(principal, request.query_params.get("bodies"))
        except LlmtrailError as exc:
            return from_error(exc)
        record = await asyncio.to_thread(self.runtime.records.get, request_id, principal.workspace)
        if record is None:
            return from_error(NotFound(f"no record with requestId {request_id!r}"))
        if not with_bodies:
            headers = OMITTED if not principal.can(Permission.BODIES) else None
            doc = without_bodies(record.data)
            return Response(orjson.dumps(doc), 200, headers, "application/json")
        if has_body(record.data):
            await audit_body_read(self.runtime, request, "records", [record.request_id])
        return json_response(record.data)

    async def healthz(self, request: Request) -> Response:
        return json_response({"status": "ok"})

    async def readyz(self, request: Request) -> Response:
        if not self.runtime.db.available:
            return problem(503, "Not ready", "the database is being reopened after a fatal error")
        if self.runtime.recording.is_ready():
            return json_response({"status": "ready"})
        return problem(
            503,
            "Not ready",
            "the spool is being replayed, the recorder process is restarting, or the server "
            "is stopping",
        )

    async def metrics(self, request: Request) -> Response:
        lines = []
        stats = await asyncio.to_thread(self.runtime.recording.stats)  # the recorder's, now
        for name, value in sorted(stats.items()):
            lines.append(f"# TYPE llmtrail_pipeline_{name} gauge")
            lines.append(f"llmtrail_pipeline_{name} {value:g}")
        keep = timedelta(days=self.runtime.settings.metrics.retention_1h_days)
        workspace = principal_of(request.scope).workspace  # the pipeline's counters are global
        lines += await asyncio.to_thread(genai_metrics, self.runtime.metric_store, keep, workspace)
        return PlainTextResponse("\n".join(lines) + "\n", media_type="text/plain; version=0.0.4")


async def _read_limited(request: Request, limit: int) -> bytes:
    """The request's body, at most ``limit`` bytes. A client that goes away before the end
    of its body is a `ValidationError` whose answer nobody reads (logged at debug level)."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge("body", f"is {declared} bytes; the limit is {limit} bytes")
    chunks, size = [], 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise PayloadTooLarge("body", f"is larger than the limit of {limit} bytes")
            chunks.append(chunk)
    except ClientDisconnect:
        log.debug("client disconnected after %d bytes of its body on %s", size, request.url.path)
        raise ValidationError("body", "the client disconnected before sending all of it") from None
    return b"".join(chunks)


def record_query(
    params: dict[str, str],
    metadata: list[str],
    *,
    workspace: str = DEFAULT_WORKSPACE,
    with_bodies: bool = True,
) -> RecordQuery:
    """The store query of ``GET /api/records``' parameters, over ``workspace`` (the caller's:
    no parameter names one)."""

    pairs = []
    for item in metadata:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValidationError("metadata", f"expected KEY=VALUE, got {item!r}")
        pairs.append((key, value))
    limit = int_param(params.get("limit"), "limit", default=100, minimum=1, maximum=MAX_PAGE)
    start, end = parse_bounds(params.get("start"), params.get("end"))
    return RecordQuery(
        workspace=workspace,
        start=start,
        end=end,
        model_id=params.get("model"),
        operation=params.get("operation"),
        status=params.get("status"),
        provider=params.get("provider"),
        metadata=tuple(pairs),
        ingested_after=optional_instant(params.get("ingested_after"), "ingested_after"),
        order=_choice(params, "order", ("newest", "ingested")),
        limit=limit,
        cursor=params.get("cursor"),
        with_bodies=with_bodies,
    )


def _choice(params: dict[str, str], name: str, allowed: tuple[str, ...]) -> str:
    value = params.get(name, allowed[0])
    if value not in allowed:
        raise ValidationError(name, f"must be one of {', '.join(allowed)}, got {value!r}")
    return value
