"""Traces: the OTLP/HTTP receiver (``POST /v1/traces``, protobuf or JSON, gzip), and
``GET /api/traces``, ``GET /api/traces/{traceId}``, ``GET /api/errors``,
``GET /api/timeline``.

Model-call spans become invocation records and go through the pipeline like any ingest
(acknowledged after the spool's fsync); one that describes a call the gateway already recorded
is merged into that record, not stored again. Other spans go to the SpanStore in one
transaction before the answer.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from llmtrail.analytics.errors import error_groups
from llmtrail.analytics.timeline import timeline, to_json
from llmtrail.capture.merge import GatewayCallIndex
from llmtrail.capture.otlp import decode_traces
from llmtrail.errors import LlmtrailError, NotFound, Unavailable, ValidationError
from llmtrail.record import DEFAULT_WORKSPACE, InvocationRecord, parse_timestamp
from llmtrail.server.api import _read_limited, gunzip_limited, json_response
from llmtrail.server.problems import from_error
from llmtrail.server.runtime import Runtime
from llmtrail.store.spans import TraceQuery, check_trace_id

_PROTOBUF = "application/x-protobuf"


class TracesAPI:
    def __init__(self, runtime: Runtime, index: GatewayCallIndex) -> None:
        self.runtime = runtime
        self.index = index

    async def otlp(self, request: Request) -> Response:
        content_type = request.headers.get("content-type", "application/json")
        protobuf = content_type.split(";")[0].strip().lower() == _PROTOBUF
        limits = self.runtime.settings.limits
        try:
            raw = await _read_limited(request, limits.max_ingest_bytes)
            if request.headers.get("content-encoding", "").lower() == "gzip":
                raw = gunzip_limited(raw, limits.max_ingest_bytes)
            decoded = await asyncio.to_thread(
                decode_traces, raw, content_type, workspace=DEFAULT_WORKSPACE
            )
            records, merged, rejected = self._records(decoded.records)
            if decoded.spans:
                await asyncio.to_thread(self.runtime.spans.append, decoded.spans)
            if records:
                _, future = self.runtime.pipeline.ingest(records)
                await asyncio.wrap_future(future)
        except Unavailable as exc:
            return _otlp_error(503, str(exc), protobuf)
        except LlmtrailError as exc:
            return _otlp_error(int(getattr(exc, "status", 400)), str(exc), protobuf)
        headers = {"x-llmtrail-merged": str(merged)}
        if rejected:
            message = f"{len(rejected)} span(s) rejected: {rejected[0]}"
            return _otlp_answer(protobuf, {"rejectedSpans": len(rejected), "errorMessage": message})
        return _otlp_answer(protobuf, None, headers)

    def _records(self, docs: list[dict[str, Any]]) -> tuple[list[InvocationRecord], int, list[str]]:
        records, merged, rejected = [], 0, []
        for doc in docs:
            if self.index.match(doc) is not None:
                merged += 1
                continue
            try:
                records.append(InvocationRecord.from_dict(doc, source="otlp"))
            except ValidationError as exc:
                rejected.append(str(exc))
        return records, merged, rejected

    async def list(self, request: Request) -> Response:
        q = request.query_params
        try:
            query = TraceQuery(
                start=_time(q.get("start"), "start"),
                end=_time(q.get("end"), "end"),
                app=q.get("app"),
                session_id=q.get("sessionId"),
                status=q.get("status"),
                min_duration_ms=_int(q.get("minDurationMs"), "minDurationMs"),
                has_error=_bool(q.get("hasError"), "hasError"),
                limit=_int(q.get("limit"), "limit") or 50,
                cursor=q.get("cursor"),
            )
            page = await asyncio.to_thread(self.runtime.spans.find_traces, query)
        except LlmtrailError as exc:
            return from_error(exc)
        return json_response(
            {"traces": [t.to_dict() for t in page.traces], "nextCursor": page.next_cursor}
        )

    async def get(self, request: Request) -> Response:
        try:
            trace_id = check_trace_id(request.path_params["trace_id"])
            spans = await asyncio.to_thread(self.runtime.spans.get_trace, trace_id)
            if not spans:
                raise NotFound(f"no trace {trace_id}")
        except LlmtrailError as exc:
            return from_error(exc)
        return json_response({"traceId": trace_id, "spans": [_span_view(s) for s in spans]})

    async def errors(self, request: Request) -> Response:
        q = request.query_params
        try:
            groups = await asyncio.to_thread(
                error_groups,
                self.runtime.db,
                workspace=DEFAULT_WORKSPACE,
                start=_time(q.get("start"), "start"),
                end=_time(q.get("end"), "end"),
                limit=_int(q.get("limit"), "limit") or 100,
            )
        except LlmtrailError as exc:
            return from_error(exc)
        return json_response({"errors": [g.to_dict() for g in groups]})

    async def timeline(self, request: Request) -> Response:
        q = request.query_params
        try:
            by = q.get("by", "trace")
            if by not in ("trace", "session"):
                raise ValidationError("by", "must be trace or session")
            rows = await asyncio.to_thread(
                timeline,
                self.runtime.db,
                workspace=DEFAULT_WORKSPACE,
                start=_time(q.get("start"), "start"),
                end=_time(q.get("end"), "end"),
                by=by,
                limit=_int(q.get("limit"), "limit") or 50,
            )
        except LlmtrailError as exc:
            return from_error(exc)
        return json_response(to_json(rows))


def _span_view(span: Any) -> dict[str, Any]:
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
    }
    record = span.record
    if record is not None:
        doc = record.data
        out["requestId"] = doc.get("requestId")
        out["modelId"] = doc.get("modelId")
        out["inputTokens"] = (doc.get("input") or {}).get("inputTokenCount")
        out["outputTokens"] = (doc.get("output") or {}).get("outputTokenCount")
        out["cost"] = doc.get("cost")
    else:
        out["input"], out["output"] = span.input, span.output
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


def _otlp_error(status: int, message: str, protobuf: bool) -> Response:
    """OTLP's error body: a google.rpc.Status (code 3: INVALID_ARGUMENT, 14: UNAVAILABLE)."""
    code = 14 if status == 503 else 3
    if protobuf:
        text = message.encode()[:4096]
        body = b"\x08" + _varint(code) + b"\x12" + _varint(len(text)) + text
        return Response(body, status, media_type=_PROTOBUF)
    body = orjson.dumps({"code": code, "message": message})
    return Response(body, status, media_type="application/json")


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _time(value: str | None, field: str) -> datetime | None:
    if value is None:
        return None
    try:
        return parse_timestamp(value)
    except (ValueError, TypeError):
        raise ValidationError(field, "must be an ISO 8601 timestamp") from None


def _int(value: str | None, field: str) -> int | None:
    if value is None:
        return None
    if not value.isdigit() or len(value) > 12:
        raise ValidationError(field, "must be a non-negative integer")
    return int(value)


def _bool(value: str | None, field: str) -> bool | None:
    if value is None:
        return None
    if value.lower() not in ("true", "false"):
        raise ValidationError(field, "must be true or false")
    return value.lower() == "true"
