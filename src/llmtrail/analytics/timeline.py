"""The per-request timeline: one row per user request (a trace, or a session), a light bar
for the whole request and a dark bar for each model invocation inside it, the total seconds
at the right — the chart that answers "how many model calls did each request make, and where
did its time go".

`timeline` reads the rows (records with trace or session ids, and the spans around them) with
two syntax trees run by the store's `QueryEngine` (`llmtrail.query.reads`), alike on DuckDB
and ClickHouse; `render_png` draws them with matplotlib; `to_json` is the same data for the
web UI.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlglot import exp

from llmtrail.errors import ValidationError
from llmtrail.query.dialects import not_null
from llmtrail.query.reads import Reader, ReadSource, column, number, string

MAX_ROWS = 1000


@dataclass
class Invocation:
    offset_s: float  # from the request's start
    duration_s: float
    model_id: str
    status: str
    request_id: str


@dataclass
class RequestRow:
    key: str  # the trace id or the session id
    start: datetime
    end: datetime
    invocations: list[Invocation] = field(default_factory=list)
    name: str | None = None

    @property
    def total_s(self) -> float:
        return (self.end - self.start).total_seconds()

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "name": self.name,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "totalSeconds": round(self.total_s, 3),
            "invocations": [
                {
                    "offsetSeconds": round(i.offset_s, 3),
                    "durationSeconds": round(i.duration_s, 3),
                    "modelId": i.model_id,
                    "status": i.status,
                    "requestId": i.request_id,
                }
                for i in self.invocations
            ],
        }


def timeline(
    engine: ReadSource,
    *,
    workspace: str,
    start: datetime | None,
    end: datetime | None,
    by: str = "trace",
    limit: int = 50,
) -> list[RequestRow]:
    """The latest ``limit`` requests started in ``[start, end)``, oldest first, read through
    ``engine`` (a `QueryEngine`, or a DuckDB `Database`)."""
    if by not in ("trace", "session"):
        raise ValidationError("by", "must be trace or session")
    if not 1 <= limit <= MAX_ROWS:
        raise ValidationError("limit", f"must be an integer from 1 to {MAX_ROWS}")
    key = "trace_id" if by == "trace" else "session_id"
    r = Reader.of(engine)
    in_range = exp.and_(not_null(column(key, "r")), r.in_range("r", workspace, start, end))
    record_sql = (
        exp.select(
            column(key, "r"),
            column("timestamp", "r"),
            exp.Coalesce(this=column("latency_ms", "r"), expressions=[number(0)]),
            column("model_id", "r"),
            column("status", "r"),
            column("request_id", "r"),
        )
        .from_(r.table("records", "r"))
        .where(in_range)
        .order_by(column("timestamp", "r"), column("record_id", "r"))
    )
    keys = exp.select(column(key, "r")).from_(r.table("records", "r")).where(in_range.copy())
    span_sql = (
        exp.select(
            column(key, "s"),
            r.d.aggregate("min", column("start_time", "s")),
            r.d.aggregate("max", column("end_time", "s")),
            r.d.arg_min(column("name", "s"), column("start_time", "s")),
        )
        .from_(r.table("spans", "s"))
        .where(exp.EQ(this=column("workspace", "s"), expression=string(workspace)))
        .where(exp.In(this=column(key, "s"), query=exp.Subquery(this=keys)))
        .group_by(column(key, "s"))
    )
    records = r.rows(record_sql)
    spans = r.rows(span_sql) if records else []
    rows: dict[str, RequestRow] = {}
    calls: dict[str, list[tuple[datetime, float, str, str, str]]] = {}
    for k, at, latency, model, status, request_id in records:
        seconds = int(latency) / 1000
        finish = at + timedelta(seconds=seconds)
        row = rows.get(k)
        if row is None:
            rows[k] = RequestRow(k, at, finish)
        else:
            row.start, row.end = min(row.start, at), max(row.end, finish)
        calls.setdefault(k, []).append((at, seconds, str(model), str(status), str(request_id)))
    for k, first, last, name in spans:
        row = rows[k]
        row.start, row.end, row.name = min(row.start, first), max(row.end, last), name
    for k, row in rows.items():
        row.invocations = [
            Invocation((at - row.start).total_seconds(), seconds, model, status, rid)
            for at, seconds, model, status, rid in calls[k]
        ]
    ordered = sorted(rows.values(), key=lambda r: (r.start, r.key))
    return ordered[-limit:]


def to_json(rows: list[RequestRow]) -> dict[str, Any]:
    return {
        "requests": len(rows),
        "invocations": sum(len(r.invocations) for r in rows),
        "rows": [r.to_dict() for r in rows],
    }


def rows_from_json(data: dict[str, Any]) -> list[RequestRow]:
    """`to_json`'s output read back (the CLI draws what the API answered)."""
    rows = []
    for item in data.get("rows", []):
        row = RequestRow(
            str(item["key"]),
            datetime.fromisoformat(item["start"]),
            datetime.fromisoformat(item["end"]),
            name=item.get("name"),
        )
        row.invocations = [
            Invocation(
                float(i["offsetSeconds"]),
                float(i["durationSeconds"]),
                str(i["modelId"]),
                str(i["status"]),
                str(i["requestId"]),
            )
            for i in item.get("invocations", [])
        ]
        rows.append(row)
    return rows


def render_png(rows: list[RequestRow], path: Path, title: str | None = None) -> Path:
    """Draw the timeline: one row per request, newest at the bottom."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    height = max(2.5, 0.45 * len(rows) + 1.5)
    fig, ax = plt.subplots(figsize=(11, height), dpi=100)
    longest = max((r.total_s for r in rows), default=1.0) or 1.0
    for y, row in enumerate(rows):
        ax.barh(y, row.total_s, left=0, height=0.7, color="#c9daf8", edgecolor="#6d9eeb")
        for call in row.invocations:
            color = "#1c4587" if call.status == "OK" else "#cc0000"
            ax.barh(
                y, max(call.duration_s, longest / 500), left=call.offset_s, height=0.45, color=color
            )
        ax.text(row.total_s + longest * 0.01, y, f"{row.total_s:.2f} s", va="center", fontsize=8)
    ax.set_yticks(range(len(rows)))
    ax.set_yticklabels([(r.name or r.key)[:28] for r in rows], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, longest * 1.12)
    ax.set_xlabel("seconds since the request started")
    calls = sum(len(r.invocations) for r in rows)
    ax.set_title(title or f"{len(rows)} user requests → {calls} model invocations")
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
