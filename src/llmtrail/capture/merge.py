"""One model call, one record: an llm span that reaches llmtrail from OTLP or the SDK for a
call that also went through the gateway is merged into the gateway's record, never stored
twice (DESIGN.md, *Records and spans*).

The gateway notes, for each record it makes, the two keys by which a span can name the same
call: its ``traceparent`` parent (the client's span that wrapped the HTTP call, e.g. an
``@sdk.llm`` function) and the upstream's response id (which OpenInference and the GenAI
conventions record: ``output.value``'s ``id``, ``gen_ai.response.id``). The index is in
memory and bounded (the newest keys win); spans are exported seconds after the call, well
inside it. A server restart forgets it; servers sharing a store learn each other's gateway
calls from it every ``[store] refresh_s`` (`llmtrail.server.shared_views`). A span matched by
neither is stored as its own record.

The gateway's tokens and bodies win; what the span adds is its place in the app's trace.
Records are never rewritten, so that place is kept as a *link*: a body-less span of kind
``llm`` in the SpanStore naming the record (`MERGED_INTO`), stored when it places the call
somewhere — it is in the record's trace (the record's ``traceparent`` parent, or around it)
or has a parent of its own. A merged span that would be the lone root of a trace of its own
(an OpenInference span whose tracer is not the one that set ``traceparent``) leaves nothing.
Reading a trace, `fuse_links` puts the record where its link is: one node with the link's
span id, parent and name and the record's timings, tokens, bodies and status.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

from llmtrail.record import DEFAULT_WORKSPACE, InvocationRecord, parse_timestamp
from llmtrail.span import TEXT_MAX, Span, SpanError, span_from_record

MERGED_INTO = "llmtrail.merged.requestId"
MERGED_BY = "llmtrail.merged.by"


@dataclass(frozen=True, slots=True)
class GatewayCall:
    """A gateway record a span was matched to: its ``requestId``, its trace (None when the
    call carried no ``traceparent``), and how the span matched (``parent`` or
    ``responseId``)."""

    request_id: str
    trace_id: str | None
    by: str = "parent"


class GatewayCallIndex:
    """Keys of recent gateway records: ``("parent", workspace, traceId, parentSpanId)`` and
    ``("responseId", workspace, responseId)``."""

    def __init__(self, capacity: int = 200_000) -> None:
        self.capacity = capacity
        self._keys: OrderedDict[tuple[str, ...], tuple[str, str | None]] = OrderedDict()
        self._lock = threading.Lock()

    def note(self, record: InvocationRecord) -> None:
        """Remember the keys of a gateway record (cheap: called on the gateway's hot path)."""
        doc = record.data
        trace = doc.get("trace")
        trace = trace if isinstance(trace, dict) else {}
        self.note_keys(
            str(doc.get("workspace", DEFAULT_WORKSPACE)),
            str(doc.get("requestId", "")),
            trace.get("traceId"),
            trace.get("parentSpanId"),
            doc.get("responseId"),
        )

    def note_keys(
        self,
        workspace: str,
        request_id: str,
        trace_id: str | None,
        parent_span_id: str | None,
        response_id: str | None,
    ) -> None:
        """Remember a gateway call by its keys (another server's, read from the store)."""
        keys: list[tuple[str, ...]] = []
        if trace_id and parent_span_id:
            keys.append(("parent", workspace, trace_id, parent_span_id))
        if response_id:
            keys.append(("responseId", workspace, str(response_id)))
        if not keys:
            return
        value = (request_id, str(trace_id) if trace_id else None)
        with self._lock:
            for key in keys:
                self._keys[key] = value
                self._keys.move_to_end(key)
            while len(self._keys) > self.capacity:
                self._keys.popitem(last=False)

    def match(self, doc: Mapping[str, Any], workspace: str) -> GatewayCall | None:
        """The gateway record of ``workspace`` that ``doc`` (an llm record decoded from a
        span that ``workspace`` exported) describes too, or None."""
        return self.match_keys(call_keys(doc, workspace))

    def match_keys(self, keys: Sequence[tuple[str, ...]]) -> GatewayCall | None:
        """`match` by the keys `call_keys` gave (a worker process works them out)."""
        with self._lock:
            for key in keys:
                found = self._keys.get(key)
                if found is not None:
                    return GatewayCall(found[0], found[1], key[0])
        return None


def call_keys(doc: Mapping[str, Any], workspace: str) -> tuple[tuple[str, ...], ...]:
    """The keys `GatewayCallIndex.match` looks ``doc``, an llm record decoded from a span, up
    by: its trace and span ids, and the upstream's response id, each within ``workspace``,
    the exporter's (a decoded document names none: the record takes the caller's workspace
    when it is validated)."""
    trace = doc.get("trace")
    keys: list[tuple[str, ...]] = []
    if isinstance(trace, Mapping) and trace.get("traceId") and trace.get("spanId"):
        keys.append(("parent", workspace, trace["traceId"], trace["spanId"]))
    if doc.get("responseId"):
        keys.append(("responseId", workspace, str(doc["responseId"])))
    return tuple(keys)


_LINK_FIELDS = ("trace", "timestamp", "latencyMs", "error", "status", "requestMetadata")


def link_fields(doc: Mapping[str, Any]) -> dict[str, Any]:
    """What `merged_link` reads of a decoded record: all a worker process that decoded the
    span hands on for it."""
    return {k: doc[k] for k in _LINK_FIELDS if k in doc}


def merged_link(fields: Mapping[str, Any], call: GatewayCall, *, workspace: str) -> Span | None:
    """The link a merged llm span leaves in its trace (in ``workspace``, the exporter's), or
    None when it would stand alone: a root span in a trace other than the record's.
    ``fields`` are the span's decoded record's `link_fields`."""
    trace = fields.get("trace")
    if not isinstance(trace, Mapping) or not trace.get("traceId") or not trace.get("spanId"):
        return None
    parent = trace.get("parentSpanId") or None
    if parent is None and trace["traceId"] != call.trace_id:
        return None
    start = parse_timestamp(str(fields["timestamp"]))
    latency = fields.get("latencyMs")
    error = fields.get("error") if isinstance(fields.get("error"), Mapping) else None
    app = (fields.get("requestMetadata") or {}).get("application_name")
    return Span(
        trace_id=str(trace["traceId"]),
        span_id=str(trace["spanId"]),
        parent_span_id=parent,
        kind=str(trace.get("spanKind") or "llm"),
        name=str(trace.get("name") or "model call"),
        start=start,
        end=start + timedelta(milliseconds=latency if isinstance(latency, int) else 0),
        status="ERROR" if fields.get("status") == "ERROR" else "OK",
        error=(
            SpanError(error.get("type"), error.get("message"), error.get("stackTrace"))
            if error
            else None
        ),
        attributes={MERGED_INTO: call.request_id, MERGED_BY: call.by},
        session_id=trace.get("sessionId"),
        app=str(app)[:TEXT_MAX] if app else None,
        workspace=workspace,
        source="otlp",
    )


def fuse_links(
    spans: Sequence[Span], lookup: Callable[[str], InvocationRecord | None]
) -> list[Span]:
    """A trace's spans with each link replaced by its record: the link's span id, parent
    and name, the record's timings, status, tokens and bodies (``lookup`` finds a record
    kept outside the trace — a call with no ``traceparent``). The record's own node goes;
    spans under it move under the fused node. A link whose record is not (yet) stored stays
    as it is."""
    links = sorted(
        (s for s in spans if s.record is None and isinstance(s.attributes.get(MERGED_INTO), str)),
        key=lambda s: (s.start, s.span_id),
    )
    if not links:
        return list(spans)
    by_request = {s.record.request_id: s for s in spans if s.record is not None}
    fused: dict[str, Span] = {}  # requestId → its fused node
    moved: dict[str, str] = {}  # old parent span id → the fused node's span id
    dropped: set[int] = {id(s) for s in links}
    for link in links:
        request_id = str(link.attributes[MERGED_INTO])
        if request_id in fused:  # a second span that wrapped the same call
            moved[link.span_id] = fused[request_id].span_id
            continue
        own = by_request.get(request_id)
        record = own.record if own is not None else lookup(request_id)
        if record is None:
            dropped.discard(id(link))
            continue
        if own is not None:
            dropped.add(id(own))
            moved[own.span_id] = link.span_id
        fused[request_id] = _fused(link, record)
    out = []
    for span in sorted(
        [s for s in spans if id(s) not in dropped] + list(fused.values()),
        key=lambda s: (s.start, s.span_id),
    ):
        target = moved.get(span.parent_span_id or "")
        if target is not None and target != span.span_id:
            span = replace(span, parent_span_id=target)
        out.append(span)
    return out


def _fused(link: Span, record: InvocationRecord) -> Span:
    trace = dict(record.data.get("trace") or {})
    trace.setdefault("traceId", link.trace_id)
    view = span_from_record(InvocationRecord({**record.data, "trace": trace}, record.derived))
    return replace(
        view,
        trace_id=link.trace_id,
        span_id=link.span_id,
        parent_span_id=link.parent_span_id,
        name=link.name,
    )
