"""A dimension — the record field that cost attribution, reports, budgets and alarms group or
filter by — named and resolved one way for all of them.

A dimension is named as a query names a field, by its path in the record's JSON, and it is
resolved by the query language's own `FieldResolver`, so a ``requestMetadata`` key reads the
same whether it is promoted to a column or not, and each engine gets its own spelling:

* a column of text, integers or booleans (``modelId``, ``identity.arn``, ``status``,
  ``input.inputTokenCount``), as text;
* a key of a string map (``requestMetadata.team``, ``inferenceProfile.tags.dept``,
  ``requestHeaders.user-agent``; the rest of the path, dots included, is the key);
Refused, on field ``dimension``: an empty path, ``@`` fields, timestamps and money (no
category), a whole object or map (``input``, ``requestMetadata``), a body, what lies under a
scalar, and a path the record's shape does not hold (``tenant_id`` alone, ``appLabels.dept``:
a typo there would group every record under one empty value instead of failing). Every
surface validates with `dimension_path`, so a name one accepts the others accept.
"""

from __future__ import annotations

from sqlglot import exp

from llmtrail.errors import ValidationError
from llmtrail.query.dialects import SqlDialect
from llmtrail.query.fields import BODY_PATHS, FieldResolver
from llmtrail.query.kinds import Kind
from llmtrail.query.relations import Relation
from llmtrail.schema import RECORD_COLUMNS, RecordSchema, Type

__all__ = ["KEY_MAX", "dimension_expr", "dimension_name", "dimension_path", "record_path"]

KEY_MAX = 256  # characters of a map key
_EXAMPLE = "requestMetadata.tenant_id"
_CATEGORIES = (Type.STRING, Type.INT, Type.BOOL)
_COLUMNS = {c.path: c for c in RECORD_COLUMNS if c.path}
_MAPS = tuple(c.path for c in RECORD_COLUMNS if c.type is Type.MAP)


def _refuse(name: str, why: str) -> ValidationError:
    return ValidationError("dimension", f"{name!r} {why}; name a field such as {_EXAMPLE}")


def dimension_path(name: object) -> tuple[str, ...]:
    """The record path ``name`` stands for; a `ValidationError` on ``dimension`` when it
    names no single category of a record."""
    if not isinstance(name, str):
        raise ValidationError("dimension", f"must be a record field such as {_EXAMPLE}")
    text = name.strip()
    parts = tuple(text.split("."))
    if not text or text.startswith("@") or any(not p for p in parts):
        raise _refuse(name, "is not a record field")
    for mapping in _MAPS:
        if parts[: len(mapping)] == mapping:
            key = ".".join(parts[len(mapping) :])
            if not key:
                raise _refuse(name, "is a whole map")
            if len(key) > KEY_MAX:
                raise _refuse(name, f"has a key longer than {KEY_MAX} characters")
            return parts
    if parts[:2] in BODY_PATHS:
        raise _refuse(name, "is in a body, not a category")
    column = _COLUMNS.get(parts)
    if column is not None:
        if column.type not in _CATEGORIES:
            raise _refuse(name, f"is a {column.type.value}, not a category")
        return parts
    if any(parts[:n] in _COLUMNS for n in range(1, len(parts))):
        raise _refuse(name, "lies under a single value")
    if any(path[: len(parts)] == parts for path in _COLUMNS):
        raise _refuse(name, "is a whole object")
    raise _refuse(name, "is no field of the record (a metadata key is requestMetadata.KEY)")


def dimension_name(name: object) -> str:
    """The dimension's name, checked and stripped of surrounding blanks."""
    return ".".join(dimension_path(name))


def record_path(name: object) -> tuple[str, ...]:
    """The keys to follow in a record's JSON document to the dimension's value: as
    `dimension_path`, with a map key (dots included) as one key."""
    parts = dimension_path(name)
    for mapping in _MAPS:
        if parts[: len(mapping)] == mapping:
            return (*mapping, ".".join(parts[len(mapping) :]))
    return parts


def dimension_expr(name: str, schema: RecordSchema, dialect: SqlDialect, rel: Relation) -> exp.Expr:
    """The dimension's value in each row of ``rel`` as text (``NULL`` where a record has
    none), for ``dialect``; every key a literal of the tree, never pasted."""
    typed = FieldResolver(schema, dialect).resolve(dimension_path(name), rel)
    if typed is None:  # not reached: dimension_path refuses @ fields
        raise _refuse(name, "is not a record field")
    if typed.kind in (Kind.INT, Kind.BOOL):
        return dialect.to_text(typed.sql)
    return typed.sql
