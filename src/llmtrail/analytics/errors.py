"""Failures grouped by type and message: counts, first and last seen, the models and
applications affected, and a sample stack trace — from failed records (gateway, import, OTLP)
and failed spans (SDK exceptions, OTLP).

An exception that leaves a tool, its agent and its workflow is recorded on each of the three
spans; it is one failure, so a failed span counts only when no child span failed with the same
type and message (the innermost one, whose stack trace is the deepest). Two calls that fail
alike under one parent count twice. A model call's record and the client span around it are
two views of one failure (the provider's error, the app's exception) and stay apart.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from llmtrail.errors import ValidationError
from llmtrail.store.duckdb import Database
from llmtrail.store.schema import metadata_column_name

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
    db: Database,
    *,
    workspace: str,
    start: datetime | None,
    end: datetime | None,
    limit: int = 100,
) -> list[ErrorGroup]:
    """The error groups in ``[start, end)``, most frequent first (ties: latest first)."""
    app = metadata_column_name("application_name")
    has_app = "application_name" in db.schema.promoted_keys
    app_expr = f'"{app}"' if has_app else "request_metadata['application_name']"
    if not 1 <= limit <= _MAX_GROUPS:
        raise ValidationError("limit", f"must be an integer from 1 to {_MAX_GROUPS}")
    where, params = _range("timestamp", workspace, start, end)
    record_sql = f"""
        SELECT coalesce(error_type, error_code, 'unknown') AS type,
               coalesce(error_message, '') AS message,
               count(*) AS n, min(timestamp), max(timestamp),
               list(DISTINCT model_id) FILTER (WHERE model_id IS NOT NULL),
               list(DISTINCT {app_expr}) FILTER (WHERE {app_expr} IS NOT NULL),
               max(error_stack_trace), max(request_id), list(DISTINCT source)
        FROM records
        WHERE status = 'ERROR' AND {where}
        GROUP BY 1, 2
    """
    span_where, span_params = _range("start_time", workspace, start, end)
    span_sql = f"""
        SELECT coalesce(error_type, 'unknown'), coalesce(error_message, ''),
               count(*), min(start_time), max(start_time), [],
               list(DISTINCT app) FILTER (WHERE app IS NOT NULL),
               max(error_stack_trace), NULL, list(DISTINCT source)
        FROM (
            SELECT * FROM spans WHERE status = 'ERROR' AND {span_where}
            QUALIFY row_number() OVER (
                PARTITION BY trace_id, span_id ORDER BY ingested_at DESC) = 1
        ) AS failed
        WHERE NOT EXISTS (
            SELECT 1 FROM spans AS child
            WHERE child.workspace = failed.workspace AND child.trace_id = failed.trace_id
              AND child.parent_span_id = failed.span_id AND child.status = 'ERROR'
              AND child.error_type IS NOT DISTINCT FROM failed.error_type
              AND child.error_message IS NOT DISTINCT FROM failed.error_message
        )
        GROUP BY 1, 2
    """

    def run(cursor: Any) -> list[tuple[Any, ...]]:
        rows = cursor.execute(record_sql, params).fetchall()
        return rows + cursor.execute(span_sql, span_params).fetchall()

    groups: dict[tuple[str, str], ErrorGroup] = {}
    for row in db.read(run):
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


def _range(
    column: str, workspace: str, start: datetime | None, end: datetime | None
) -> tuple[str, list[Any]]:
    clauses: list[str] = ["workspace = ?"]
    params: list[Any] = [workspace]
    if start is not None:
        clauses.append(f"{column} >= ?")
        params.append(start)
    if end is not None:
        clauses.append(f"{column} < ?")
        params.append(end)
    return " AND ".join(clauses), params


def _earliest(a: datetime | None, b: datetime | None) -> datetime | None:
    return b if a is None or (b is not None and b < a) else a


def _latest(a: datetime | None, b: datetime | None) -> datetime | None:
    return b if a is None or (b is not None and b > a) else a
