"""Field paths → stored values, derived from `llmtrail.schema`.

A query names fields by their place in the record's JSON; the store splits the record into
typed columns, string maps, a JSON ``extra`` column and the ``bodies`` table. `FieldResolver`
maps one onto the other, so queries do not change when a ``requestMetadata`` key is promoted
to a column:

* ``@timestamp``, ``@requestId``, ``@message``, ``@ptr``/``@recordId``, ``@ingestionTime``;
* a column's own path (``modelId``, ``input.inputTokenCount``, a promoted
  ``requestMetadata.tenant_id``) → the typed column;
* a path into a string map (``requestMetadata.team``, ``requestHeaders.user-agent``) → a
  lookup (the rest of the path, dots included, is the key);
* a path into a body (``output.outputBodyJson.stopReason``) → JSON extraction from ``bodies``;
* ``cost.*Usd`` → a DECIMAL (money is never a float);
* anything else → JSON extraction from ``extra``, where the store keeps every key no column
  holds (so ``inferenceProfile.tags.dept`` or an unknown Bedrock key is found).
"""

from __future__ import annotations

from sqlglot import exp

from llmtrail.query.dialects import SqlDialect
from llmtrail.query.documents import document
from llmtrail.query.keys import KEY_CHARS
from llmtrail.query.kinds import Kind, Typed
from llmtrail.query.relations import Relation, column
from llmtrail.record import BOUNDED_MAPS, STRING_LIMITS
from llmtrail.schema import BODY_COLUMNS, Column, RecordSchema, Role, Type

KINDS = {
    Type.STRING: Kind.STRING,
    Type.INT: Kind.INT,
    Type.BOOL: Kind.BOOL,
    Type.TIMESTAMP: Kind.TIMESTAMP,
    Type.JSON: Kind.ANY,
    Type.DECIMAL: Kind.DECIMAL,
}
SYSTEM_FIELDS = {
    "@timestamp": "timestamp",
    "@requestId": "request_id",
    "@ptr": "record_id",
    "@recordId": "record_id",
    "@ingestionTime": "ingested_at",
}
BODY_PATHS: dict[tuple[str, ...], str] = {
    c.path: c.name for c in BODY_COLUMNS if c.type is Type.JSON
}
# columns whose text the record's validation keeps short enough to be a key as it is
_SHORT_PATHS = frozenset(
    {path for path, longest in STRING_LIMITS.items() if longest <= KEY_CHARS}
    | {("recordId",), ("workspace",)}
)
_SHORT_MAPS = frozenset(BOUNDED_MAPS) | {("requestMetadata",)}


def touches_bodies(path: tuple[str, ...]) -> bool:
    """Whether resolving ``path`` reads the ``bodies`` table."""
    return path[:1] == ("@message",) or path[:2] in BODY_PATHS or path in (("input",), ("output",))


class FieldResolver:
    """Resolves record paths for one schema and dialect."""

    def __init__(self, schema: RecordSchema, dialect: SqlDialect) -> None:
        self.schema = schema
        self.dialect = dialect
        self.columns: dict[tuple[str, ...], Column] = {
            c.path: c for c in schema.record_columns if c.path
        }
        self.maps = [c for c in schema.record_columns if c.type is Type.MAP]

    def resolve(self, path: tuple[str, ...], rel: Relation) -> Typed | None:
        """The value at ``path``, or None for an unknown ``@`` system field."""
        d = self.dialect
        if path[0].startswith("@"):
            if len(path) == 1 and path[0] == "@message":
                return Typed(document((), self.schema, d, rel), Kind.ANY)
            name = SYSTEM_FIELDS.get(path[0])
            if name is None or len(path) > 1:
                return None
            kind = Kind.TIMESTAMP if name in ("timestamp", "ingested_at") else Kind.STRING
            return Typed(column(name, rel.records), kind, short=True)
        held = self.columns.get(path)
        if len(path) == 2 and path[0] == "cost" and path[1].endswith("Usd"):
            if held is None:
                text = d.json_text(column("extra", rel.records), path)
                return Typed(d.text_to_decimal(text), Kind.DECIMAL)
            ref = column(held.name, rel.records)
            if held.type is Type.DECIMAL:
                return Typed(ref, Kind.DECIMAL)
            textual = held.type in (Type.STRING, Type.JSON)
            return Typed(d.text_to_decimal(ref) if textual else d.to_decimal(ref), Kind.DECIMAL)
        if held is not None and held.type is not Type.MAP:
            short = held.path in _SHORT_PATHS or held.role is Role.METADATA
            kind = KINDS.get(held.type, Kind.ANY)
            return Typed(column(held.name, rel.records), kind, short=short)
        for body_path, body_column in BODY_PATHS.items():
            if path[:2] == body_path and rel.bodies is not None:
                doc = column(body_column, rel.bodies)
                return Typed(doc if len(path) == 2 else d.json_text(doc, path[2:]), Kind.ANY)
        for mapping in self.maps:
            depth = len(mapping.path)
            if path[:depth] == mapping.path:
                if len(path) == depth:
                    return Typed(document(path, self.schema, d, rel), Kind.ANY)
                key = ".".join(path[depth:])
                promoted = self.columns.get((*mapping.path, key))
                if promoted is not None:
                    return Typed(column(promoted.name, rel.records), Kind.STRING, short=True)
                lookup = d.map_get(column(mapping.name, rel.records), key)
                return Typed(lookup, Kind.STRING, short=mapping.path in _SHORT_MAPS)
        for depth in range(len(path) - 1, 0, -1):
            scalar = self.columns.get(path[:depth])
            if scalar is not None and scalar.type is not Type.MAP:
                return Typed(exp.Null(), Kind.ANY, None, True)  # no value under a scalar
        if any(c.path[: len(path)] == path for c in self.columns.values()):
            return Typed(document(path, self.schema, d, rel), Kind.ANY)  # an object, e.g. input
        return Typed(d.json_text(column("extra", rel.records), path), Kind.ANY)

    def raw(self, path: tuple[str, ...], rel: Relation) -> exp.Expr | None:
        """The JSON text at ``path`` (strings still quoted), for ``unnest``; None when the
        path is a typed column, which never holds a list."""
        d = self.dialect
        for body_path, body_column in BODY_PATHS.items():
            if path[:2] == body_path and rel.bodies is not None:
                return d.json_raw(column(body_column, rel.bodies), path[2:])
        if path[0].startswith("@") or path in self.columns:
            return None
        if any(path[: len(c.path)] == c.path for c in self.columns.values()):
            return None
        return d.json_raw(column("extra", rel.records), path)
