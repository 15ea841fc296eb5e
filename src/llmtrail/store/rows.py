"""Record ↔ row conversion, derived from `schema` for every backend.

``to_rows`` splits a record into its typed record-table row and its body row; ``from_row``
puts one back together. Both are pure functions over plain Python values.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import orjson

from llmtrail.record import InvocationRecord, format_timestamp, parse_timestamp
from llmtrail.schema import (
    Column,
    RecordSchema,
    Role,
    Type,
    held_values,
    merge_into,
    metadata_column_name,
    residue,
)


def to_columns(
    records: Sequence[InvocationRecord], schema: RecordSchema, ingested_at: datetime
) -> tuple[dict[str, list[Any]], dict[str, list[Any]]]:
    """The record-table and body-table columns of ``records`` (bodies only for records that
    have one), built column by column so that no per-row dict is needed."""
    cols: dict[str, list[Any]] = {c.name: [] for c in schema.record_columns}
    bodies: dict[str, list[Any]] = {c.name: [] for c in schema.body_columns}
    plain = [
        (_money(cols[c.name]) if c.type is Type.DECIMAL else cols[c.name].append, c.path)
        for c in _plain_columns(schema)
    ]
    promoted = [(cols[metadata_column_name(k)].append, k) for k in schema.promoted_keys]
    promoted_keys = frozenset(schema.promoted_keys)
    put_ts, put_meta = cols["timestamp"].append, cols["request_metadata"].append
    put_derived, put_extra = cols["derived"].append, cols["extra"].append
    put_id, put_in, put_out = (bodies[n].append for n in BODY_NAMES)
    for record in records:
        doc = record.data
        held = held_values(doc)
        get = held.get
        for append, path in plain:
            append(get(path))
        extra = residue(doc)
        raw = get(_TIMESTAMP)
        if raw is None:
            put_ts(None)
        else:
            stamp = parse_timestamp(raw)
            put_ts(stamp)
            if format_timestamp(stamp) != raw:
                extra["timestamp"] = raw  # keep the precision it arrived with
        meta = get(_METADATA)
        if meta is None:
            for append, _ in promoted:
                append(None)
            put_meta(None)
        else:
            for append, key in promoted:
                append(meta.get(key))
            put_meta({k: v for k, v in meta.items() if k not in promoted_keys})
        put_derived(orjson.dumps(list(record.derived)).decode() if record.derived else None)
        put_extra(orjson.dumps(extra).decode() if extra else None)
        body_in, body_out = get(_INPUT_BODY), get(_OUTPUT_BODY)
        if body_in is not None or body_out is not None:
            put_id(record.record_id)
            put_in(_json_or_none(body_in))
            put_out(_json_or_none(body_out))
    cols["ingested_at"] = [ingested_at] * len(records)
    return cols, bodies


_TIMESTAMP = ("timestamp",)
_METADATA = ("requestMetadata",)
_INPUT_BODY = ("input", "inputBodyJson")
_OUTPUT_BODY = ("output", "outputBodyJson")
BODY_NAMES = ("record_id", "input_body_json", "output_body_json")


_SPECIAL = frozenset({"timestamp", "request_metadata", "derived", "ingested_at", "extra"})


@functools.cache
def _plain_columns(schema: RecordSchema) -> tuple[Column, ...]:
    """Record columns copied as they are (not the timestamp, the metadata, or bookkeeping)."""
    return tuple(
        c for c in schema.record_columns if c.name not in _SPECIAL and c.role is not Role.METADATA
    )


def from_row(
    row: dict[str, Any], body: dict[str, Any] | None, schema: RecordSchema
) -> InvocationRecord:
    """Rebuild the record from its stored row (and body row, if fetched)."""
    doc: dict[str, Any] = {}
    meta: dict[str, str] | None = None
    for column in schema.record_columns:
        value = row.get(column.name)
        if value is None or column.role is Role.INTERNAL:
            continue
        if column.role is Role.METADATA:
            meta = meta if meta is not None else {}
            meta[column.path[1]] = value
        elif column.name == "request_metadata":
            meta = {**(meta or {}), **_as_map(value)}
        else:
            _set(doc, column, _from_stored(column, value))
    if meta is not None:
        doc["requestMetadata"] = meta
    if body:
        for key, path in (
            ("input_body_json", ("input", "inputBodyJson")),
            ("output_body_json", ("output", "outputBodyJson")),
        ):
            if body.get(key) is not None:
                doc.setdefault(path[0], {})[path[1]] = orjson.loads(body[key])
    if row.get("extra"):
        merge_into(doc, orjson.loads(row["extra"]))
    derived = tuple(orjson.loads(row["derived"])) if row.get("derived") else ()
    return InvocationRecord(_ordered(doc), derived)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

_ORDER = {
    k: i
    for i, k in enumerate(
        [
            "schemaType",
            "schemaVersion",
            "timestamp",
            "accountId",
            "identity",
            "region",
            "requestId",
            "operation",
            "modelId",
            "inferenceRegion",
            "requestMetadata",
            "input",
            "output",
            "errorCode",
        ]
    )
}


def _ordered(doc: dict[str, Any]) -> dict[str, Any]:
    """Bedrock's key order first, then llmtrail's, for readable output."""
    return dict(sorted(doc.items(), key=lambda kv: _ORDER.get(kv[0], len(_ORDER))))


def _set(doc: dict[str, Any], column: Column, value: Any) -> None:
    cur = doc
    for part in column.path[:-1]:
        cur = cur.setdefault(part, {})
    cur[column.path[-1]] = value


def _money(values: list[Any]) -> Any:
    """An appender that stores a decimal string (or number) as a `Decimal`."""

    def append(value: Any) -> None:
        values.append(None if value is None else Decimal(str(value)))

    return append


def _from_stored(column: Column, value: Any) -> Any:
    if column.type is Type.DECIMAL:
        return format(value, "f")
    if column.type is Type.TIMESTAMP:
        if isinstance(value, int):
            value = _EPOCH + timedelta(microseconds=value)
        return format_timestamp(value)
    if column.type is Type.MAP:
        return _as_map(value)
    if column.type is Type.JSON:
        return orjson.loads(value)
    return value


def _as_map(value: Any) -> dict[str, str]:
    if isinstance(value, dict):
        if set(value) == {"key", "value"} and isinstance(value["key"], list):
            return dict(zip(value["key"], value["value"], strict=True))
        return dict(value)
    return dict(value)  # list of (key, value) pairs from Arrow


def _json_or_none(value: Any) -> str | None:
    return None if value is None else orjson.dumps(value).decode()
