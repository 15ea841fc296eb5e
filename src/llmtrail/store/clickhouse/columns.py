"""Rows as ClickHouse holds them: the one difference from DuckDB is the ``Map``.

`llmtrail.store.rows` splits records into columns for every backend. ClickHouse cannot store
a ``NULL`` map, so "no ``requestHeaders``" and ``"requestHeaders": {}`` would read back alike.
Maps are therefore read back as absent when empty, and a record that really holds an empty
map, which nothing else would bring back, says so in its ``extra`` column (merged back on
output like every other key no column holds). A ``requestMetadata`` whose keys all went to
promoted columns comes back through those columns and needs no note.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import orjson
import pyarrow as pa

from llmtrail.schema import Column, RecordSchema, Type, metadata_column_name
from llmtrail.store.paging import epoch_us


def note_empty_maps(columns: dict[str, list[Any]], schema: RecordSchema) -> None:
    """Add an ``extra`` note for every empty map that reading back would lose (in place)."""
    promoted = [columns[metadata_column_name(k)] for k in schema.promoted_keys]
    extra = columns["extra"]
    for column in schema.record_columns:
        if column.type is not Type.MAP:
            continue
        for i, value in enumerate(columns[column.name]):
            if value or value is None:
                continue
            if column.name == "request_metadata" and any(p[i] is not None for p in promoted):
                continue
            note = orjson.loads(extra[i]) if extra[i] else {}
            cur = note
            for part in column.path[:-1]:
                cur = cur.setdefault(part, {})
            cur.setdefault(column.path[-1], {})
            extra[i] = orjson.dumps(note).decode()


def arrow_table(columns: dict[str, list[Any]], schema: pa.Schema) -> pa.Table:
    """The Arrow table of one batch's columns; maps as key/value lists, absent maps empty."""
    arrays = []
    for field in schema:
        values = columns[field.name]
        if pa.types.is_map(field.type):
            values = [[] if v is None else list(v.items()) for v in values]
        arrays.append(pa.array(values, type=field.type))
    return pa.Table.from_arrays(arrays, schema=schema)


def select_expression(column: Column) -> str:
    """How a column is read: timestamps as exact epoch microseconds."""
    ref = f"`{column.name}`"
    return f"toUnixTimestamp64Micro({ref})" if column.type is Type.TIMESTAMP else ref


def row_values(columns: Sequence[Column], row: Sequence[Any]) -> dict[str, Any]:
    """A stored row as `llmtrail.store.rows.from_row` takes it (empty maps are absent)."""
    values = dict(zip([c.name for c in columns], row, strict=True))
    for column in columns:
        if column.type is Type.MAP and not values[column.name]:
            values[column.name] = None
    return values


class Params:
    """Bound parameters of one query; `bind` returns the placeholder for a value."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}

    def bind(self, value: Any, type_: str) -> str:
        name = f"p{len(self.values)}"
        self.values[name] = value
        return f"{{{name}:{type_}}}"

    def micros(self, value: datetime) -> str:
        """A DateTime64 placeholder for an aware datetime, exact to the microsecond."""
        return f"fromUnixTimestamp64Micro({self.bind(epoch_us(value), 'Int64')}, 'UTC')"
