"""The Arrow shapes batches are inserted in: each column type's Arrow type, and the spans'
table. Nothing here imports DuckDB, so what converts batches without a store (the recorder
process, the OTLP decoding workers) loads pyarrow alone."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import orjson

from llmtrail.schema import Column, Type
from llmtrail.span import SPAN_COLUMNS, Span, SpanError

if TYPE_CHECKING:
    import pyarrow as pa


@functools.cache
def arrow_types() -> dict[Type, pa.DataType]:
    """Each column type's Arrow type. pyarrow (~60 MB with numpy) loads with the first batch
    written, not when the store opens: a server at rest reads without it."""
    import pyarrow as pa

    return {
        Type.STRING: pa.string(),
        Type.INT: pa.int64(),
        Type.BOOL: pa.bool_(),
        Type.TIMESTAMP: pa.timestamp("us", tz="UTC"),
        Type.DECIMAL: pa.decimal128(38, 9),
        Type.MAP: pa.map_(pa.string(), pa.string()),
        Type.JSON: pa.string(),
    }


def arrow_schema(columns: Sequence[Column]) -> pa.Schema:
    import pyarrow as pa  # on first use (`arrow_types`)

    types = arrow_types()
    return pa.schema([pa.field(c.name, types[c.type]) for c in columns])


def latest_of(spans: Sequence[Span]) -> list[Span]:
    """The batch's spans, the last copy of each (a span sent twice is stored once)."""
    return list({(s.workspace, s.trace_id, s.span_id): s for s in spans}.values())


def span_table(spans: Sequence[Span]) -> pa.Table:
    """The spans as they are inserted (every stored column but ``ingested_at``), built a
    column at a time: one pass per column is cheaper than appending row by row."""
    errors = [s.error or _NO_ERROR for s in spans]
    dumps = _json
    values: dict[str, list[Any]] = {
        "workspace": [s.workspace for s in spans],
        "trace_id": [s.trace_id for s in spans],
        "span_id": [s.span_id for s in spans],
        "parent_span_id": [s.parent_span_id for s in spans],
        "kind": [s.kind for s in spans],
        "name": [s.name for s in spans],
        "start_time": [s.start for s in spans],
        "end_time": [s.end for s in spans],
        "status": [s.status for s in spans],
        "error_type": [e.type for e in errors],
        "error_message": [e.message for e in errors],
        "error_stack_trace": [e.stack_trace for e in errors],
        "input": [None if s.input is None else dumps(s.input) for s in spans],
        "output": [None if s.output is None else dumps(s.output) for s in spans],
        "attributes": [dumps(s.attributes) if s.attributes else None for s in spans],
        "tags": [dumps(list(s.tags)) if s.tags else None for s in spans],
        "session_id": [s.session_id for s in spans],
        "app": [s.app for s in spans],
        "source": [s.source for s in spans],
    }
    import pyarrow as pa  # with the first spans written (`arrow_types`)

    schema = _arrow()
    arrays = [pa.array(values[f.name], type=f.type) for f in schema]
    return pa.Table.from_arrays(arrays, schema=schema)


@functools.cache
def _arrow() -> pa.Schema:
    return arrow_schema([c for c in SPAN_COLUMNS if c.name != "ingested_at"])


_NO_ERROR = SpanError()


def _json(value: Any) -> str | None:
    if value is None:
        return None
    return orjson.dumps(value, default=str, option=orjson.OPT_NON_STR_KEYS).decode()
