"""Printing data: ``--format table|json|csv`` (table by default)."""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Sequence
from typing import Any, TextIO

LOG_COLUMNS = (
    ("timestamp", ("timestamp",)),
    ("requestId", ("requestId",)),
    ("operation", ("operation",)),
    ("modelId", ("modelId",)),
    ("status", ("status",)),
    ("in", ("input", "inputTokenCount")),
    ("out", ("output", "outputTokenCount")),
    ("ms", ("latencyMs",)),
    ("provider", ("provider",)),
)


def _get(doc: dict[str, Any], path: tuple[str, ...]) -> Any:
    for part in path:
        if not isinstance(doc, dict):
            return None
        doc = doc.get(part)  # type: ignore[assignment]
    return doc


def print_records(records: Sequence[dict[str, Any]], fmt: str, out: TextIO = sys.stdout) -> None:
    if fmt == "json":
        for record in records:
            out.write(json.dumps(record) + "\n")
        return
    rows = [[_get(r, path) for _, path in LOG_COLUMNS] for r in records]
    headers = [name for name, _ in LOG_COLUMNS]
    print_table(headers, rows, fmt, out)


def print_table(
    headers: Sequence[str], rows: Sequence[Sequence[Any]], fmt: str, out: TextIO = sys.stdout
) -> None:
    if fmt == "csv":
        writer = csv.writer(out)
        writer.writerow(headers)
        writer.writerows([["" if v is None else v for v in row] for row in rows])
        return
    if fmt == "json":
        for row in rows:
            out.write(json.dumps(dict(zip(headers, row, strict=True))) + "\n")
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(*headers, box=None, pad_edge=False, show_edge=False)
    for row in rows:
        table.add_row(*["" if v is None else str(v) for v in row])
    Console(file=out, width=200 if not out.isatty() else None).print(table)


def print_record(record: dict[str, Any], fmt: str, out: TextIO = sys.stdout) -> None:
    """One record: indented JSON, or a FIELD / VALUE table of its flattened paths."""
    if fmt == "json":
        out.write(json.dumps(record, indent=2) + "\n")
        return
    rows = [[path, value] for path, value in _flatten(record)]
    print_table(["field", "value"], rows, fmt, out)


def _flatten(value: Any, prefix: str = "") -> list[tuple[str, Any]]:
    if isinstance(value, dict) and value:
        out: list[tuple[str, Any]] = []
        for key, item in value.items():
            out += _flatten(item, f"{prefix}.{key}" if prefix else str(key))
        return out
    if isinstance(value, dict | list):
        return [(prefix, json.dumps(value))]
    return [(prefix, value)]
