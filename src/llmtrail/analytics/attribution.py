"""Calls, tokens and cost attributed to what the records say about themselves.

Three groupings of the ``records`` table serve the cost surfaces:

* `cost_and_usage` — the question Cost Explorer's GetCostAndUsage answers: cost, tokens and
  calls grouped by up to two dimensions (``modelId``, ``provider``, ``operation``,
  ``inferenceProfile.name``, ``inferenceProfile.tags.KEY``, ``requestMetadata.KEY``,
  ``identity.arn``, ``status``, …) per DAILY or MONTHLY period of a time zone;
* `profile_usage` — Bedrock's per-profile metrics (invocations, processing time, tokens,
  characters) of one application inference profile, by ``inference_profile_arn``;
* `models_seen` — the models records name, with how often and when last, for
  ``prices missing`` (`PriceTable.missing` decides which of them lack a price).

Each is one GROUP BY over hot columns, so it reads only what it sums. The SQL text is built by
pure functions from the schema's column names (`dimension_sql`) and fixed words; every value —
time range, workspace, time zone, map keys — is a bound parameter. Money is summed as DECIMAL
and stays `Decimal` until `to_dict` writes it as a decimal string; it is never a float.
Periods are calendar days or months in the query's time zone (``timezone(tz, timestamp)``),
so a MONTHLY period in ``Europe/Paris`` starts at the Paris midnight.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from llmtrail.analytics.dimensions import dimension_sql
from llmtrail.analytics.pricing import SeenModel
from llmtrail.analytics.profile_metrics import ProfileMetrics
from llmtrail.analytics.time_zones import time_zone
from llmtrail.errors import ValidationError
from llmtrail.record import DEFAULT_WORKSPACE, format_timestamp
from llmtrail.store.duckdb.database import Database
from llmtrail.store.schema import RecordSchema

__all__ = [
    "GRANULARITIES",
    "MAX_GROUPS",
    "MAX_GROUP_BY",
    "CostAndUsage",
    "CostGroup",
    "CostQuery",
    "ProfileUsage",
    "Usage",
    "cost_and_usage",
    "cost_and_usage_sql",
    "models_seen",
    "profile_usage",
]

GRANULARITIES = ("DAILY", "MONTHLY")
MAX_GROUP_BY = 2  # as Cost Explorer: at most two GroupBy dimensions
MAX_GROUPS = 10_000  # rows of one answer (periods × dimension values)
MAX_PERIODS = 3660  # ten years of days
MAX_MODELS = 10_000
_TRUNC = {"DAILY": "day", "MONTHLY": "month"}
_NANO = Decimal("0.000000001")
_ZERO = Decimal(0)

# The measures every grouping sums, in `Usage` field order.
_MEASURES = """
    count(*) AS calls,
    count(*) - count(cost_total_usd) AS unpriced,
    coalesce(sum(input_token_count), 0) AS input_tokens,
    coalesce(sum(output_token_count), 0) AS output_tokens,
    coalesce(sum(cache_read_input_token_count), 0) AS cache_read_tokens,
    coalesce(sum(cache_write_input_token_count), 0) AS cache_write_tokens,
    sum(cost_input_usd) AS input_usd,
    sum(cost_output_usd) AS output_usd,
    sum(cost_cache_read_usd) AS cache_read_usd,
    sum(cost_cache_write_usd) AS cache_write_usd,
    sum(cost_total_usd) AS total_usd"""
_RANGE = 'workspace = ? AND "timestamp" >= ? AND "timestamp" < ?'


def zone(name: str) -> ZoneInfo:
    """The IANA time zone ``name``; a `ValidationError` on ``tz`` when there is none (or
    when the engine would not know it: `time_zone`)."""
    return time_zone(name, "tz")


def _money(value: Any) -> Decimal:
    return _ZERO.quantize(_NANO) if value is None else Decimal(value).quantize(_NANO)


def _text(value: Decimal) -> str:
    return format(value, "f")


@dataclass(frozen=True)
class Usage:
    """What a group of records used and cost. ``unpriced`` counts the calls without a cost
    (their model had no price), so a gap in the price table shows instead of hiding in a low
    total; ``total_usd`` may exceed the four parts for models also billed per image or call."""

    calls: int = 0
    unpriced: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    input_usd: Decimal = _ZERO
    output_usd: Decimal = _ZERO
    cache_read_usd: Decimal = _ZERO
    cache_write_usd: Decimal = _ZERO
    total_usd: Decimal = _ZERO

    @classmethod
    def from_row(cls, row: Sequence[Any]) -> Usage:
        """From the `_MEASURES` columns of a result row, in order."""
        counts = [int(v or 0) for v in row[:6]]
        amounts = [_money(v) for v in row[6:11]]
        return cls(*counts, *amounts)  # type: ignore[arg-type]

    def __add__(self, other: Usage) -> Usage:
        return Usage(*(getattr(self, f.name) + getattr(other, f.name) for f in fields(self)))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: counts as integers, money as decimal strings with nine decimals."""
        return {
            "calls": self.calls,
            "unpriced": self.unpriced,
            "inputTokens": self.input_tokens,
            "outputTokens": self.output_tokens,
            "cacheReadTokens": self.cache_read_tokens,
            "cacheWriteTokens": self.cache_write_tokens,
            "inputUsd": _text(self.input_usd),
            "outputUsd": _text(self.output_usd),
            "cacheReadUsd": _text(self.cache_read_usd),
            "cacheWriteUsd": _text(self.cache_write_usd),
            "costUsd": _text(self.total_usd),
        }


