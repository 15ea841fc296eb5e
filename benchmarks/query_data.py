"""Synthetic invocation records for the query benchmarks, written straight into the stores.

    .venv/bin/python benchmarks/query_data.py --duckdb /tmp/q.duckdb            # 10M rows
    .venv/bin/python benchmarks/query_data.py --rows 1000000 --duckdb /tmp/q.duckdb \\
        --chdb /tmp/q-chdb --database bench                                    # and chdb

Ten million records cannot go through `InvocationRecord` objects in a minute, so the rows
are built column by column with numpy and Arrow, one chunk at a time, in the exact Arrow
schema the stores insert (`llmtrail.schema` with the default promoted keys), and
inserted as Arrow tables into a DuckDB file and/or a ClickHouse database, both created by
llmtrail's own migrations. Every row reads back as a valid record through either store.

The shape: 30 days ending at `END`, more traffic in working hours; a dozen applications
(Zipf-weighted), 400 tenants, 20,000 users, ten models across Bedrock, OpenAI, Anthropic
and ``sim`` with their own operations, token counts and latencies; about 2 % errors
(throttling, timeouts, validation, server errors) with HTTP status and message; a
non-promoted ``feature`` key in ``requestMetadata`` on a tenth of them; trace ids on about
half. Rows come out in time order. The same ``seed`` gives the same rows (each chunk has its own
generator seeded with ``(seed, chunk)``), whatever stores they are written to.
"""

from __future__ import annotations

import argparse
import queue
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa

from llmtrail.schema import RecordSchema, metadata_column_name
from llmtrail.store.arrow import arrow_schema

END = datetime(2026, 11, 23, tzinfo=UTC)
DAYS = 30
DEFAULT_ROWS = 10_000_000
DEFAULT_CHUNK = 1_000_000
ERROR_RATE = 0.02

APPS = (
    "CustomerServiceApp",
    "SearchAssistant",
    "BillingBot",
    "DocSummarizer",
    "CodeReviewer",
    "SalesCopilot",
    "HRHelpdesk",
    "ContractAnalyzer",
    "MarketingWriter",
    "DataExplorer",
    "TranslationHub",
    "OnboardingGuide",
)
TEAMS = ("customer-support", "search", "billing", "platform", "engineering", "sales", "people")
APP_TEAM = np.array([0, 1, 2, 3, 4, 5, 6, 2, 5, 4, 3, 6])
COST_CENTERS = ("cc-1001", "cc-1002", "cc-2001", "cc-3001", "cc-4001", "cc-5001", "cc-6001")
FEATURES = tuple(f"feature-{i:02d}" for i in range(30))
TENANTS = 400
USERS = 20_000
TENANT_NAMES = tuple(f"tenant-{i:04d}" for i in range(TENANTS))
USER_NAMES = tuple(f"user-{i:05d}" for i in range(USERS))

# model id, provider, resolved model, its two operations, mean output tokens, ms per token
MODELS = (
    ("us.anthropic.claude-sonnet-4-5-20250929-v1:0", "bedrock", "claude-sonnet-4-5",
     ("Converse", "ConverseStream"), 320, 18.0),
    ("anthropic.claude-3-haiku-20240307-v1:0", "bedrock", "claude-3-haiku",
     ("InvokeModel", "Converse"), 180, 6.0),
    ("amazon.nova-lite-v1:0", "bedrock", "nova-lite", ("Converse", "ConverseStream"), 150, 5.0),
    ("meta.llama3-1-70b-instruct-v1:0", "bedrock", "llama3-1-70b",
     ("InvokeModel", "InvokeModelWithResponseStream"), 220, 12.0),
    ("openai/gpt-4o", "openai", "gpt-4o-2024-08-06", ("ChatCompletions", "ChatCompletions"),
     260, 14.0),
    ("openai/gpt-4o-mini", "openai", "gpt-4o-mini-2024-07-18",
     ("ChatCompletions", "ChatCompletions"), 200, 7.0),
    ("openai/text-embedding-3-small", "openai", "text-embedding-3-small",
     ("Embeddings", "Embeddings"), 0, 0.0),
    ("anthropic/claude-sonnet-4-5", "anthropic", "claude-sonnet-4-5-20250929",
     ("Messages", "Messages"), 340, 18.0),
    ("anthropic/claude-haiku-4-5", "anthropic", "claude-haiku-4-5-20251001",
     ("Messages", "Messages"), 190, 6.5),
    ("sim/echo", "sim", "echo", ("ChatCompletions", "Messages"), 60, 1.0),
)  # fmt: skip
MODEL_WEIGHTS = (0.22, 0.12, 0.08, 0.05, 0.16, 0.14, 0.08, 0.08, 0.05, 0.02)
STREAMING = ("ConverseStream", "InvokeModelWithResponseStream")

