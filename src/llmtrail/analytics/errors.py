"""Failures grouped by type and message: counts, first and last seen, the models and
applications affected, and a sample stack trace — from failed records (gateway, import, OTLP)
and failed spans (SDK exceptions, OTLP).

An exception that leaves a tool, its agent and its workflow is recorded on each of the three
spans; it is one failure, so a failed span counts only when no child span failed with the same
type and message (the innermost one, whose stack trace is the deepest). Two calls that fail
alike under one parent count twice. A model call's record and the client span around it are
two views of one failure (the provider's error, the app's exception) and stay apart.

Both groupings are syntax trees run by the store's `QueryEngine` (`llmtrail.query.reads`), so
they answer alike on DuckDB and ClickHouse: a span's latest version is picked by a
``row_number()`` window, and "a child failed alike" is a left join on the failed children
grouped by (trace, parent, type, message) — no correlated subquery, which ClickHouse lacks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlglot import exp

from llmtrail.errors import ValidationError
from llmtrail.query.reads import Reader, ReadSource, column, number, string
from llmtrail.query.relations import table_alias

_MAX_GROUPS = 1000


@dataclass
class ErrorGroup:
    """Failures of one type and message: how many, when, where, and one stack trace."""

    type: str
    message: str
    count: int = 0
    first_seen: datetime | None = None
    last_seen: datetime | None = None
    models: set[str] = field(default_factory=set)
    apps: set[str] = field(default_factory=set)
    sample_stack_trace: str | None = None
    sample_request_id: str | None = None
    sources: set[str] = field(default_factory=set)

    def to_dict(self) -> dict[str, Any]:
        """The group as JSON (lowerCamelCase keys, ISO 8601 times, sorted lists)."""
        return {
            "type": self.type,
            "message": self.message,
            "count": self.count,
            "firstSeen": self.first_seen.isoformat() if self.first_seen else None,
            "lastSeen": self.last_seen.isoformat() if self.last_seen else None,
            "models": sorted(self.models),
            "apps": sorted(self.apps),
            "sampleStackTrace": self.sample_stack_trace,
            "sampleRequestId": self.sample_request_id,
            "sources": sorted(self.sources),
        }


def error_groups(
    engine: ReadSource,
    *,
    workspace: str,
    start: datetime | None,
    end: datetime | None,
    limit: int = 100,
) -> list[ErrorGroup]:
    """The error groups in ``[start, end)``, most frequent first (ties: latest first), read
    through ``engine`` (a `QueryEngine`, or a DuckDB `Database`)."""
    if not 1 <= limit <= _MAX_GROUPS:
        raise ValidationError("limit", f"must be an integer from 1 to {_MAX_GROUPS}")
    r = Reader.of(engine)
    rows = r.rows(_record_groups(r, workspace, start, end))
    rows += [  # a span names no model and no request: laid out as a record group's row
        (*row[:5], [], *row[5:7], None, row[7])
        for row in r.rows(_span_groups(r, workspace, start, end))
    ]
    groups: dict[tuple[str, str], ErrorGroup] = {}
    for row in rows:
        kind, message = str(row[0]), str(row[1])
        group = groups.setdefault((kind, message), ErrorGroup(kind, message))
        group.count += int(row[2])
        group.first_seen = _earliest(group.first_seen, row[3])
        group.last_seen = _latest(group.last_seen, row[4])
        group.models.update(m for m in row[5] or [] if m)
        group.apps.update(a for a in row[6] or [] if a)
        group.sample_stack_trace = group.sample_stack_trace or row[7]
        group.sample_request_id = group.sample_request_id or row[8]
        group.sources.update(s for s in row[9] or [] if s)
    ordered = sorted(
        groups.values(),
        key=lambda g: (-g.count, -(g.last_seen.timestamp() if g.last_seen else 0), g.type),
    )
    return ordered[: min(limit, _MAX_GROUPS)]


def _failed(alias: str) -> exp.Expr:
    return exp.EQ(this=column("status", alias), expression=string("ERROR"))


def _record_groups(
    r: Reader, workspace: str, start: datetime | None, end: datetime | None
) -> exp.Select:
    """Failed records by (type, message): count, first and last, models, applications, a
    stack trace, a request id, sources."""
    d = r.d
    kind = exp.Coalesce(
        this=column("error_type", "r"), expressions=[column("error_code", "r"), string("unknown")]
    )
    message = exp.Coalesce(this=column("error_message", "r"), expressions=[string("")])
    at = column("timestamp", "r")
    return (
        exp.select(
            kind,
            message,
            exp.Count(this=exp.Star()),
            d.aggregate("min", at),
            d.aggregate("max", at.copy()),
            d.distinct_values(column("model_id", "r")),
            d.distinct_values(r.dimension("requestMetadata.application_name")),
            d.aggregate("max", column("error_stack_trace", "r")),
            d.aggregate("max", column("request_id", "r")),
            d.distinct_values(column("source", "r")),
        )
        .from_(r.table("records", "r"))
        .where(exp.and_(_failed("r"), r.in_range("r", workspace, start, end)))
        .group_by(kind.copy(), message.copy())
    )


def _span_groups(
    r: Reader, workspace: str, start: datetime | None, end: datetime | None
) -> exp.Select:
    """Failed spans (the latest version of each) by (type, message), leaving out a span with
    a child that failed alike: count, first and last, applications, a stack trace, sources."""
    d = r.d
    names = ("trace_id", "span_id", "error_type", "error_message", "start_time", "app",
             "error_stack_trace", "source")  # fmt: skip
    latest = exp.Window(
        this=exp.RowNumber(),
        partition_by=[column("trace_id", "s"), column("span_id", "s")],
        order=exp.Order(expressions=[exp.Ordered(this=column("ingested_at", "s"), desc=True)]),
    )
    versions = (
        exp.select(*(exp.alias_(column(n, "s"), n) for n in names), exp.alias_(latest, "version"))
        .from_(r.table("spans", "s"))
        .where(exp.and_(_failed("s"), r.in_range("s", workspace, start, end, at="start_time")))
    )
    keys = ("trace_id", "parent_span_id", "error_type", "error_message")
    children = (
        exp.select(
            *(exp.alias_(column(n, "c"), n) for n in keys),
            exp.alias_(exp.Max(this=number(1)), "hit"),
        )
        .from_(r.table("spans", "c"))
        .where(exp.and_(_failed("c"), r.in_range("c", workspace, None, None)))
        .group_by(*(column(n, "c") for n in keys))
    )
    same = exp.and_(
        exp.EQ(this=column("trace_id", "k"), expression=column("trace_id", "f")),
        exp.EQ(this=column("parent_span_id", "k"), expression=column("span_id", "f")),
        exp.NullSafeEQ(this=column("error_type", "k"), expression=column("error_type", "f")),
        exp.NullSafeEQ(this=column("error_message", "k"), expression=column("error_message", "f")),
    )
    kind = exp.Coalesce(this=column("error_type", "f"), expressions=[string("unknown")])
    message = exp.Coalesce(this=column("error_message", "f"), expressions=[string("")])
    at = column("start_time", "f")
    no_child = exp.EQ(
        this=exp.Coalesce(this=column("hit", "k"), expressions=[number(0)]), expression=number(0)
    )
    return (
        exp.select(
            kind,
            message,
            exp.Count(this=exp.Star()),
            d.aggregate("min", at),
            d.aggregate("max", at.copy()),
            d.distinct_values(column("app", "f")),
            d.aggregate("max", column("error_stack_trace", "f")),
            d.distinct_values(column("source", "f")),
        )
        .from_(exp.Subquery(this=versions, alias=table_alias("f")))
        .join(exp.Subquery(this=children, alias=table_alias("k")), on=same, join_type="LEFT")
        .where(exp.and_(exp.EQ(this=column("version", "f"), expression=number(1)), no_child))
        .group_by(kind.copy(), message.copy())
    )


def _earliest(a: datetime | None, b: datetime | None) -> datetime | None:
    return b if a is None or (b is not None and b < a) else a


def _latest(a: datetime | None, b: datetime | None) -> datetime | None:
    return b if a is None or (b is not None and b > a) else a