# -- cost and usage by dimension --------------------------------------------------------------
@dataclass(frozen=True)
class CostQuery:
    """Records with ``start <= timestamp < end`` of ``workspace``, grouped by period of
    ``granularity`` in time zone ``tz`` and by the dimensions ``by`` (record field paths).
    Checked when made: a `ValidationError` names the field and the limit."""

    start: datetime
    end: datetime
    by: tuple[str, ...] = ()
    granularity: str = "MONTHLY"
    tz: str = "UTC"
    workspace: str = DEFAULT_WORKSPACE

    def __post_init__(self) -> None:
        if self.granularity not in GRANULARITIES:
            raise ValidationError(
                "granularity", f"must be DAILY or MONTHLY, got {self.granularity!r}"
            )
        if len(self.by) > MAX_GROUP_BY:
            raise ValidationError(
                "by", f"at most {MAX_GROUP_BY} dimensions can be grouped by, got {len(self.by)}"
            )
        if len(set(self.by)) != len(self.by):
            raise ValidationError("by", "names the same dimension twice")
        tzinfo = zone(self.tz)
        for name in ("start", "end"):
            value = getattr(self, name)
            if value.tzinfo is None:  # wall-clock time in tz
                object.__setattr__(self, name, value.replace(tzinfo=tzinfo))
        if not self.start < self.end:
            raise ValidationError("end", "must be after start")
        if len(self.periods()) > MAX_PERIODS:
            raise ValidationError(
                "start", f"the range holds more than {MAX_PERIODS} {self.granularity} periods"
            )

    def periods(self) -> list[tuple[date, date]]:
        """Every period the range touches, as local (first day, first day after)."""
        tzinfo = zone(self.tz)
        first = self.start.astimezone(tzinfo).date()
        last = (self.end - timedelta(microseconds=1)).astimezone(tzinfo).date()
        out: list[tuple[date, date]] = []
        day = first.replace(day=1) if self.granularity == "MONTHLY" else first
        while day <= last and len(out) <= MAX_PERIODS:
            following = _next_period(day, self.granularity)
            out.append((day, following))
            day = following
        return out