# error code, HTTP status, message, share of errors
ERRORS = (
    ("ThrottlingException", 429, "Too many requests, please wait before trying again.", 0.5),
    ("ValidationException", 400, "Input is too long for requested model.", 0.2),
    ("ModelTimeoutException", 408, "Model has timed out in processing the request.", 0.15),
    ("InternalServerException", 500, "The server encountered an internal error.", 0.1),
    ("ServiceUnavailableException", 503, "The service is temporarily unavailable.", 0.05),
)
STOP_REASONS = ("end_turn", "max_tokens", "tool_use")
REGIONS = ("us-east-1", "us-west-2", "eu-central-1")

# each byte's two hex digits as one little-endian uint16, so a gather makes the text
_HEX = np.frombuffer(b"".join(f"{i:02x}".encode() for i in range(256)), dtype="<u2")


def _strings(vocab: Sequence[str], index: np.ndarray, keep: np.ndarray | None = None) -> pa.Array:
    """``vocab[index]`` (null where not ``keep``) as a dictionary-encoded Arrow array: no
    string is copied per row, and both engines read dictionaries natively."""
    words, position = np.unique(np.array(vocab, dtype=object), return_inverse=True)
    indices = pa.array(position[index].astype(np.int32), mask=None if keep is None else ~keep)
    return pa.DictionaryArray.from_arrays(indices, pa.array(words, pa.string()))


def _constant(value: str, rows: int) -> pa.Array:
    return _strings([value], np.zeros(rows, np.int32))


def _random_bytes(rng: np.random.Generator, rows: int) -> np.ndarray:
    return np.frombuffer(rng.bytes(rows * 16), dtype=np.uint8).reshape(rows, 16).copy()


def _hex_strings(raw: np.ndarray, dashed: bool, keep: np.ndarray | None = None) -> pa.Array:
    """Rows of 16 bytes as lowercase hex strings, UUID-dashed or plain (vectorised)."""
    n = raw.shape[0]
    digits = _HEX[raw].view(np.uint8).reshape(n, 32)
    if dashed:
        out = np.full((n, 36), ord("-"), dtype=np.uint8)
        for start, end, at in ((0, 8, 0), (8, 12, 9), (12, 16, 14), (16, 20, 19), (20, 32, 24)):
            out[:, at : at + end - start] = digits[:, start:end]
        digits = out
    width = digits.shape[1]
    offsets = np.arange(n + 1, dtype=np.int32) * width
    validity = None if keep is None else pa.array(keep).buffers()[1]
    text = np.ascontiguousarray(digits).reshape(-1)
    return pa.StringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(text), validity)


