"""Traces: the OTLP/HTTP receiver (``POST /v1/traces``, protobuf or JSON, gzip), and
``GET /api/traces``, ``GET /api/traces/{traceId}``, ``GET /api/errors``,
``GET /api/timeline``.

Model-call spans become invocation records and go through the pipeline like any ingest
(acknowledged after the spool's fsync); one that describes a call the gateway already recorded
is merged into that record, not stored again, and leaves a link where it sat in its trace
(`llmtrail.capture.merge`). Other spans go to the SpanStore in one transaction before the
answer. A record made from a span is priced and counted (``cost``, ``textCharacters``) by the
runtime's `Enricher`, as gateway and imported records are (`llmtrail.pipeline.enrich`).

Failures answer as OTLP/HTTP says: a ``google.rpc.Status`` in the request's own encoding
(protobuf or JSON), code 3 (INVALID_ARGUMENT) with a ``google.rpc.BadRequest`` detail naming
the field, 14 (UNAVAILABLE) when the pipeline cannot take more; a body is refused whole, so
nothing already stored changes.

Spans and records received belong to the sending key's workspace, and merge only into that
workspace's gateway calls; every read is of the caller's workspace (another workspace's trace
is 404, as an unknown one). A key without the ``bodies`` permission gets spans without their
``input`` and ``output`` (``bodiesOmitted``); one with it is audited when a trace shows them.
"""

from __future__ import annotations

import asyncio
import functools
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from llmtrail.analytics.errors import error_groups
from llmtrail.analytics.timeline import timeline, to_json
from llmtrail.capture.merge import GatewayCallIndex, fuse_links
from llmtrail.capture.otlp import JSON_TYPES, PROTOBUF_TYPES, decode_traces
from llmtrail.errors import LlmtrailError, NotFound, Unavailable, ValidationError
from llmtrail.gunzip import gunzip_limited, is_gzip_encoded
from llmtrail.pipeline.packed import Packed, SpanFrames
from llmtrail.record import InvocationRecord
from llmtrail.security.principal import Permission, principal_of
from llmtrail.server.access import guarded_route
from llmtrail.server.api import _read_limited, json_response
from llmtrail.server.audit_hooks import audit_body_read
from llmtrail.server.otlp_intake import decode_packed, sort_calls, sort_packed_calls
from llmtrail.server.params import int_param, optional_int_param
from llmtrail.server.problems import from_error
from llmtrail.server.record_bodies import OMITTED
from llmtrail.server.runtime import Runtime
from llmtrail.span import Span, check_trace_id
from llmtrail.store.spans import TraceQuery
from llmtrail.timerange import parse_bounds

_POOL_BYTES = 64 * 1024  # bodies this large are decoded in the worker process
_PROTOBUF = "application/x-protobuf"
_BAD_REQUEST_TYPE = "type.googleapis.com/google.rpc.BadRequest"
PAGE_MAX = 1000  # traces, error groups and timeline rows per answer, as records per page
MAX_DURATION_MS = 10**12


