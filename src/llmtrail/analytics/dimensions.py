"""A record dimension (``modelId``, ``requestMetadata.tenant_id``,
``inferenceProfile.tags.dept``, …) as a SQL expression over the ``records`` table, for the
aggregations that group or filter by one: budgets' spend, cost attribution. Names come from
the schema; a map key is a bound parameter, never pasted."""

from __future__ import annotations

from typing import Any

from llmtrail.errors import ValidationError
from llmtrail.store.schema import COLUMN_BY_PATH, RecordSchema, Type, metadata_column_name

_MAPS = {"requestMetadata": "request_metadata", "inferenceProfile.tags": "inference_profile_tags"}


def dimension_sql(dimension: str, schema: RecordSchema) -> tuple[str, list[Any]]:
    """The expression and its parameters; a `ValidationError` for an unknown dimension."""
    path = tuple(dimension.split("."))
    column = COLUMN_BY_PATH.get(path)
    if column is not None and column.type in (Type.STRING, Type.INT, Type.BOOL):
        return f'"{column.name}"', []
    for prefix, map_column in _MAPS.items():
        head = prefix + "."
        if dimension.startswith(head) and len(dimension) > len(head):
            key = dimension[len(head) :]
            if prefix == "requestMetadata" and key in schema.promoted_keys:
                return f'coalesce("{metadata_column_name(key)}", {map_column}[?])', [key]
            return f"{map_column}[?]", [key]
    known = sorted(".".join(c.path) for c in COLUMN_BY_PATH.values() if c.type is Type.STRING)
    raise ValidationError(
        "dimension",
        f"{dimension!r} is not a dimension; use requestMetadata.KEY, inferenceProfile.tags.KEY "
        f"or one of {', '.join(known[:12])}, …",
    )
