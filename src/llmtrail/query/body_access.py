"""Queries of keys that may not read bodies: refused before any SQL is built.

A request or response body is what a key needs the ``bodies`` permission for (a reader key
is created without it). The compiler gets ``bodies_allowed`` from the caller's key and, when
it is false, refuses a query that names a body field — ``input.inputBodyJson…``,
``output.outputBodyJson…``, the ``input`` or ``output`` object (which holds its body), or
``@message`` (the whole record) — in any command: ``fields``, ``filter``, ``stats``,
``sort``, ``dedup``, ``parse`` (whose default source is ``@message``), ``unnest``,
``display``. A query with no ``fields``, ``display`` or ``stats`` shows ``@message`` by
default and is refused too. The refusal is `Forbidden` (403) naming the field, with the
line, column and caret of the language's own errors, so an empty answer never hides a
refusal. The compiler also leaves the ``bodies`` table out of such a query altogether, so
nothing a field resolves to can read a body even if a path escaped this check.
"""

from __future__ import annotations

from llmtrail.errors import Forbidden
from llmtrail.query.ast import Display, Fields, Query, Stats, fields_in
from llmtrail.query.errors import QueryError, Span
from llmtrail.query.fields import touches_bodies

PERMISSION = "bodies"
DEFAULT_OUTPUT = (
    "a query without fields, display or stats shows @message, the whole record with its "
    "bodies; name the fields to show (fields @timestamp, modelId, …): this key does not "
    "have the 'bodies' permission"
)


def refusal(path: tuple[str, ...], text: str, span: Span, field: str = "queryString") -> Forbidden:
    """The `Forbidden` for body field ``path`` at ``span`` of ``text``."""
    dotted = ".".join(path)
    reason = (
        f"{dotted} reads a request or response body; this key does not have the "
        f"{PERMISSION!r} permission"
    )
    located = QueryError(reason, text, span, field=field)
    return Forbidden(dotted, f"{field} {located.message}", PERMISSION)


def reads_bodies(query: Query) -> bool:
    """Whether any field of ``query`` (or its default ``@message`` output) reads a body."""
    if not any(isinstance(c, Fields | Display | Stats) for c in query.commands):
        return True  # the default output includes @message
    return any(touches_bodies(f.path) for c in query.commands for f in fields_in(c))


def refuse_bodies(query: Query) -> None:
    """Raise `Forbidden` for the first field of ``query`` (by position) that reads a body,
    or for its default ``@message`` output."""
    found = [f for command in query.commands for f in fields_in(command)]
    for node in sorted(found, key=lambda f: (f.span.start, f.span.end)):
        if touches_bodies(node.path):
            raise refusal(node.path, query.text, node.span)
    if not any(isinstance(c, Fields | Display | Stats) for c in query.commands):
        located = QueryError(DEFAULT_OUTPUT, query.text, Span(0, len(query.text)))
        raise Forbidden("@message", f"queryString {located.message}", PERMISSION)
