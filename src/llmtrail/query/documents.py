"""The record (or one object inside it) as JSON text, rebuilt in SQL: ``@message``.

The store splits a record into typed columns, maps, bodies and the ``extra`` residue; this
module puts the pieces under one path back together in the query itself, so that
``filter @message like /timeout/`` and ``fields @message`` work on both engines: each present
column becomes a ``"key":value`` member, members nest by their path, maps and ``extra`` are
merged in with JSON merge-patch (``extra`` last, as the store's own `merge_into` does).

The text has the record's keys and values but not necessarily its key order or spacing, and
ClickHouse escapes ``/`` as ``\\/``; the record API, not ``@message``, returns records
byte for byte.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from sqlglot import exp

from llmtrail.query.dialects import SqlDialect, call, case, number, string
from llmtrail.query.relations import Relation, column
from llmtrail.schema import BODY_COLUMNS, RecordSchema, Role, Type


@dataclass
class _Node:
    members: list[tuple[str, exp.Expr]] = field(default_factory=list)
    children: dict[str, _Node] = field(default_factory=dict)
    merges: list[exp.Expr] = field(default_factory=list)


def document(
    prefix: tuple[str, ...], schema: RecordSchema, d: SqlDialect, rel: Relation
) -> exp.Expr:
    """JSON object text of everything the record holds under ``prefix`` (``()`` for the
    whole record), ``NULL`` when it holds nothing there."""
    root = _Node()
    for col in schema.record_columns:
        if col.role is Role.INTERNAL or col.path[: len(prefix)] != prefix:
            continue
        rest = col.path[len(prefix) :]
        ref = column(col.name, rel.records)
        if not rest:  # prefix is a map column itself
            root.merges.append(d.map_json(ref))
            continue
        node = _walk(root, rest[:-1])
        if col.type is Type.MAP:
            _walk(node, rest[-1:]).merges.append(d.map_json(ref))
        elif col.type is Type.TIMESTAMP:
            node.members.append((rest[-1], _timestamp_json(ref, d)))
        else:
            node.members.append((rest[-1], d.to_json(ref)))  # NULL stays NULL
    if rel.bodies is not None:
        for col in BODY_COLUMNS:
            if col.type is Type.JSON and col.path[: len(prefix)] == prefix and col.path != prefix:
                rest = col.path[len(prefix) :]
                _walk(root, rest[:-1]).members.append((rest[-1], column(col.name, rel.bodies)))
    extra = column("extra", rel.records)
    root.merges.append(d.json_raw(extra, prefix) if prefix else extra)
    return _build(root, d)


def _walk(node: _Node, path: tuple[str, ...]) -> _Node:
    for part in path:
        node = node.children.setdefault(part, _Node())
    return node


def _build(node: _Node, d: SqlDialect) -> exp.Expr:
    # Each piece appears once in the tree: NULL propagates through strict concatenation, so a
    # missing value drops its member and an empty object becomes NULL without repeating it.
    parts = [
        d.concat_strict(string(json.dumps(key) + ":"), value)
        for key, value in node.members + [(k, _build(c, d)) for k, c in node.children.items()]
    ]
    obj: exp.Expr = exp.Null()
    if parts:
        inner = exp.Nullif(this=d.join_nonnull(parts, ","), expression=string(""))
        obj = d.concat_strict(string("{"), inner, string("}"))
    for other in node.merges:
        if isinstance(obj, exp.Null):
            obj = other
            continue
        left = exp.Coalesce(this=obj, expressions=[string("{}")])
        right = exp.Coalesce(this=other, expressions=[string("{}")])
        obj = exp.Nullif(this=d.merge_json(left, right), expression=string("{}"))
    return obj


def _timestamp_json(ts: exp.Expr, d: SqlDialect) -> exp.Expr:
    """Milliseconds when they suffice, microseconds otherwise, as the record is written."""
    text = d.timestamp_text(ts)
    whole_ms = exp.EQ(
        this=exp.Mod(this=d.epoch_us(ts), expression=number(1000)), expression=number(0)
    )
    short = call("concat", d.substr(text, number(1), number(23)), string("Z"))
    return call("concat", string('"'), case((whole_ms, short), default=text), string('"'))