class TracesAPI:
    """The traces routes over one runtime and the gateway's index of recent calls."""

    def __init__(self, runtime: Runtime, index: GatewayCallIndex) -> None:
        self.runtime = runtime
        self.index = index

    def routes(self) -> list[Route]:
        """The routes app.py mounts from this class, each with the permission it needs."""
        read = Permission.READ
        return [
            guarded_route("/v1/traces", self.otlp, Permission.INGEST, ["POST"]),
            guarded_route("/api/traces", self.list, read, ["GET"]),
            guarded_route("/api/traces/{trace_id}", self.get, read, ["GET"]),
            guarded_route("/api/errors", self.errors, read, ["GET"]),
            guarded_route("/api/timeline", self.timeline, read, ["GET"]),
        ]

    async def otlp(self, request: Request) -> Response:
        """``POST /v1/traces``: an ``ExportTraceServiceRequest``, answered in its encoding;
        its spans and records belong to the caller's workspace."""
        workspace = principal_of(request.scope).workspace
        content_type = request.headers.get("content-type", "application/json")
        media = content_type.split(";")[0].strip().lower()
        protobuf = media in PROTOBUF_TYPES
        limits = self.runtime.settings.limits
        try:
            if not protobuf and media not in JSON_TYPES:
                raise ValidationError(
                    "content-type",
                    f"must be application/x-protobuf or application/json, got {media!r}",
                )
            gzipped = is_gzip_encoded(request.headers.get("content-encoding"))
            raw = await _read_limited(request, limits.max_ingest_bytes)
            # the gateway calls handed over before this export are in the merge index first
            await self.runtime.recording.caught_up()
            if gzipped:
                raw = await asyncio.to_thread(gunzip_limited, raw, limits.max_ingest_bytes)
            records: list[InvocationRecord] | Packed[InvocationRecord]
            spans: list[Span] | Packed[Span] | SpanFrames
            if len(raw) >= _POOL_BYTES:  # decoded in a worker process, beside the GIL
                export = await self.runtime.workers.run(
                    functools.partial(
                        decode_packed,
                        workspace=workspace,
                        max_json_depth=limits.max_json_depth,
                    ),
                    raw,
                    content_type,
                )
                call_count, spans = len(export.calls), export.spans
                records, links, rejected = await asyncio.to_thread(
                    sort_packed_calls, self.index, export, workspace
                )
            else:
                docs, spans, records, links, rejected = await asyncio.to_thread(
                    self._decode, raw, content_type, workspace
                )
                call_count = len(docs)
            if records or spans or links:  # redacted, spooled: answered after the fsync
                await self.runtime.recording.ingest_otlp(records, spans, links)
        except Unavailable as exc:
            return _otlp_error(503, None, str(exc), protobuf)
        except ValidationError as exc:
            return _otlp_error(int(getattr(exc, "status", 400)), exc.field, str(exc), protobuf)
        except LlmtrailError as exc:
            return _otlp_error(int(getattr(exc, "status", 400)), None, str(exc), protobuf)
        merged = call_count - len(records) - len(rejected)
        headers = {"x-llmtrail-merged": str(merged)}
        if rejected:
            message = f"{len(rejected)} span(s) rejected: {rejected[0]}"
            partial = {"rejectedSpans": len(rejected), "errorMessage": message}
            return _otlp_answer(protobuf, partial, headers)
        return _otlp_answer(protobuf, None, headers)

    def _decode(
        self, raw: bytes, content_type: str, workspace: str
    ) -> tuple[list[dict[str, Any]], list[Span], list[InvocationRecord], list[Span], list[str]]:
        """A worker thread's share: decode, then sort the model calls (`sort_calls`; they are
        priced on the record path)."""
        depth = self.runtime.settings.limits.max_json_depth
        decoded = decode_traces(raw, content_type, workspace=workspace, max_json_depth=depth)
        return decoded.records, decoded.spans, *sort_calls(self.index, decoded.records, workspace)

    async def list(self, request: Request) -> Response:
        """``GET /api/traces``: trace summaries, newest first, one page."""
        q = request.query_params
        try:
            start, end = parse_bounds(q.get("start"), q.get("end"))
            query = TraceQuery(
                workspace=principal_of(request.scope).workspace,
                start=start,
                end=end,
                app=q.get("app"),
                session_id=q.get("sessionId"),
                status=q.get("status"),
                min_duration_ms=optional_int_param(
                    q.get("minDurationMs"), "minDurationMs", minimum=0, maximum=MAX_DURATION_MS
                ),
                has_error=_bool(q.get("hasError"), "hasError"),
                limit=int_param(q.get("limit"), "limit", default=50, minimum=1, maximum=PAGE_MAX),
                cursor=q.get("cursor"),
            )
            page = await asyncio.to_thread(self.runtime.spans.find_traces, query)
        except LlmtrailError as exc:
            return from_error(exc)
        return json_response(
            {"traces": [t.to_dict() for t in page.traces], "nextCursor": page.next_cursor}
        )

    async def get(self, request: Request) -> Response:
        """``GET /api/traces/{traceId}``: every span, merged calls fused with their records;
        without the spans' ``input`` and ``output`` for a key that may not read bodies."""
        principal = principal_of(request.scope)
        try:
            trace_id = check_trace_id(request.path_params["trace_id"])
            spans = await asyncio.to_thread(read_trace, self.runtime, trace_id, principal.workspace)
            if not spans:
                raise NotFound(f"no trace {trace_id}")
        except LlmtrailError as exc:
            return from_error(exc)
        bodies = principal.can(Permission.BODIES)
        views = [_span_view(s, bodies) for s in spans]
        if not bodies:
            answer = {"traceId": trace_id, "spans": views, "bodiesOmitted": True}
            return Response(orjson.dumps(answer), 200, OMITTED, "application/json")
        if any(s.record is None and (s.input is not None or s.output is not None) for s in spans):
            await audit_body_read(self.runtime, request, "traces", _shown_ids(trace_id, spans))
        return json_response({"traceId": trace_id, "spans": views})

    async def errors(self, request: Request) -> Response:
        """``GET /api/errors``: failures grouped by type and message."""
        q = request.query_params
        try:
            start, end = parse_bounds(q.get("start"), q.get("end"))
            groups = await asyncio.to_thread(
                error_groups,
                self.runtime.query_engine,
                workspace=principal_of(request.scope).workspace,
                start=start,
                end=end,
                limit=int_param(q.get("limit"), "limit", default=100, minimum=1, maximum=PAGE_MAX),
            )
        except LlmtrailError as exc:
            return from_error(exc)
        return json_response({"errors": [g.to_dict() for g in groups]})

    async def timeline(self, request: Request) -> Response:
        """``GET /api/timeline``: one row per request (trace or session), its model calls."""
        q = request.query_params
        try:
            by = q.get("by", "trace")
            if by not in ("trace", "session"):
                raise ValidationError("by", "must be trace or session")
            start, end = parse_bounds(q.get("start"), q.get("end"))
            rows = await asyncio.to_thread(
                timeline,
                self.runtime.query_engine,
                workspace=principal_of(request.scope).workspace,
                start=start,
                end=end,
                by=by,
                limit=int_param(q.get("limit"), "limit", default=50, minimum=1, maximum=PAGE_MAX),
            )
        except LlmtrailError as exc:
            return from_error(exc)
        return json_response(to_json(rows))


