"""Printing a command's answer in the format the user chose with ``--format``.

    table   columns for people; the default of most commands
    json    one JSON document: an array of the things a listing command lists, or the one
            object a command shows or changes (the API's answer)
    ndjson  one JSON object a line: each thing listed, or the one object on its line;
            what ``logs --follow`` streams, with json too (an array that never ends is not
            a document)
    csv     the table's columns under a header line

Commands never print data themselves. A listing command hands `print_list` the API's items
and the `Table` people see; a command about one thing hands `print_object` the API's answer
and, where a table says it better than a field / value listing, its tables or a line of
text. This module alone decides what each format prints, so every command agrees.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

FORMATS = ("table", "json", "ndjson", "csv")
JSON_FORMATS = ("json", "ndjson")


def add_format_options(parser: argparse.ArgumentParser, default: str = "table") -> None:
    """``--format table|json|ndjson|csv`` and ``--json``, its short form."""
    parser.add_argument(
        "--format",
        choices=FORMATS,
        default=default,
        help=f"how to print the answer (default {default}): a table, one JSON document, "
        "one JSON object a line, or CSV",
    )
    parser.add_argument(
        "--json", dest="format", action="store_const", const="json", help="short for --format json"
    )


@dataclass(frozen=True)
class Table:
    """What the table and csv formats show. ``footer`` rows (totals) appear in the table only."""

    headers: Sequence[str]
    rows: Sequence[Sequence[Any]]
    footer: Sequence[Sequence[Any]] = ()


def fields_table(document: dict[str, Any]) -> Table:
    """One object as FIELD / VALUE rows of its flattened paths (``input.inputTokenCount``)."""
    return Table(["field", "value"], [[path, value] for path, value in _flatten(document)])


def print_list(items: Sequence[Any], table: Table, fmt: str, out: TextIO | None = None) -> None:
    """The things a command lists: a JSON array, one object a line, or the table's rows."""
    out = out or sys.stdout
    if fmt == "json":
        out.write(_json(list(items), indent=2) + "\n")
    elif fmt == "ndjson":
        out.writelines(_json(item) + "\n" for item in items)
    else:
        _print_table(table, fmt, out)


def print_object(
    document: Any, fmt: str, *tables: Table, text: Any = None, out: TextIO | None = None
) -> None:
    """One object: indented JSON, one line of JSON, or what people read: ``text`` (a line or
    a rich renderable such as a tree) or ``tables`` (csv writes the first), by default the
    object's fields."""
    out = out or sys.stdout
    if fmt == "json":
        out.write(_json(document, indent=2) + "\n")
        return
    if fmt == "ndjson":
        out.write(_json(document) + "\n")
        return
    shown = list(tables) or [fields_table(document)]
    if fmt == "csv":
        _print_table(shown[0], "csv", out)
        return
    if text is not None:
        _draw(text, out)
        return
    for i, table in enumerate(shown):
        if i:
            out.write("\n")
        _print_table(table, fmt, out)


def write_json_file(path: Path, document: Any) -> int:
    """``document`` as indented JSON in the file at ``path`` (an export such as a dashboard
    body, read back by the matching import); returns the bytes written."""
    data = (_json(document, indent=2) + "\n").encode()
    path.write_bytes(data)
    return len(data)


def stream_list(
    pages: Iterable[Sequence[Any]],
    table_of: Callable[[Sequence[Any]], Table],
    fmt: str,
    out: TextIO | None = None,
) -> None:
    """A list that keeps growing (``logs --follow``), printed page by page as it comes:
    json and ndjson one object a line, csv under one header, the table a table a page."""
    out = out or sys.stdout
    header = True
    for page in pages:
        if fmt in JSON_FORMATS:
            out.writelines(_json(item) + "\n" for item in page)
        elif fmt == "csv":
            _write_csv(table_of(page), out, header=header)
        else:
            _print_table(table_of(page), fmt, out)
        header = False
        out.flush()


def _json(value: Any, indent: int | None = None) -> str:
    return json.dumps(value, indent=indent, default=str)


def _print_table(table: Table, fmt: str, out: TextIO) -> None:
    if fmt == "csv":
        _write_csv(table, out)
        return
    from rich.table import Table as RichTable

    drawn = RichTable(*table.headers, box=None, pad_edge=False, show_edge=False)
    for row in [*table.rows, *table.footer]:
        drawn.add_row(*["" if v is None else str(v) for v in row])
    _draw(drawn, out)


def _write_csv(table: Table, out: TextIO, header: bool = True) -> None:
    writer = csv.writer(out)
    if header:
        writer.writerow(table.headers)
    writer.writerows([["" if v is None else v for v in row] for row in table.rows])


def _draw(renderable: Any, out: TextIO) -> None:
    if isinstance(renderable, str):
        out.write(renderable + "\n")
        return
    from rich.console import Console

    Console(file=out, width=200 if not out.isatty() else None).print(renderable)


def _flatten(value: Any, prefix: str = "") -> list[tuple[str, Any]]:
    if isinstance(value, dict) and value:
        out: list[tuple[str, Any]] = []
        for key, item in value.items():
            out += _flatten(item, f"{prefix}.{key}" if prefix else str(key))
        return out
    if isinstance(value, dict | list):
        return [(prefix, json.dumps(value, default=str))]
    return [(prefix, value)]