def _next_period(day: date, granularity: str) -> date:
    if granularity == "DAILY":
        return day + timedelta(days=1)
    return date(day.year + day.month // 12, day.month % 12 + 1, 1)


def cost_and_usage_sql(query: CostQuery, schema: RecordSchema) -> tuple[str, list[Any]]:
    """The statement of ``query`` and its positional parameters (pure)."""
    params: list[Any] = [query.tz]
    keys = []
    for i, dimension in enumerate(query.by):
        try:
            expr, bound = dimension_sql(dimension, schema)
        except ValidationError as exc:
            raise ValidationError("by", exc.message) from None
        keys.append(f"{expr} AS key{i}")
        params += bound
    params += [query.workspace, query.start.astimezone(UTC), query.end.astimezone(UTC)]
    unit = _TRUNC[query.granularity]
    grouped = ", ".join(str(n) for n in range(1, len(keys) + 2))
    order = [
        "1",
        "total_usd DESC NULLS LAST",
        *(f"{n} NULLS LAST" for n in range(2, len(keys) + 2)),
    ]
    sql = (
        f"SELECT CAST(date_trunc('{unit}', timezone(?, \"timestamp\")) AS DATE) AS period, "
        + "".join(f"{k}, " for k in keys)
        + f"{_MEASURES}\nFROM records WHERE {_RANGE}\nGROUP BY {grouped}\n"
        + f"ORDER BY {', '.join(order)}\nLIMIT {MAX_GROUPS + 1}"
    )
    return sql, params


def _key(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


@dataclass(frozen=True)
class CostGroup:
    """One period's usage of one combination of dimension values (None: the records that
    have no value there)."""

    period: date
    keys: tuple[str | None, ...]
    usage: Usage


@dataclass(frozen=True)
class CostAndUsage:
    """The answer to a `CostQuery`: its groups, by period then cost (largest first)."""

    query: CostQuery
    groups: tuple[CostGroup, ...] = field(default=())

    def total(self) -> Usage:
        """Every group summed."""
        out = Usage()
        for group in self.groups:
            out = out + group.usage
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON in the shape of GetCostAndUsage's answer (``resultsByTime`` with each
        period's ``groups`` of ``keys`` and ``metrics`` and its ``total``), camelCase."""
        q = self.query
        by_period: dict[date, list[CostGroup]] = {}
        for group in self.groups:
            by_period.setdefault(group.period, []).append(group)
        results = []
        for start, end in q.periods():
            groups = by_period.get(start, [])
            total = Usage()
            for group in groups:
                total = total + group.usage
            results.append(
                {
                    "timePeriod": {"start": start.isoformat(), "end": end.isoformat()},
                    "groups": [
                        {"keys": list(g.keys), "metrics": g.usage.to_dict()} for g in groups
                    ],
                    "total": total.to_dict(),
                }
            )
        return {
            "timePeriod": {"start": format_timestamp(q.start), "end": format_timestamp(q.end)},
            "granularity": q.granularity,
            "tz": q.tz,
            "workspace": q.workspace,
            "groupDefinitions": [{"type": "DIMENSION", "key": d} for d in q.by],
            "resultsByTime": results,
            "total": self.total().to_dict(),
        }


def cost_and_usage(db: Database, query: CostQuery) -> CostAndUsage:
    """Run ``query`` over the ``records`` table of ``db``. Raises `ValidationError` on
    ``by`` for an unknown dimension, or when the answer would pass `MAX_GROUPS` rows."""
    sql, params = cost_and_usage_sql(query, db.schema)
    rows = db.read(lambda cursor: cursor.execute(sql, params).fetchall())
    if len(rows) > MAX_GROUPS:
        raise ValidationError(
            "by",
            f"the answer holds more than {MAX_GROUPS} groups; group by fewer or coarser "
            "dimensions, use MONTHLY or a shorter range",
        )
    width = len(query.by)
    groups = tuple(
        CostGroup(
            row[0], tuple(_key(v) for v in row[1 : 1 + width]), Usage.from_row(row[1 + width :])
        )
        for row in rows
    )
    return CostAndUsage(query, groups)


# -- one inference profile --------------------------------------------------------------------
_PROFILE_SQL = f"""
SELECT {_MEASURES},
    count(*) FILTER (WHERE status = 'ERROR') AS errors,
    count(latency_ms) AS timed,
    coalesce(sum(latency_ms), 0) AS processing_time_ms,
    coalesce(sum(input_character_count), 0) AS input_characters,
    coalesce(sum(output_character_count), 0) AS output_characters,
    count(*) FILTER (WHERE input_character_count IS NULL
        OR (output_character_count IS NULL AND status IS DISTINCT FROM 'ERROR'))
        AS records_without_text
FROM records WHERE {_RANGE} AND inference_profile_arn = ?
"""


@dataclass(frozen=True)
class ProfileUsage:
    """Bedrock's per-profile metrics of one profile over a range, and what its calls cost."""

    metrics: ProfileMetrics
    usage: Usage

    def to_dict(self) -> dict[str, Any]:
        """The metrics' camelCase keys, plus cache tokens and cost (decimal strings)."""
        u = self.usage
        return {
            **self.metrics.to_dict(),
            "cacheReadInputTokenCount": u.cache_read_tokens,
            "cacheWriteInputTokenCount": u.cache_write_tokens,
            "costUsd": _text(u.total_usd),
            "unpriced": u.unpriced,
        }


def profile_usage(
    db: Database,
    profile_arn: str,
    start: datetime,
    end: datetime,
    workspace: str = DEFAULT_WORKSPACE,
) -> ProfileUsage:
    """The figures of the records stamped with ``profile_arn`` in ``[start, end)``."""
    params = [workspace, start.astimezone(UTC), end.astimezone(UTC), profile_arn]
    found = db.read(lambda cursor: cursor.execute(_PROFILE_SQL, params).fetchone())
    row: tuple[Any, ...] = found if found is not None else (0,) * 17  # an aggregate: one row
    usage = Usage.from_row(row[:11])
    errors, timed, ms, chars_in, chars_out, without = (int(v or 0) for v in row[11:])
    metrics = ProfileMetrics(
        profile_arn,
        invocations=usage.calls,
        errors=errors,
        timed=timed,
        processing_time_ms=ms,
        input_tokens=usage.input_tokens,
        output_tokens=usage.output_tokens,
        input_characters=chars_in,
        output_characters=chars_out,
        records_without_text=without,
    )
    return ProfileUsage(metrics, usage)


# -- models seen ------------------------------------------------------------------------------
_MODELS_SQL = f"""
SELECT provider, model_id, resolved_model_id, count(*) AS n, max("timestamp") AS last_seen
FROM records WHERE {_RANGE} AND model_id IS NOT NULL AND (input_token_count IS NOT NULL
    OR output_token_count IS NOT NULL OR cost_total_usd IS NOT NULL)
GROUP BY 1, 2, 3 ORDER BY n DESC, 1, 2, 3 LIMIT {MAX_MODELS}
"""


def models_seen(
    db: Database, start: datetime, end: datetime, workspace: str = DEFAULT_WORKSPACE
) -> list[SeenModel]:
    """Each (provider, modelId, resolvedModelId) the records of ``[start, end)`` used, most
    seen first (at most `MAX_MODELS`), with its count and last timestamp. A record counts
    when it has a token count or a cost: a call refused before it reached a model (no route,
    a budget) used nothing that a price could be missing for."""
    params = [workspace, start.astimezone(UTC), end.astimezone(UTC)]
    rows = db.read(lambda cursor: cursor.execute(_MODELS_SQL, params).fetchall())
    return [
        SeenModel(
            provider=provider,
            model=model,
            resolved_model=resolved,
            count=int(count),
            last_seen=last.astimezone(UTC) if last.tzinfo else last.replace(tzinfo=UTC),
        )
        for provider, model, resolved, count, last in rows
    ]
