"""An OTLP export's model calls sorted out in the serving process: merged into the gateway
calls they describe (`GatewayCallIndex`, by the exporter's workspace), refused when they are
not valid records, or kept as records for the record path.

A large export is decoded in a worker process (`decode_packed`), which also validates its
model calls as records there, and pickles them one by one, and its other spans all at once
(`Packed`). The serving process then reads only each call's merge keys and the fields a link
reads (`sort_packed_calls`), and passes on the records it keeps, unopened. A small export is
decoded in the serving process (`sort_calls`). Both give the same records, links and refusals
(`tests/test_otlp_packed.py`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

from llmtrail.capture.merge import GatewayCallIndex, call_keys, link_fields, merged_link
from llmtrail.capture.otlp import decode_traces
from llmtrail.errors import ValidationError
from llmtrail.pipeline.packed import Packed, SpanFrames
from llmtrail.record import InvocationRecord
from llmtrail.span import Span

# (records, the links merged calls leave, why calls were refused)
Sorted = tuple[list[InvocationRecord], list[Span], list[str]]


class PackedCall(NamedTuple):
    """One model call of a `PackedExport`."""

    keys: tuple[tuple[str, ...], ...]  # what it merges by (`call_keys`)
    fields: dict[str, Any]  # what its link reads (`link_fields`)
    position: int | None  # its record's in ``PackedExport.records``; None when refused
    refusal: str | None  # why it is not a valid record


@dataclass(frozen=True)
class PackedExport:
    """An export a worker process decoded: its model calls, their valid records (one JSON
    document each) and its other spans (framed, or pickled when they cannot be)."""

    calls: list[PackedCall]
    records: Packed[InvocationRecord]
    spans: SpanFrames | Packed[Span]


def decode_packed(
    body: bytes, content_type: str, *, workspace: str, max_json_depth: int
) -> PackedExport:
    """`decode_traces`, then each model call validated as a record (a worker process's job:
    it reads nothing of the server's state)."""
    decoded = decode_traces(body, content_type, workspace=workspace, max_json_depth=max_json_depth)
    calls: list[PackedCall] = []
    records: list[InvocationRecord] = []
    for doc in decoded.records:
        keys, fields = call_keys(doc, workspace), link_fields(doc)
        try:
            record = InvocationRecord.from_dict(doc, source="otlp", workspace=workspace)
        except ValidationError as exc:
            calls.append(PackedCall(keys, fields, None, str(exc)))
            continue
        calls.append(PackedCall(keys, fields, len(records), None))
        records.append(record)
    return PackedExport(calls, Packed.records(records), SpanFrames.of(decoded.spans, workspace))


def sort_calls(index: GatewayCallIndex, docs: list[dict[str, Any]], workspace: str) -> Sorted:
    """The model calls of an export decoded here."""
    records: list[InvocationRecord] = []
    links: list[Span] = []
    rejected: list[str] = []
    for doc in docs:
        call = index.match_keys(call_keys(doc, workspace))
        if call is not None:
            link = merged_link(link_fields(doc), call, workspace=workspace)
            if link is not None:
                links.append(link)
            continue
        try:
            records.append(InvocationRecord.from_dict(doc, source="otlp", workspace=workspace))
        except ValidationError as exc:
            rejected.append(str(exc))
    return records, links, rejected


def sort_packed_calls(
    index: GatewayCallIndex, export: PackedExport, workspace: str
) -> tuple[Packed[InvocationRecord], list[Span], list[str]]:
    """`sort_calls` for an export a worker process decoded: the records kept stay packed."""
    keep: list[int] = []
    links: list[Span] = []
    rejected: list[str] = []
    for call_of in export.calls:
        call = index.match_keys(call_of.keys)
        if call is not None:
            link = merged_link(call_of.fields, call, workspace=workspace)
            if link is not None:
                links.append(link)
        elif call_of.position is None:
            rejected.append(str(call_of.refusal))
        else:
            keep.append(call_of.position)
    return export.records.select(keep), links, rejected
