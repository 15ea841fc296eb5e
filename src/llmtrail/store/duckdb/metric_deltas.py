"""A batch's metric staging rows computed with Arrow, where the batch is converted.

`DuckDBRollups` stages each batch's rollups with two SQL statements over the batch. DuckDB
plans each for ~5 ms, whatever the batch holds: ~17 ms of CPU a transaction in the serving
process, the store's owner, which a gateway batch (~1 s of calls) paid beside the relay.
`batch_deltas` computes the same rows with Arrow's hash aggregation in the process that
converts the batch (the recorder, ~2 ms for 650 records); the serving process then inserts
them as they are, mapping the dimension values the rollups refuse (`DuckDBRollups.staging`).

Each expression mirrors `DuckDBRollups._stage_sql`'s, SQL's three-valued logic included
(`tests/metrics/test_metric_deltas.py` compares both over random batches). Where a batch
holds what only the SQL computes the same way, there are no deltas and the SQL stages it: a
dimension read from the metadata map (a key not promoted to a column), a timestamp missing
or before 1970 (integer division rounds differently there), or a cost beyond `MONEY_MAX_USD`
(the SQL bounds it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from llmtrail.metrics.dimensions import DIMENSIONS, Dimension
from llmtrail.metrics.sketch import LOG_GAMMA, ZERO_BUCKET
from llmtrail.record import MONEY_MAX_USD
from llmtrail.schema import RecordSchema, metadata_column_name

if TYPE_CHECKING:
    import pyarrow as pa

BUCKET_US = 10 * 1_000_000  # staging rows are 10 s buckets
# (staging column, record column, Arrow's hash aggregation); the flags are 0/1 columns
_SUMMED = (
    ("client_errors", "_client_error", "sum"),
    ("server_errors", "_server_error", "sum"),
    ("throttles", "_throttle", "sum"),
    ("errors", "_error", "sum"),
    ("input_tokens", "input_token_count", "sum"),
    ("output_tokens", "output_token_count", "sum"),
    ("cache_read_tokens", "cache_read_input_token_count", "sum"),
    ("cache_write_tokens", "cache_write_input_token_count", "sum"),
    ("cost_usd", "cost_total_usd", "sum"),
    ("cost_count", "cost_total_usd", "count"),
    ("latency_count", "latency_ms", "count"),
    ("latency_sum", "latency_ms", "sum"),
    ("latency_min", "latency_ms", "min"),
    ("latency_max", "latency_ms", "max"),
    ("ttft_count", "time_to_first_token_ms", "count"),
    ("ttft_sum", "time_to_first_token_ms", "sum"),
    ("ttft_min", "time_to_first_token_ms", "min"),
    ("ttft_max", "time_to_first_token_ms", "max"),
)
_ZERO_WHEN_EMPTY = {"sum"}  # SQL's coalesce(sum(…), 0); a min or max of nothing stays NULL
HISTOGRAMS = (("latency", "latency_ms"), ("ttft", "time_to_first_token_ms"))


def batch_deltas(batch: pa.Table, schema: RecordSchema) -> tuple[pa.Table, pa.Table] | None:
    """The ``metric_staging`` and ``metric_staging_histograms`` rows of ``batch`` (a record
    table as `batch_tables` makes it), before any value is refused; None where only the
    SQL stages it the same way (module docstring)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if batch.num_rows == 0 or not _plain(batch):
        return None
    dims = _dimensions(batch, schema)
    if dims is None:
        return None
    micros = batch.column("timestamp").cast(pa.int64())
    bucket = pc.multiply(pc.divide(micros, BUCKET_US), BUCKET_US)
    keys = {
        "workspace": batch.column("workspace"),
        "bucket": bucket.cast(pa.timestamp("us", tz="UTC")),
        **dims,
    }
    status, http = batch.column("status"), batch.column("error_http_status")
    error = pc.equal(status, "ERROR")
    throttle = pc.fill_null(
        pc.or_kleene(
            pc.equal(batch.column("error_code"), "ThrottlingException"), pc.equal(http, 429)
        ),
        False,
    )
    client = pc.and_kleene(
        pc.and_kleene(error, pc.and_kleene(pc.greater_equal(http, 400), pc.less_equal(http, 499))),
        pc.invert(throttle),
    )
    flags = {
        "_error": error,
        "_client_error": client,
        "_server_error": pc.and_kleene(error, pc.greater_equal(http, 500)),
        "_throttle": throttle,
    }
    measured = {name: pc.fill_null(flag, False).cast(pa.int64()) for name, flag in flags.items()}
    for _, column, _ in _SUMMED:
        if column not in measured:
            measured[column] = batch.column(column)
    table = pa.table({**keys, **measured})
    names = list(keys)
    aggregations = [("workspace", "count", pc.CountOptions(mode="all"))]
    aggregations += [(column, how) for _, column, how in _SUMMED]  # type: ignore[misc]
    grouped = table.group_by(names, use_threads=False).aggregate(aggregations)
    columns = {name: grouped.column(name) for name in names}
    columns["invocations"] = grouped.column("workspace_count")
    for staged, column, how in _SUMMED:
        values = grouped.column(f"{column}_{how}")
        if how in _ZERO_WHEN_EMPTY:
            values = pc.fill_null(values, pa.scalar(0, values.type))
        columns[staged] = values
    staging = pa.table(columns)
    histograms = [_histogram(table, names, metric, column) for metric, column in HISTOGRAMS]
    return staging, pa.concat_tables(histograms)


