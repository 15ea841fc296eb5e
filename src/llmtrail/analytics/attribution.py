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

Each is one GROUP BY over hot columns, so it reads only what it sums, built as a syntax tree
(`llmtrail.query.reads`) and run by the store's `QueryEngine`, DuckDB or ClickHouse alike;
dimensions are resolved by the query language's resolver (`llmtrail.query.dimensions`), and
every value — time range, workspace, time zone, map keys — is a literal of the tree. Money is
summed as DECIMAL and stays `Decimal` until `to_dict` writes it as a decimal string; it is
never a float. Periods are calendar days or months in the query's time zone,
so a MONTHLY period in ``Europe/Paris`` starts at the Paris midnight.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlglot import exp

from llmtrail.analytics.profile_metrics import ProfileMetrics
from llmtrail.analytics.time_zones import time_zone
from llmtrail.errors import ValidationError
from llmtrail.pricing.table import SeenModel
from llmtrail.query.dialects import is_null, not_null
from llmtrail.query.reads import Reader, ReadSource, column, count_if, number, string
from llmtrail.record import DEFAULT_WORKSPACE, format_timestamp

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
    "cost_and_usage_tree",
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


def _measures(r: Reader) -> list[exp.Expr]:
    """The measures every grouping sums, in `Usage` field order."""
    d = r.d

    def col(name: str) -> exp.Expr:
        return column(name, "r")

    def total(name: str) -> exp.Expr:
        return exp.Coalesce(this=exp.Sum(this=col(name)), expressions=[number(0)])

    calls = exp.Count(this=exp.Star())
    priced = exp.Count(this=col("cost_total_usd"))
    return [
        exp.alias_(calls, "calls"),
        exp.alias_(exp.Sub(this=calls.copy(), expression=priced), "unpriced"),
        exp.alias_(total("input_token_count"), "input_tokens"),
        exp.alias_(total("output_token_count"), "output_tokens"),
        exp.alias_(total("cache_read_input_token_count"), "cache_read_tokens"),
        exp.alias_(total("cache_write_input_token_count"), "cache_write_tokens"),
        exp.alias_(d.aggregate("sum", col("cost_input_usd")), "input_usd"),
        exp.alias_(d.aggregate("sum", col("cost_output_usd")), "output_usd"),
        exp.alias_(d.aggregate("sum", col("cost_cache_read_usd")), "cache_read_usd"),
        exp.alias_(d.aggregate("sum", col("cost_cache_write_usd")), "cache_write_usd"),
        exp.alias_(d.aggregate("sum", col("cost_total_usd")), "total_usd"),
    ]


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
        """From the `_measures` columns of a result row, in order."""
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


def cost_and_usage_tree(query: CostQuery, r: Reader) -> exp.Select:
    """The statement of ``query`` for ``r``'s engine (pure)."""
    keys = []
    for i, dimension in enumerate(query.by):
        try:
            keys.append(exp.alias_(r.dimension(dimension), f"key{i}"))
        except ValidationError as exc:
            raise ValidationError("by", exc.message) from None
    period = r.d.local_date(column("timestamp", "r"), query.tz, _TRUNC[query.granularity])
    grouped = [period, *(k.this for k in keys)]
    order = [
        exp.Ordered(this=period.copy(), nulls_first=False),
        exp.Ordered(this=exp.column("total_usd"), desc=True, nulls_first=False),
        *(exp.Ordered(this=k.this.copy(), nulls_first=False) for k in keys),
    ]
    return (
        exp.select(exp.alias_(period.copy(), "period"), *keys, *_measures(r))
        .from_(r.table("records", "r"))
        .where(r.in_range("r", query.workspace, query.start, query.end))
        .group_by(*(g.copy() for g in grouped))
        .order_by(*order)
        .limit(MAX_GROUPS + 1)
    )


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


def cost_and_usage(engine: ReadSource, query: CostQuery) -> CostAndUsage:
    """Run ``query`` over the records of ``engine`` (a `QueryEngine`, or a DuckDB
    `Database`). Raises `ValidationError` on ``by`` for an unknown dimension, or when the
    answer would pass `MAX_GROUPS` rows."""
    r = Reader.of(engine)
    rows = r.rows(cost_and_usage_tree(query, r))
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
def _profile_tree(
    r: Reader, arn: str, start: datetime, end: datetime, workspace: str
) -> exp.Select:
    def col(name: str) -> exp.Expr:
        return column(name, "r")

    def total(name: str) -> exp.Expr:
        return exp.Coalesce(this=exp.Sum(this=col(name)), expressions=[number(0)])

    failed = exp.EQ(this=col("status"), expression=string("ERROR"))
    not_failed = exp.NEQ(
        this=exp.Coalesce(this=col("status"), expressions=[string("")]), expression=string("ERROR")
    )
    without_text = exp.or_(
        is_null(col("input_character_count")),
        exp.and_(is_null(col("output_character_count")), not_failed),
    )
    return (
        exp.select(
            *_measures(r),
            count_if(failed),
            exp.Count(this=col("latency_ms")),
            total("latency_ms"),
            total("input_character_count"),
            total("output_character_count"),
            count_if(without_text),
        )
        .from_(r.table("records", "r"))
        .where(r.in_range("r", workspace, start, end))
        .where(exp.EQ(this=col("inference_profile_arn"), expression=string(arn)))
    )


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
    engine: ReadSource,
    profile_arn: str,
    start: datetime,
    end: datetime,
    workspace: str = DEFAULT_WORKSPACE,
) -> ProfileUsage:
    """The figures of the records stamped with ``profile_arn`` in ``[start, end)``."""
    r = Reader.of(engine)
    found = r.rows(_profile_tree(r, profile_arn, start, end, workspace))
    row: tuple[Any, ...] = found[0] if found else (0,) * 17  # an aggregate: one row
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
def _models_tree(r: Reader, start: datetime, end: datetime, workspace: str) -> exp.Select:
    names = ("provider", "model_id", "resolved_model_id")
    used = exp.or_(
        *(not_null(column(n, "r")) for n in ("input_token_count", "output_token_count")),
        not_null(column("cost_total_usd", "r")),
    )
    count = exp.Count(this=exp.Star())
    return (
        exp.select(
            *(column(n, "r") for n in names),
            count,
            r.d.aggregate("max", column("timestamp", "r")),
        )
        .from_(r.table("records", "r"))
        .where(r.in_range("r", workspace, start, end))
        .where(not_null(column("model_id", "r")))
        .where(used)
        .group_by(*(column(n, "r") for n in names))
        .order_by(
            exp.Ordered(this=count.copy(), desc=True),
            *(exp.Ordered(this=column(n, "r"), nulls_first=False) for n in names),
        )
        .limit(MAX_MODELS)
    )


def models_seen(
    engine: ReadSource, start: datetime, end: datetime, workspace: str = DEFAULT_WORKSPACE
) -> list[SeenModel]:
    """Each (provider, modelId, resolvedModelId) the records of ``[start, end)`` used, most
    seen first (at most `MAX_MODELS`), with its count and last timestamp. A record counts
    when it has a token count or a cost: a call refused before it reached a model (no route,
    a budget) used nothing that a price could be missing for."""
    r = Reader.of(engine)
    rows = r.rows(_models_tree(r, start, end, workspace))
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
