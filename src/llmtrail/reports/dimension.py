"""The record field a chargeback (or any grouping) splits by, as SQL with bound parameters.

A dimension is named the way queries name fields — by its path in the record's JSON — so it
does not change when a ``requestMetadata`` key is promoted to a column:

* a column's own path (``modelId``, ``provider``, ``identity.arn``, a promoted
  ``requestMetadata.tenant_id`` → ``meta_tenant_id``) reads the typed column;
* a key of a string map (``requestMetadata.team``, ``requestHeaders.user-agent``; the rest of
  the path, dots included, is the key) is a map lookup with the key as a bound parameter;
* any other path (``inferenceProfile.tags.dept``) is read from the ``extra`` JSON column with
  a JSON Pointer, also bound;
* a bare name that is no part of the record's own shape (``tenant_id``, not ``input``)
  means ``requestMetadata.<name>``.

`resolve_dimension` is pure: it maps a path and a schema to SQL text built only from the
schema's own column names, plus the parameter values.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from llmtrail.errors import ValidationError
from llmtrail.store.schema import Column, RecordSchema, Type

DEFAULT_DIMENSION = "requestMetadata.tenant_id"
PARAM = "dimension_key"


@dataclass(frozen=True)
class Dimension:
    """A resolved dimension: ``sql`` is a VARCHAR expression over ``records`` that uses the
    bound ``params``; ``label`` names it for people (``tenant`` for ``…tenant_id``)."""

    path: str
    sql: str
    label: str
    params: dict[str, Any] = field(default_factory=dict)


def resolve_dimension(path: str, schema: RecordSchema) -> Dimension:
    """The SQL that reads field ``path`` of each record. Raises `ValidationError` on
    ``dimension`` for an empty path or one that names a timestamp or internal column."""
    text = path.strip()
    parts = tuple(text.split("."))
    if not text or any(not p for p in parts) or text.startswith("@"):
        raise ValidationError(
            "dimension", f"expected a record field such as {DEFAULT_DIMENSION}, got {path!r}"
        )
    columns: dict[tuple[str, ...], Column] = {c.path: c for c in schema.record_columns if c.path}
    maps = [c for c in schema.record_columns if c.type is Type.MAP]
    if len(parts) == 1 and not any(c.path[:1] == parts for c in columns.values()):
        parts = ("requestMetadata", parts[0])
    held = columns.get(parts)
    if held is not None and held.type is not Type.MAP:
        return Dimension(text, _as_text(held), _label(parts[-1]))
    for mapping in maps:
        depth = len(mapping.path)
        if parts[:depth] == mapping.path:
            if len(parts) == depth:
                break  # the whole map is no dimension
            key = ".".join(parts[depth:])
            promoted = columns.get((*mapping.path, key))
            if promoted is not None:
                return Dimension(text, _as_text(promoted), _label(key))
            return Dimension(text, f'"{mapping.name}"[${PARAM}]', _label(key), {PARAM: key})
    else:
        if not any(c.path[: len(parts)] == parts for c in columns.values()):
            pointer = "".join("/" + p.replace("~", "~0").replace("/", "~1") for p in parts)
            return Dimension(
                text, f"json_extract_string(extra, ${PARAM})", _label(parts[-1]), {PARAM: pointer}
            )
    raise ValidationError(
        "dimension", f"{path!r} is not a single value of a record; name a field inside it"
    )


def _as_text(column: Column) -> str:
    if column.type is Type.STRING:
        return f'"{column.name}"'
    if column.type in (Type.INT, Type.BOOL):
        return f'CAST("{column.name}" AS VARCHAR)'
    raise ValidationError("dimension", f"{column.dotted} is a {column.type.value}, not a category")


def _label(name: str) -> str:
    """``tenant_id`` → ``tenant``, ``cost_center`` → ``cost center``, ``modelId`` → ``model``."""
    for suffix in ("_id", "Id"):
        if name.endswith(suffix) and len(name) > len(suffix):
            name = name[: -len(suffix)]
    return name.replace("_", " ")
