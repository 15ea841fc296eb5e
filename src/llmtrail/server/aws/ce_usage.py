"""A workspace's cost and usage as Cost Explorer's line items: one per period, usage type
and tag values, read with one GROUP BY over the records' hot columns.

The statement is a sqlglot tree (values as escaped literals, as the query compiler writes
them) rendered for the store's engine and run by its `QueryEngine` (`llmtrail.query.reads`),
DuckDB or ClickHouse, over the same columns ``/api/cost`` sums
(`llmtrail.analytics.attribution`): the cost stored on each record at capture (``cost.*Usd``)
and its token counts. It groups by period (hour, day or month of UTC), provider, model
(``resolvedModelId``, else ``modelId``), region, operation and the values of the tag keys the
request names (a key is an inference-profile tag, else a ``requestMetadata`` key, promoted
column first), so its rows stay few however many records there are. Each row then splits
into a line item per token kind (`ce_names.KINDS`) and one for charges priced apart from
tokens; filters and groupings are decided on those line items (`ce_filter`), since
``USAGE_TYPE`` divides a record.

Quantities are the tokens each kind was billed for: cache reads and writes apart from input
tokens, as `llmtrail.pricing.usage_counts` counts them — an OpenAI-style record's
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

from llmtrail.pricing.model_names import normalise_provider
from llmtrail.pricing.usage_counts import input_includes_cache
from llmtrail.query.dialects import not_null
from llmtrail.query.reads import Reader, ReadSource, count_if
from llmtrail.schema import metadata_column_name
from llmtrail.server.aws.ce_names import KINDS, service_name, usage_type
from llmtrail.server.aws.operations import AwsError

__all__ = [
    "DIMENSIONS",
    "MAX_ROWS",
    "LineItem",
    "UsageScope",
    "has_records",
    "keys_trees",
    "line_items",
    "tag_keys_in",
    "usage_tree",
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


def _tag(r: Reader, key: str) -> exp.Expr:
    """The inference-profile tag ``key``, else the ``requestMetadata`` key (promoted column
    first)."""
    metadata = r.d.map_get(_column("request_metadata"), key)
    if key in r.schema.promoted_keys:
        metadata = exp.Coalesce(this=_column(metadata_column_name(key)), expressions=[metadata])
    tag = r.d.map_get(_column("inference_profile_tags"), key)
    return exp.Coalesce(this=tag, expressions=[metadata])


def _sum(name: str) -> exp.Expr:
    return exp.Sum(this=_column(name))


def _sum_if_input(name: str) -> exp.Expr:
    """Cache tokens of records that have an input count (only those come out of it)."""
    has_input = not_null(_column("input_token_count"))
    return exp.Sum(this=exp.Case().when(has_input, _column(name)))


def _other_calls() -> exp.Expr:
    parts: exp.Expr = _column(_PARTS[0])
    for name in _PARTS[1:]:
        parts = exp.Add(this=parts, expression=_column(name))
    return count_if(exp.GT(this=_column("cost_total_usd"), expression=parts))


def _records(r: Reader, *columns: exp.Expr) -> exp.Select:
    return exp.select(*columns).from_(r.table("records", "r"))


def _range(r: Reader, scope: UsageScope) -> exp.Expr:
    return r.in_range("r", scope.workspace, scope.start, scope.end)


def usage_tree(scope: UsageScope, r: Reader) -> exp.Select:
    """The statement of ``scope`` for ``r``'s engine (pure)."""
    keys: list[exp.Expr] = [
        r.d.utc_bucket(_column("timestamp"), scope.unit),
        _column("provider"),
        exp.Coalesce(this=_column("resolved_model_id"), expressions=[_column("model_id")]),
        _column("region"),
        _column("operation"),
        *(_tag(r, key) for key in scope.tag_keys),
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
    return (
        _records(r, *(exp.alias_(e, f"k{i}") for i, e in enumerate(keys)))
        .select(*(exp.alias_(e, f"m{i}") for i, e in enumerate(measures)))
        .where(_range(r, scope))
        .group_by(*(e.copy() for e in keys))
        .limit(MAX_ROWS + 1)
    )


def has_records(engine: ReadSource, workspace: str) -> bool:
    """Whether ``workspace`` has ever stored a record that is still kept (blocking)."""
    r = Reader.of(engine)
    mine = exp.EQ(this=_column("workspace"), expression=exp.Literal.string(workspace))
    return bool(r.rows(_records(r, exp.Literal.number(1)).where(mine).limit(1)))


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


def line_items(engine: ReadSource, scope: UsageScope) -> list[LineItem]:
    """The line items of ``scope`` (blocking: run it off the event loop). More grouped rows
    than `MAX_ROWS` is a ValidationException saying how to ask for less."""
    r = Reader.of(engine)
    rows = r.rows(usage_tree(scope, r))
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


def keys_trees(scope: UsageScope, r: Reader) -> tuple[exp.Expr, exp.Select]:
    """The statements of the tag keys in ``scope``: the map keys (inference-profile tags,
    ``requestMetadata``), and how many records have each promoted key (pure)."""
    maps = [
        _records(r, exp.alias_(r.d.map_keys(_column(name)), "k")).where(_range(r, scope))
        for name in ("inference_profile_tags", "request_metadata")
    ]
    union = exp.union(maps[0], maps[1], distinct=True)
    counts = _records(
        r,
        exp.alias_(exp.Count(this=exp.Star()), "n"),
        *(
            exp.alias_(exp.Count(this=_column(metadata_column_name(key))), f"c{i}")
            for i, key in enumerate(r.schema.promoted_keys)
        ),
    ).where(_range(r, scope))
    return union, counts


def tag_keys_in(engine: ReadSource, scope: UsageScope) -> list[str]:
    """Every tag key a record of ``scope`` has: inference-profile tags and ``requestMetadata``
    keys (blocking)."""
    r = Reader.of(engine)
    union, counts = keys_trees(scope, r)
    found = {str(row[0]) for row in r.rows(union) if row[0] is not None}
    row = next(iter(r.rows(counts)), None)
    if row is not None:
        found |= {k for k, n in zip(r.schema.promoted_keys, row[1:], strict=True) if n}
    return sorted(found)