def read_trace(runtime: Runtime, trace_id: str, workspace: str) -> list[Span]:
    """``workspace``'s trace as it is shown: merged calls fused with their records (of that
    workspace too)."""
    return fuse_links(
        runtime.spans.get_trace(trace_id, workspace),
        lambda request_id: runtime.records.get(request_id, workspace),
    )


def _shown_ids(trace_id: str, spans: list[Span]) -> list[str]:
    """What the audit names for a trace whose spans showed their inputs and outputs: the
    trace, then the requestIds of its model calls."""
    return [f"trace:{trace_id}", *(s.record.request_id for s in spans if s.record is not None)]


def _span_view(span: Span, bodies: bool = True) -> dict[str, Any]:
    out: dict[str, Any] = {
        "spanId": span.span_id,
        "parentSpanId": span.parent_span_id,
        "name": span.name,
        "spanKind": span.kind,
        "start": span.start.isoformat(),
        "end": span.end.isoformat(),
        "durationMs": span.duration_ms,
        "status": span.status,
        "error": span.error.to_dict() if span.error else None,
        "source": span.source,
        "sessionId": span.session_id,
        "app": span.app,
    }
    record = span.record
    if record is not None:
        doc = record.data
        own = (doc.get("trace") or {}).get("spanId")
        if own and own != span.span_id:
            out["recordSpanId"] = own  # the record was merged with the span that made it
        out["requestId"] = doc.get("requestId")
        out["modelId"] = doc.get("modelId")
        out["inputTokens"] = (doc.get("input") or {}).get("inputTokenCount")
        out["outputTokens"] = (doc.get("output") or {}).get("outputTokenCount")
        out["cost"] = doc.get("cost")
    else:
        if bodies:
            out["input"], out["output"] = span.input, span.output
        out["tags"] = list(span.tags)
        out["attributes"] = span.attributes
    return out


def _otlp_answer(
    protobuf: bool, partial: dict[str, Any] | None, headers: dict[str, str] | None = None
) -> Response:
    if protobuf:
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
            ExportTraceServiceResponse,
        )

        answer = ExportTraceServiceResponse()
        if partial:
            answer.partial_success.rejected_spans = partial["rejectedSpans"]
            answer.partial_success.error_message = partial["errorMessage"]
        return Response(answer.SerializeToString(), 200, headers, _PROTOBUF)
    body = {"partialSuccess": partial} if partial else {}
    return Response(orjson.dumps(body), 200, headers, "application/json")


def _otlp_error(status: int, field: str | None, message: str, protobuf: bool) -> Response:
    """OTLP's error body: a ``google.rpc.Status`` (code 3: INVALID_ARGUMENT, 14:
    UNAVAILABLE), with a ``google.rpc.BadRequest`` detail naming ``field`` when one is
    known, in the request's encoding."""
    code = 14 if status == 503 else 3
    if protobuf:
        body = _pb_field(1, _varint(code), varint=True) + _pb_field(2, message.encode()[:4096])
        if field is not None:
            violation = _pb_field(1, field.encode()) + _pb_field(2, message.encode()[:4096])
            bad_request = _pb_field(1, violation)
            detail = _pb_field(1, _BAD_REQUEST_TYPE.encode()) + _pb_field(2, bad_request)
            body += _pb_field(3, detail)
        return Response(body, status, media_type=_PROTOBUF)
    doc: dict[str, Any] = {"code": code, "message": message}
    if field is not None:
        violations = [{"field": field, "description": message}]
        doc["details"] = [{"@type": _BAD_REQUEST_TYPE, "fieldViolations": violations}]
    return Response(orjson.dumps(doc), status, media_type="application/json")


def _pb_field(number: int, value: bytes, *, varint: bool = False) -> bytes:
    """One protobuf field: a varint (``value`` already encoded) or length-delimited bytes."""
    if varint:
        return _varint(number << 3) + value
    return _varint(number << 3 | 2) + _varint(len(value)) + value


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _bool(value: str | None, field: str) -> bool | None:
    if value is None:
        return None
    if value.lower() not in ("true", "false"):
        raise ValidationError(field, "must be true or false")
    return value.lower() == "true"
