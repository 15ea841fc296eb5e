"""Record ↔ row conversion, derived from `schema` for every backend.

``to_columns`` splits a batch of records into the record table's and the body table's
columns; ``from_row`` puts one record back together. Both are pure functions over plain
Python values. ``to_columns`` runs for every record stored, so it walks each record's own
keys once, with the places of every key worked out once per schema (`_plan`).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import orjson

from llmtrail.record import InvocationRecord, format_timestamp, parse_timestamp
from llmtrail.schema import (
    HELD_PATHS,
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
    records: Sequence[InvocationRecord],
    schema: RecordSchema,
    ingested_at: datetime,
    *,
    for_arrow: bool = False,
) -> tuple[dict[str, list[Any]], dict[str, list[Any]]]:
    """The record-table and body-table columns of ``records`` (bodies only for records that
    have one), built column by column so that no per-row dict is needed.

    One pass over each record's own keys (not over the columns: most are absent from any one
    record) puts every value a column holds at its row and keeps the rest, the residue, for
    ``extra``: what `held_values` and `residue` give, without building either. A record the
    pass cannot take as it is (a dict subclass where a column's parent object is) goes the
    general way, through those two functions.

    With ``for_arrow``, the money columns keep the values as the record has them and the
    timestamp column holds RFC 3339 text (the record's own, when it is the plainest shape),
    for Arrow to cast, which is several times cheaper than building `Decimal` and `datetime`
    objects; values, or text, that Arrow refuses are the caller's to convert the exact way."""
    plan = _plan(schema)
    n = len(records)
    cols: dict[str, list[Any]] = {name: [None] * n for name in plan.names}
    # where each held key's value goes: the record columns, and the timestamp's, metadata's
    # and bodies' own lists, worked on below
    stamps, metas, ins, outs = [None] * n, [None] * n, [None] * n, [None] * n
    special = {"timestamp": stamps, "request_metadata": metas, "in": ins, "out": outs}
    lists = {**cols, **special}
    top = {key: lists[name] for key, name in plan.top.items()}
    nested = {
        key: {sub: lists[name] for sub, name in subs.items()} for key, subs in plan.nested.items()
    }
    money = [] if for_arrow else [cols[name] for name in plan.money]
    promoted = {key: cols[name] for key, name in plan.promoted.items()}
    promoted_keys = plan.promoted_keys
    derived_col, extra_col = cols["derived"], cols["extra"]
    body_ids: list[Any] = []
    body_in: list[Any] = []
    body_out: list[Any] = []
    derived_texts: dict[Any, str | None] = {}  # this batch's (few) distinct ones
    dumps, plain_stamp, top_get, nested_get = (
        orjson.dumps,
        _PLAIN_STAMP.fullmatch,
        top.get,
        nested.get,
    )
    fromisoformat = datetime.fromisoformat
    for i, record in enumerate(records):
        doc = record.data
        extra: dict[str, Any] | None = None
        for key, value in doc.items():
            column = top_get(key)
            if column is not None:
                if value is None:  # an explicit null stays in the residue, to be written back
                    if extra is None:
                        extra = {}
                    extra[key] = None
                else:
                    column[i] = value
                continue
            subs = nested_get(key)
            if subs is not None and type(value) is dict:
                inner: dict[str, Any] | None = None
                for sub, item in value.items():
                    column = subs.get(sub)
                    if column is None or item is None:
                        if inner is None:
                            inner = {}
                        inner[sub] = item
                    else:
                        column[i] = item
                if inner is not None or not value:
                    if extra is None:
                        extra = {}
                    extra[key] = {} if inner is None else inner
            elif subs is not None and isinstance(value, dict):
                extra = _general(doc, i, lists, plan)
                break
            else:
                if extra is None:
                    extra = {}
                extra[key] = value
        for column in money:
            if column[i] is not None:
                column[i] = Decimal(str(column[i]))
        raw = stamps[i]
        if raw is not None:
            stamp: Any = None
            if type(raw) is str and plain_stamp(raw) is not None:
                if for_arrow:  # Arrow's parser refuses what fromisoformat refuses (month 13)
                    stamp = raw
                else:
                    try:
                        stamps[i] = stamp = fromisoformat(raw)  # UTC already: "Z"
                    except ValueError:  # the general way says why
                        stamp = None
                stored = len(raw) == 24 or (len(raw) == 27 and raw[23:26] != "000")
            if stamp is None:
                stamp = parse_timestamp(raw)
                stamps[i] = stamp.isoformat() if for_arrow else stamp
                stored = format_timestamp(stamp) == raw
            if not stored:
                if extra is None:
                    extra = {}
                extra["timestamp"] = raw  # keep the precision it arrived with
        meta = metas[i]
        if meta is not None:
            if type(meta) is dict:
                rest = {}
                for key, value in meta.items():
                    column = promoted.get(key)
                    if column is None:
                        rest[key] = value
                    else:
                        column[i] = value
                metas[i] = rest
            else:  # what the general way does with it (and fails as it fails)
                for key, column in promoted.items():
                    column[i] = meta.get(key)
                metas[i] = {k: v for k, v in meta.items() if k not in promoted_keys}
        derived = record.derived
        try:
            derived_col[i] = derived_texts[derived]
        except (KeyError, TypeError):  # not seen in this batch, or a list
            derived_col[i] = text = dumps(list(derived)).decode() if derived else None
            if type(derived) is tuple and all(type(name) is str for name in derived):
                derived_texts[derived] = text  # only names: equal tuples, equal text
        if extra:
            extra_col[i] = dumps(extra).decode()
        body = ins[i], outs[i]
        if body[0] is not None or body[1] is not None:
            body_ids.append(record.record_id)
            body_in.append(None if body[0] is None else dumps(body[0]).decode())
            body_out.append(None if body[1] is None else dumps(body[1]).decode())
    cols["timestamp"], cols["request_metadata"] = stamps, metas
    cols["ingested_at"] = [ingested_at] * n
    bodies = dict(zip(BODY_NAMES, (body_ids, body_in, body_out), strict=True))
    return cols, bodies


_TIMESTAMP = ("timestamp",)
_METADATA = ("requestMetadata",)
_INPUT_BODY = ("input", "inputBodyJson")
_OUTPUT_BODY = ("output", "outputBodyJson")
BODY_NAMES = ("record_id", "input_body_json", "output_body_json")
# Timestamps `parse_timestamp` takes as `datetime.fromisoformat` does (UTC, a "Z", at most six
# fraction digits, nothing to strip), in years 1000-9998, whose text `format_timestamp` gives
# back exactly when the fraction has three digits, or six not ending in 000
_PLAIN_STAMP = re.compile(
    r"(?!9999)[1-9]\d{3}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{3}|\.\d{6})?Z", re.ASCII
)
_SPECIAL = frozenset({"timestamp", "request_metadata", "derived", "ingested_at", "extra"})
# the lists of `to_columns` that hold a held path's value for a while (not record columns)
_SPECIAL_PATHS = {
    _TIMESTAMP: "timestamp",
    _METADATA: "request_metadata",
    _INPUT_BODY: "in",
    _OUTPUT_BODY: "out",
}


@dataclass(frozen=True)
class _Plan:
    """Where `to_columns` puts what a record holds, for one schema (built once per schema)."""

    names: tuple[str, ...]  # the record columns, in the table's order
    top: dict[str, str]  # a top-level key a column holds → the list it goes to
    nested: dict[str, dict[str, str]]  # a parent key → its second keys → the list
    paths: dict[tuple[str, ...], str]  # every held path → the list (the general way)
    money: tuple[str, ...]  # the DECIMAL columns
    promoted: dict[str, str]  # a promoted requestMetadata key → its column
    promoted_keys: frozenset[str]


@functools.lru_cache(maxsize=16)
def _plan(schema: RecordSchema) -> _Plan:
    paths = {**{c.path: c.name for c in _plain_columns(schema)}, **_SPECIAL_PATHS}
    assert set(paths) == HELD_PATHS, "every path a column holds has a place in to_columns"
    assert all(len(p) <= 2 for p in paths)
    top = {p[0]: name for p, name in paths.items() if len(p) == 1}
    nested: dict[str, dict[str, str]] = {}
    for p, name in paths.items():
        if len(p) == 2:
            nested.setdefault(p[0], {})[p[1]] = name
    assert not set(top) & set(nested)  # no held key is also a held key's parent
    return _Plan(
        names=tuple(c.name for c in schema.record_columns),
        top=top,
        nested=nested,
        paths=paths,
        money=tuple(c.name for c in _plain_columns(schema) if c.type is Type.DECIMAL),
        promoted={k: metadata_column_name(k) for k in schema.promoted_keys},
        promoted_keys=frozenset(schema.promoted_keys),
    )


def _general(
    doc: dict[str, Any], i: int, lists: dict[str, list[Any]], plan: _Plan
) -> dict[str, Any]:
    """Put record ``i`` in place the general way (`held_values`, `residue`); its residue."""
    for name in plan.paths.values():
        lists[name][i] = None  # what the fast pass put there before it gave up
    for path, value in held_values(doc).items():
        lists[plan.paths[path]][i] = value
    return residue(doc)


@functools.lru_cache(maxsize=16)
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