def _dimensions(batch: pa.Table, schema: RecordSchema) -> dict[str, pa.ChunkedArray] | None:
    """Each dimension's value per record, as `DuckDBRollups.dimension_sql` reads it."""
    import pyarrow as pa
    import pyarrow.compute as pc

    empty = pa.scalar("", pa.string())
    out = {}
    for dim in DIMENSIONS:
        value = _dimension(batch, schema, dim)
        if value is None:
            return None
        out[dim.column] = pc.coalesce(value, empty)
    return out


def _dimension(batch: pa.Table, schema: RecordSchema, dim: Dimension) -> pa.ChunkedArray | None:
    import pyarrow as pa
    import pyarrow.compute as pc

    if dim.metadata_key is not None:
        if dim.metadata_key not in schema.promoted_keys:
            return None  # in the metadata map: the SQL reads it
        return batch.column(metadata_column_name(dim.metadata_key))
    if dim.column == "inference_profile":
        return pc.coalesce(
            batch.column("inference_profile_name"), batch.column("inference_profile_arn")
        )
    if dim.column == "error_type":
        kind = pc.coalesce(batch.column("error_type"), batch.column("error_code"))
        return pc.if_else(
            pc.equal(batch.column("status"), "ERROR"), kind, pa.scalar(None, kind.type)
        )
    return batch.column(dim.column)


def _plain(batch: pa.Table) -> bool:
    """Every timestamp set and from 1970 on, every cost within `MONEY_MAX_USD`."""
    import pyarrow.compute as pc

    stamps = batch.column("timestamp")
    if stamps.null_count or pc.min(stamps.cast("int64")).as_py() < 0:
        return False
    bounds = pc.min_max(batch.column("cost_total_usd"))
    low, high = bounds["min"].as_py(), bounds["max"].as_py()
    return low is None or (low >= -MONEY_MAX_USD and high <= MONEY_MAX_USD)


def _histogram(table: pa.Table, keys: list[str], metric: str, column: str) -> pa.Table:
    """One histogram's staging rows: per series and bucket, the records whose ``column`` is
    set, counted by sketch bucket (``ceil(ln(v) / LOG_GAMMA)``, `ZERO_BUCKET` for v ≤ 0)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    values = table.column(column)
    kept = table.filter(pc.is_valid(values))
    values = kept.column(column)
    positive = pc.greater(values, 0)
    logged = pc.ln(pc.if_else(positive, values, 1).cast(pa.float64()))
    idx = pc.if_else(positive, pc.ceil(pc.divide(logged, LOG_GAMMA)).cast(pa.int32()), ZERO_BUCKET)
    counted = pa.table({**{k: kept.column(k) for k in keys}, "idx": idx.cast(pa.int32())})
    grouped = counted.group_by([*keys, "idx"], use_threads=False).aggregate(
        [("idx", "count", pc.CountOptions(mode="all"))]
    )
    n = grouped.num_rows
    columns = {k: grouped.column(k) for k in keys}
    columns["metric"] = pa.repeat(pa.scalar(metric, pa.string()), n)
    columns["idx"] = grouped.column("idx")
    columns["n"] = grouped.column("idx_count")
    return pa.table(columns)
