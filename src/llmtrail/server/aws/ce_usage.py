"""A workspace's cost and usage as Cost Explorer's line items: one per period, usage type
and tag values, read with one GROUP BY over the records' hot columns.

The statement is a sqlglot tree (values as escaped literals, as the query compiler writes
them) over the same columns ``/api/cost`` sums (`llmtrail.analytics.attribution`): the cost
stored on each record at capture (``cost.*Usd``) and its token counts. It groups by period
(hour, day or month of UTC), provider, model (``resolvedModelId``, else ``modelId``), region,
operation and the values of the tag keys the request names (a key is an inference-profile
tag, else a ``requestMetadata`` key, promoted column first), so its rows stay few however
many records there are. Each row then splits into a line item per token kind
(`ce_names.KINDS`) and one for charges priced apart from tokens; filters and groupings are
decided on those line items (`ce_filter`), since ``USAGE_TYPE`` divides a record.

Quantities are the tokens each kind was billed for: cache reads and writes apart from input
tokens, as `llmtrail.analytics.usage_counts` counts them — an OpenAI-style record's
``inputTokenCount`` includes its cached tokens, so they are taken out of its input tokens.
A call without a price counts its tokens at no cost.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlglot import exp

from llmtrail.analytics.model_names import normalise_provider
from llmtrail.analytics.usage_counts import input_includes_cache
from llmtrail.server.aws.ce_names import KINDS, service_name, usage_type
from llmtrail.server.aws.operations import AwsError
from llmtrail.store.duckdb.database import Database
from llmtrail.store.schema import RecordSchema, metadata_column_name

__all__ = [
    "DIMENSIONS",
    "MAX_ROWS",
    "LineItem",
    "UsageScope",
    "has_records",
    "keys_sql",
    "line_items",
    "tag_keys_in",
    "usage_sql",
]

# The dimensions every line item has a value of.
DIMENSIONS = ("SERVICE", "USAGE_TYPE", "LINKED_ACCOUNT", "REGION", "OPERATION")
MAX_ROWS = 200_000  # grouped rows one request may read
_ZERO = Decimal(0)
_PARTS = ("cost_input_usd", "cost_output_usd", "cost_cache_read_usd", "cost_cache_write_usd")


@dataclass(frozen=True)
class LineItem:
    """One usage type's cost and quantity in one bucket (hour, day or month) for one
    combination of dimension and tag values (a tag without a value is None)."""

    bucket: datetime
    dimensions: dict[str, str]
    tags: dict[str, str | None]
    cost: Decimal
    quantity: int
    tokens: bool  # the quantity counts tokens (else calls with other charges)


@dataclass(frozen=True)
class UsageScope:
    """What to read: the records of ``workspace`` in ``[start, end)``, bucketed by ``unit``
    (``hour``, ``day``, ``month``), with the values of ``tag_keys``."""

    workspace: str
    start: datetime
    end: datetime
    unit: str
    tag_keys: tuple[str, ...]
    account: str  # LINKED_ACCOUNT
    region: str  # the region of records that name none


def _column(name: str) -> exp.Column:
    return exp.column(name, quoted=True)


def _fn(name: str, *args: exp.Expression) -> exp.Anonymous:
    return exp.Anonymous(this=name, expressions=list(args))


def _moment(value: datetime) -> exp.Expression:
    return exp.cast(exp.Literal.string(value.astimezone(UTC).isoformat()), "TIMESTAMPTZ")


def _map_value(column: str, key: str) -> exp.Expression:
    return exp.Bracket(this=_column(column), expressions=[exp.Literal.string(key)])


def _tag(key: str, schema: RecordSchema) -> exp.Expression:
    """The inference-profile tag ``key``, else the ``requestMetadata`` key."""
    metadata = _map_value("request_metadata", key)
    if key in schema.promoted_keys:
        metadata = exp.Coalesce(this=_column(metadata_column_name(key)), expressions=[metadata])
    return exp.Coalesce(this=_map_value("inference_profile_tags", key), expressions=[metadata])


def _sum(name: str) -> exp.Expression:
    return exp.Sum(this=_column(name))


def _sum_if_input(name: str) -> exp.Expression:
    """Cache tokens of records that have an input count (only those come out of it)."""
    has_input = exp.Not(this=exp.Is(this=_column("input_token_count"), expression=exp.Null()))
    return exp.Filter(this=_sum(name), expression=exp.Where(this=has_input))


def _other_calls() -> exp.Expression:
    parts: exp.Expression = _column(_PARTS[0])
    for name in _PARTS[1:]:
        parts = exp.Add(this=parts, expression=_column(name))
    priced_apart = exp.GT(this=_column("cost_total_usd"), expression=parts)
    return exp.Filter(this=exp.Count(this=exp.Star()), expression=exp.Where(this=priced_apart))


def _range(scope: UsageScope) -> exp.Condition:
    return exp.and_(
        exp.EQ(this=_column("workspace"), expression=exp.Literal.string(scope.workspace)),
        exp.GTE(this=_column("timestamp"), expression=_moment(scope.start)),
        exp.LT(this=_column("timestamp"), expression=_moment(scope.end)),
    )


def usage_sql(scope: UsageScope, schema: RecordSchema) -> str:
    """The DuckDB statement of ``scope`` (pure)."""
    utc = _fn("timezone", exp.Literal.string("UTC"), _column("timestamp"))
    keys: list[exp.Expression] = [
        _fn("date_trunc", exp.Literal.string(scope.unit), utc),
        _column("provider"),
        exp.Coalesce(this=_column("resolved_model_id"), expressions=[_column("model_id")]),
        _column("region"),
        _column("operation"),
        *(_tag(key, schema) for key in scope.tag_keys),
    ]
    measures = [
        _sum("input_token_count"),
        _sum_if_input("cache_read_input_token_count"),
        _sum_if_input("cache_write_input_token_count"),
        _sum("output_token_count"),
        _sum("cache_read_input_token_count"),
        _sum("cache_write_input_token_count"),
        *(_sum(name) for name in _PARTS),
        _sum("cost_total_usd"),
        _other_calls(),
    ]
    select = (
        exp.select(*(e.as_(f"k{i}") for i, e in enumerate(keys)))
        .select(*(e.as_(f"m{i}") for i, e in enumerate(measures)))
        .from_("records")
        .where(_range(scope))
        .group_by(*(exp.Literal.number(i + 1) for i in range(len(keys))))
        .limit(MAX_ROWS + 1)
    )
    return select.sql(dialect="duckdb")


def _has_records_sql(workspace: str) -> str:
    return (
        exp.select(exp.Literal.number(1))
        .from_("records")
        .where(exp.EQ(this=_column("workspace"), expression=exp.Literal.string(workspace)))
        .limit(1)
        .sql(dialect="duckdb")
    )


def has_records(db: Database, workspace: str) -> bool:
    """Whether ``workspace`` has ever stored a record that is still kept (blocking)."""
    sql = _has_records_sql(workspace)
    return db.read(lambda cursor: cursor.execute(sql).fetchone()) is not None


def _count(value: Any) -> int:
    return int(value or 0)


def _money(value: Any) -> Decimal:
    return _ZERO if value is None else Decimal(value)


def _items(row: Sequence[Any], scope: UsageScope) -> list[LineItem]:
    width = 5 + len(scope.tag_keys)
    bucket, provider, model, region, operation = row[:5]
    tags = dict(zip(scope.tag_keys, row[5:width], strict=True))
    given, read_in, write_in, output, read, write = (_count(v) for v in row[width : width + 6])
    amounts = [_money(v) for v in row[width + 6 : width + 10]]
    total, other_calls = _money(row[width + 10]), _count(row[width + 11])
    if input_includes_cache({"operation": operation}, normalise_provider(provider)):
        given = max(0, given - read_in - write_in)
    where = region or scope.region
    dimensions = {
        "SERVICE": service_name(provider),
        "LINKED_ACCOUNT": scope.account,
        "REGION": where,
        "OPERATION": operation or "",
    }
    at = bucket.replace(tzinfo=UTC) if bucket.tzinfo is None else bucket.astimezone(UTC)
    out: list[LineItem] = []
    quantities = (given, output, read, write)
    for kind, quantity, cost in zip(KINDS, quantities, amounts, strict=True):
        if quantity or cost:
            named = {**dimensions, "USAGE_TYPE": usage_type(where, model, kind)}
            out.append(LineItem(at, named, tags, cost, quantity, True))
    other = total - sum(amounts, _ZERO)
    if other or other_calls:
        named = {**dimensions, "USAGE_TYPE": usage_type(where, model, "other")}
        out.append(LineItem(at, named, tags, other, other_calls, False))
    return out


def line_items(db: Database, scope: UsageScope) -> list[LineItem]:
    """The line items of ``scope`` (blocking: run it off the event loop). More grouped rows
    than `MAX_ROWS` is a ValidationException saying how to ask for less."""
    sql = usage_sql(scope, db.schema)
    rows = db.read(lambda cursor: cursor.execute(sql).fetchall())
    if len(rows) > MAX_ROWS:
        raise AwsError(
            "ValidationException",
            f"the request would group more than {MAX_ROWS} rows of usage; ask for a shorter "
            "TimePeriod, a coarser Granularity or fewer tag keys",
        )
    items: list[LineItem] = []
    for row in rows:
        items += _items(row, scope)
    return items


def keys_sql(scope: UsageScope, schema: RecordSchema) -> tuple[str, str]:
    """The statements of the tag keys in ``scope``: the map keys (inference-profile tags,
    ``requestMetadata``), and how many records have each promoted key (pure)."""
    maps = [
        exp.select(_fn("unnest", _fn("map_keys", _column(name))).as_("k"))
        .from_("records")
        .where(_range(scope))
        for name in ("inference_profile_tags", "request_metadata")
    ]
    union = exp.union(maps[0], maps[1], distinct=True)
    counts = (
        exp.select(
            exp.Count(this=exp.Star()).as_("n"),
            *(
                exp.Count(this=_column(metadata_column_name(key))).as_(f"c{i}")
                for i, key in enumerate(schema.promoted_keys)
            ),
        )
        .from_("records")
        .where(_range(scope))
    )
    return union.sql(dialect="duckdb"), counts.sql(dialect="duckdb")


def tag_keys_in(db: Database, scope: UsageScope) -> list[str]:
    """Every tag key a record of ``scope`` has: inference-profile tags and ``requestMetadata``
    keys (blocking)."""
    union, counts = keys_sql(scope, db.schema)
    rows = db.read(lambda cursor: cursor.execute(union).fetchall())
    found = {str(row[0]) for row in rows if row[0] is not None}
    row = db.read(lambda cursor: cursor.execute(counts).fetchone())
    if row is not None:
        found |= {k for k, n in zip(db.schema.promoted_keys, row[1:], strict=True) if n}
    return sorted(found)
