"""An ingest body (``POST /api/records``, `llmtrail ingest`) decoded and validated: a JSON
array, one object, or NDJSON, each item a record or the reason it was rejected.

The recorder process runs this for every ingest body (the serving process hands the raw bytes
over), so it imports nothing of the server: loading the records API there cost ~0.3 s of the
first body's time.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

from llmtrail.capture.gateway.asgi import json_depth
from llmtrail.errors import PayloadTooLarge, ValidationError
from llmtrail.gunzip import gunzip_limited
from llmtrail.record import DEFAULT_WORKSPACE, InvocationRecord


def validate_batch(
    raw: bytes,
    gzipped: bool,
    max_bytes: int,
    max_records: int,
    max_depth: int,
    workspace: str = DEFAULT_WORKSPACE,
) -> tuple[list[dict[str, Any]], list[InvocationRecord], list[int]]:
    """Decode and validate an ingest body: per-item results, the valid records (of
    ``workspace``, the caller's), and where each valid record sits in the results."""
    if gzipped or raw[:2] == b"\x1f\x8b":
        raw = gunzip_limited(raw, max_bytes)
    docs = parse_records(raw, max_records, max_depth)
    results: list[dict[str, Any]] = []
    valid: list[InvocationRecord] = []
    where: list[int] = []
    from_dict = InvocationRecord.from_dict
    for i, doc in enumerate(docs):
        if type(doc) is Unparsable:
            results.append({"index": i, "status": "rejected", "field": "record", "reason": doc})
            continue
        try:
            record = from_dict(doc, source="ingest", workspace=workspace)
        except ValidationError as exc:
            results.append(
                {"index": i, "status": "rejected", "field": exc.field, "reason": exc.message}
            )
            continue
        # a valid record's requestId is a string
        results.append({"index": i, "requestId": doc["requestId"], "status": "stored"})
        valid.append(record)
        where.append(i)
    return results, valid, where


def ingest_summary(
    results: list[dict[str, Any]], where: list[int], fresh: list[bool]
) -> dict[str, Any]:
    """Mark the resends the pipeline recognised, and count each outcome."""
    for index, new in zip(where, fresh, strict=True):
        if not new:
            results[index]["status"] = "duplicate"
    counts = {k: sum(1 for r in results if r["status"] == k) for k in _OUTCOMES}
    return {**counts, "results": results}


_OUTCOMES = ("stored", "duplicate", "rejected")


def parse_records(raw: bytes, max_records: int, max_depth: int) -> list[Any]:
    """A JSON array, a single object (pretty-printed or not), or NDJSON (one per line)."""
    text = raw.strip()
    if not text:
        raise ValidationError("body", "is empty; send a JSON array or NDJSON records")
    whole_body = False
    try:
        if text[:1] in (b"[", b"{"):
            try:
                whole = orjson.loads(text)
            except orjson.JSONDecodeError:
                if text[:1] == b"[":
                    raise
                whole = None  # NDJSON: several objects, one per line
            if whole is not None:
                docs = whole if isinstance(whole, list) else [whole]
                whole_body = True
            else:
                docs = _ndjson(text, max_depth)
        else:
            docs = _ndjson(text, max_depth)
    except orjson.JSONDecodeError as exc:
        raise ValidationError("body", f"is not a JSON array or NDJSON: {exc}") from None
    if len(docs) > max_records:
        raise PayloadTooLarge("body", f"has {len(docs)} records; the limit is {max_records}")
    # nesting needs brackets: a body with fewer of them than the limit cannot be too deep,
    # nor one whose brackets (less the array's own) do not nest deeper
    if (
        whole_body
        and text.count(b"{") + text.count(b"[") > max_depth
        and bracket_depth(text, max_depth + 2) - (docs is whole) > max_depth
    ):
        for i, doc in enumerate(docs):
            if isinstance(doc, dict | list) and json_depth(doc) > max_depth:
                raise ValidationError(f"[{i}]", f"is nested deeper than the limit of {max_depth}")
    return list(docs)


class Unparsable(str):
    """An NDJSON line that is not JSON: rejected on its own, the other lines still count."""


def _ndjson(text: bytes, max_depth: int) -> list[Any]:
    docs: list[Any] = []
    loads, decode_error = orjson.loads, orjson.JSONDecodeError
    # each line's { and [, in one pass over the body: nesting needs them, so a line with no
    # more of them than the limit cannot be too deep
    openers = text.translate(None, _NOT_OPENERS).split(b"\n")
    for line, opened in zip(text.split(b"\n"), openers, strict=True):
        if not line or line.isspace():  # the whitespace bytes.strip() strips
            continue
        try:
            doc = loads(line)
        except decode_error as exc:
            doc = Unparsable(f"is not valid JSON: {exc}")
        else:
            if (
                len(opened) > max_depth
                and bracket_depth(line, max_depth + 1) > max_depth
                and json_depth(doc) > max_depth
            ):
                doc = Unparsable(f"is nested deeper than the limit of {max_depth} levels")
        docs.append(doc)
    return docs


_NOT_OPENERS = bytes(c for c in range(256) if c not in b"{[\n")


def bracket_depth(raw: bytes, most: int) -> int:
    """How deep the brackets of ``raw``, JSON that orjson read, nest outside its strings, up
    to ``most`` (``most`` for any deeper): at least as deep as the values it was read as
    (a duplicate key's first value, gone from them, may nest deeper), found by passes of
    bytes methods instead of a walk over every value in Python."""
    if b"\\" in raw:  # escapes: pairs of backslashes first, then escaped quotes
        raw = raw.replace(b"\\\\", b"").replace(b'\\"', b"")
    marks = raw.translate(_BRACKETS, _NOT_BRACKETS)  # only ( ) and "
    if b'"' in marks:
        # "" is an empty string or two strings with no bracket between them: gone alike
        marks = marks.replace(b'""', b"")
        if b'"' in marks:  # strings with brackets in them
            marks = _IN_QUOTES.sub(b"", marks)
    depth = 0
    while marks and depth < most:  # each pass takes away the innermost pairs
        marks = marks.replace(b"()", b"")
        depth += 1
    return depth


_BRACKETS = bytes.maketrans(b"{[}]", b"(())")
_NOT_BRACKETS = bytes(c for c in range(256) if c not in b'{[}]"')
_IN_QUOTES = re.compile(rb'"[^"]*"')