def _uuid7(rng: np.random.Generator, micros: np.ndarray) -> pa.Array:
    """UUIDv7 strings whose time is each row's timestamp (milliseconds)."""
    raw = _random_bytes(rng, micros.size)
    ms = (micros // 1000).astype(">u8").view(np.uint8).reshape(-1, 8)[:, 2:]
    raw[:, :6] = ms
    raw[:, 6] = 0x70 | (raw[:, 6] & 0x0F)
    raw[:, 8] = 0x80 | (raw[:, 8] & 0x3F)
    return _hex_strings(raw, dashed=True)


def _zipf(rng: np.random.Generator, size: int, n: int, s: float = 1.1) -> np.ndarray:
    """``size`` draws from ``range(n)``, value ``k`` with weight ``1 / (k + 1) ** s``."""
    cdf = np.cumsum(1.0 / np.arange(1, n + 1) ** s)
    return np.searchsorted(cdf, rng.random(size) * cdf[-1], side="right").clip(0, n - 1)


def _pick(rng: np.random.Generator, size: int, weights: Sequence[float]) -> np.ndarray:
    """``size`` draws from ``range(len(weights))`` with those (relative) weights."""
    cdf = np.cumsum(weights)
    return np.searchsorted(cdf, rng.random(size) * cdf[-1], side="right").clip(0, len(cdf) - 1)


def _feature_maps(rng: np.random.Generator, rows: int) -> pa.Array:
    """``{"feature": …}`` on a tenth of the rows (a key nobody promoted), no map elsewhere."""
    has = rng.random(rows) < 0.1
    offsets = np.concatenate([[0], np.cumsum(has)]).astype(np.int32)
    count = int(offsets[-1])
    return pa.MapArray.from_arrays(
        pa.array(offsets),
        pa.repeat(pa.scalar("feature"), count),
        pa.array(FEATURES).take(pa.array(_zipf(rng, count, len(FEATURES)))),
        mask=pa.array(~has),
    )


def _time_quantiles() -> tuple[np.ndarray, np.ndarray]:
    """The cumulative share of traffic at each hour edge over the 30 days (busier 8–18 UTC,
    quieter at weekends), and those edges in epoch microseconds."""
    hours = np.arange(DAYS * 24)
    start = END - timedelta(days=DAYS)
    hour_of_day = hours % 24
    weekday = (start.weekday() + hours // 24) % 7
    weight = np.where((hour_of_day >= 8) & (hour_of_day < 18), 3.0, 1.0)
    weight = weight * np.where(weekday >= 5, 0.4, 1.0)
    cdf = np.concatenate([[0.0], np.cumsum(weight) / weight.sum()])
    start_us = int(start.timestamp()) * 1_000_000
    edges = start_us + np.arange(DAYS * 24 + 1, dtype=np.int64) * 3_600_000_000
    return cdf, edges


def chunk_table(
    seed: int, chunk: int, first: int, rows: int, total: int, schema: pa.Schema
) -> pa.Table:
    """Rows ``first .. first+rows`` of ``total``: chunk ``chunk``, in time order."""
    rng = np.random.default_rng([seed, chunk])
    cdf, edges = _time_quantiles()
    share = np.sort(rng.uniform(first / total, (first + rows) / total, rows))
    ts = np.interp(share, cdf, edges.astype(np.float64)).astype(np.int64)

    app = _zipf(rng, rows, len(APPS))
    model = _pick(rng, rows, MODEL_WEIGHTS)
    operations = sorted({op for m in MODELS for op in m[3]})
    op_index = np.array([[operations.index(op) for op in m[3]] for m in MODELS])
    operation = op_index[model, rng.integers(0, 2, rows)]
    failed = rng.random(rows) < ERROR_RATE
    error = _pick(rng, rows, [e[3] for e in ERRORS])

    mean_out = np.array([m[4] for m in MODELS], dtype=np.float64)[model]
    per_token = np.array([m[5] for m in MODELS])[model]
    embedding = mean_out == 0
    in_tokens = np.clip(rng.lognormal(6.0, 1.0, rows), 1, 200_000).astype(np.int64)
    in_tokens[embedding] = np.clip(in_tokens[embedding] // 8, 1, None)
    out_tokens = np.clip(rng.lognormal(np.log(np.maximum(mean_out, 1)), 0.6), 1, 8192)
    out_tokens = out_tokens.astype(np.int64)
    latency = (80 + out_tokens * per_token * rng.lognormal(0, 0.25, rows)).astype(np.int64)
    latency[embedding] = 20 + in_tokens[embedding] // 50 + rng.integers(0, 40, embedding.sum())
    latency[failed] = rng.integers(5, 3000, failed.sum())
    streamed = np.isin(operation, [operations.index(op) for op in STREAMING])
    ttft = (latency * rng.uniform(0.05, 0.3, rows)).astype(np.int64)
    cached = (np.array([m[1] for m in MODELS])[model] != "openai") & (rng.random(rows) < 0.3)
    cache_read = np.where(cached, in_tokens // 2, 0)

    tenant = _zipf(rng, rows, TENANTS, 0.9)
    user = (tenant * 50 + _zipf(rng, rows, 50, 1.2)) % USERS
    traced = rng.random(rows) < 0.5
    stop = _pick(rng, rows, (0.85, 0.1, 0.05))
    arrived = ts + latency * 1000 + rng.integers(200_000, 2_000_000, rows)
    cols: dict[str, pa.Array] = {
        "record_id": _uuid7(rng, ts),
        "workspace": _constant("default", rows),
        "timestamp": pa.array(ts, pa.timestamp("us", tz="UTC")),
        "request_id": _hex_strings(_random_bytes(rng, rows), dashed=True),
        "schema_type": _constant("ModelInvocationLog", rows),
        "schema_version": _constant("1.0", rows),
        "account_id": _constant("123456789012", rows),
        "identity_arn": _strings([f"arn:aws:iam::123456789012:role/{a}" for a in APPS], app),
        "region": _strings(REGIONS, _pick(rng, rows, (0.7, 0.2, 0.1))),
        "operation": _strings(operations, operation),
        "model_id": _strings([m[0] for m in MODELS], model),
        "request_metadata": _feature_maps(rng, rows),
        "input_content_type": _constant("application/json", rows),
        "input_token_count": pa.array(in_tokens),
        "cache_read_input_token_count": pa.array(cache_read),
        "cache_write_input_token_count": pa.array(np.zeros(rows, np.int64)),
        "output_content_type": _constant("application/json", rows),
        "output_token_count": pa.array(out_tokens, mask=failed | embedding),
        "error_code": _strings([e[0] for e in ERRORS], error, failed),
        "provider": _strings([m[1] for m in MODELS], model),
        "resolved_model_id": _strings([m[2] for m in MODELS], model),
        "latency_ms": pa.array(latency),
        "time_to_first_token_ms": pa.array(ttft, mask=~streamed | failed),
        "stop_reason": _strings(STOP_REASONS, stop, ~failed & ~embedding),
        "status": _strings(["OK", "ERROR"], failed.astype(np.int32)),
        "error_type": _strings([e[0] for e in ERRORS], error, failed),
        "error_message": _strings([e[2] for e in ERRORS], error, failed),
        "error_http_status": pa.array(np.array([e[1] for e in ERRORS])[error], mask=~failed),
        "trace_id": _hex_strings(_random_bytes(rng, rows), dashed=False, keep=traced),
        "source": _constant("gateway", rows),
        "ingested_at": pa.array(arrived, pa.timestamp("us", tz="UTC")),
        metadata_column_name("application_name"): _strings(APPS, app),
        metadata_column_name("tenant_id"): _strings(TENANT_NAMES, tenant),
        metadata_column_name("user_id"): _strings(USER_NAMES, user),
        metadata_column_name("team"): _strings(TEAMS, APP_TEAM[app]),
        metadata_column_name("cost_center"): _strings(COST_CENTERS, APP_TEAM[app]),
        metadata_column_name("environment"): _strings(
            ["production", "staging"], (rng.random(rows) < 0.1).astype(np.int32)
        ),
    }
    fields = [pa.field(f.name, cols[f.name].type) if f.name in cols else f for f in schema]
    arrays = [cols[f.name] if f.name in cols else pa.nulls(rows, f.type) for f in schema]
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields))


def generate(
    rows: int = DEFAULT_ROWS,
    seed: int = 1,
    chunk_rows: int = DEFAULT_CHUNK,
    schema: RecordSchema | None = None,
) -> Iterator[pa.Table]:
    """The ``rows`` records as Arrow tables of at most ``chunk_rows`` rows, in time order."""
    arrow = arrow_schema((schema or RecordSchema()).record_columns)
    for chunk, first in enumerate(range(0, rows, chunk_rows)):
        yield chunk_table(seed, chunk, first, min(chunk_rows, rows - first), rows, arrow)


class DuckDBTarget:
    """A DuckDB file created (or extended) with llmtrail's migrations; chunks go to
    ``records``."""

    name = "duckdb"

    def __init__(self, path: Path, schema: RecordSchema) -> None:
        import duckdb

        from llmtrail.store.duckdb.migrations import apply_migrations

        self.conn = duckdb.connect(str(path))
        self.conn.execute("SET TimeZone = 'UTC'")
        self.conn.execute("SET preserve_insertion_order = false")
        apply_migrations(self.conn, schema)

    def insert(self, table: pa.Table) -> None:
        self.conn.register("_chunk", table)
        self.conn.execute("INSERT INTO records BY NAME SELECT * FROM _chunk")
        self.conn.unregister("_chunk")

    def close(self) -> None:
        self.conn.execute("CHECKPOINT")
        self.conn.close()


class ClickHouseTarget:
    """A ClickHouse database (server URL or ``chdb:///path``) created with llmtrail's
    migrations; chunks go to ``records``, optionally merged into one part per month after."""

    name = "clickhouse"

    def __init__(self, url: str, database: str, schema: RecordSchema, optimize: bool) -> None:
        from llmtrail.store.clickhouse import ClickHouseDatabase

        self.db = ClickHouseDatabase.open(url, database, schema)
        self.optimize = optimize

    def insert(self, table: pa.Table) -> None:
        self.db.insert_arrow("records", table, {"insert_deduplicate": 0})

    def close(self) -> None:
        if self.optimize:
            self.db.command(f"OPTIMIZE TABLE {self.db.table('records')} FINAL")
        self.db.close()


Target = DuckDBTarget | ClickHouseTarget


def _prefetched(tables: Iterator[pa.Table]) -> Iterator[pa.Table]:
    """``tables``, the next one built on a thread while the caller inserts this one (numpy,
    Arrow and both engines release the GIL, so the two cores both work)."""
    ahead: queue.Queue[pa.Table | BaseException | None] = queue.Queue(maxsize=1)

    def build() -> None:
        try:
            for table in tables:
                ahead.put(table)
            ahead.put(None)
        except BaseException as exc:  # handed to the consumer
            ahead.put(exc)

    thread = threading.Thread(target=build, name="query-data", daemon=True)
    thread.start()
    while (item := ahead.get()) is not None:
        if isinstance(item, BaseException):
            raise item
        yield item
    thread.join()


def write(
    rows: int,
    *,
    seed: int = 1,
    chunk_rows: int = DEFAULT_CHUNK,
    duckdb_path: Path | None = None,
    clickhouse_url: str | None = None,
    database: str = "llmtrail",
    optimize: bool = False,
) -> dict[str, float]:
    """Generate ``rows`` records once and write each chunk to the DuckDB file and/or the
    ClickHouse database given. Returns seconds: ``total`` and the time in each target."""
    schema = RecordSchema()
    started = time.perf_counter()
    targets: list[Target] = []
    spent: dict[str, float] = {}
    try:
        if duckdb_path is not None:
            targets.append(DuckDBTarget(duckdb_path, schema))
        if clickhouse_url is not None:
            targets.append(ClickHouseTarget(clickhouse_url, database, schema, optimize))
        spent.update(dict.fromkeys((t.name for t in targets), 0.0))
        for table in _prefetched(generate(rows, seed, chunk_rows, schema)):
            for target in targets:
                begun = time.perf_counter()
                target.insert(table)
                spent[target.name] += time.perf_counter() - begun
    finally:
        for target in targets:
            begun = time.perf_counter()
            target.close()
            spent[target.name] += time.perf_counter() - begun
    return {"total": time.perf_counter() - started, **spent}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--rows", type=int, default=DEFAULT_ROWS)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--chunk-rows", type=int, default=DEFAULT_CHUNK)
    parser.add_argument("--duckdb", type=Path, help="DuckDB file to create or extend")
    parser.add_argument("--chdb", type=Path, help="chdb data directory (embedded ClickHouse)")
    parser.add_argument("--clickhouse-url", help="ClickHouse server URL instead of --chdb")
    parser.add_argument("--database", default="llmtrail", help="ClickHouse database")
    parser.add_argument("--optimize", action="store_true", help="merge ClickHouse parts after")
    args = parser.parse_args(argv)
    url = args.clickhouse_url or (f"chdb://{args.chdb.resolve()}" if args.chdb else None)
    if args.duckdb is None and url is None:
        parser.error("give --duckdb, --chdb or --clickhouse-url")
    if args.rows < 1 or args.chunk_rows < 1:
        parser.error("--rows and --chunk-rows must be positive")
    timings = write(
        args.rows,
        seed=args.seed,
        chunk_rows=args.chunk_rows,
        duckdb_path=args.duckdb,
        clickhouse_url=url,
        database=args.database,
        optimize=args.optimize,
    )
    total = timings.pop("total")
    print(f"{args.rows:,} rows in {total:.1f} s", file=sys.stderr)
    for target, seconds in timings.items():
        print(f"  {target}: {seconds:.1f} s inserting", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
