"""A batch's metric staging rows computed with Arrow (`batch_deltas`, where the batch is
converted) against the SQL that stages them in the store (`DuckDBRollups._stage_sql`): the
same rows, for random batches with every edge the SQL's logic has; and the batches the Arrow
way leaves to the SQL."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import duckdb
import pytest

from llmtrail.metrics.dimensions import BY_NAME
from llmtrail.metrics.sketch import GAMMA
from llmtrail.record import MONEY_MAX_USD, InvocationRecord
from llmtrail.schema import RecordSchema
from llmtrail.store.duckdb.metric_deltas import batch_deltas
from llmtrail.store.duckdb.metrics import (
    DIM_COLUMNS,
    MEASURES,
    STAGING_COLUMNS,
    STAGING_HISTOGRAM_COLUMNS,
    DuckDBRollups,
)
from llmtrail.store.duckdb.records import batch_tables

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
STAGING = ("metric_staging", "metric_staging_histograms")


def _latency(rng: random.Random) -> int | None:
    roll = rng.random()
    if roll < 0.1:
        return None
    if roll < 0.15:
        return 0
    if roll < 0.3:  # on a sketch bucket's edge, and either side of it
        return max(1, round(GAMMA ** rng.randrange(0, 400)) + rng.choice((-1, 0, 1)))
    return int(rng.lognormvariate(6, 2))


def edgy_records(n: int, seed: int) -> list[InvocationRecord]:
    """Records with what each staging expression branches on: errors with and without an
    HTTP status, throttles by code or by 429, profiles by name or ARN, missing counts and
    costs, negative costs, latencies of 0 and on bucket edges, several workspaces."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        ts = NOW - timedelta(seconds=rng.uniform(0, 3 * 3600))
        doc: dict[str, Any] = {
            "schemaType": "ModelInvocationLog",
            "schemaVersion": "1.0",
            "timestamp": ts.isoformat().replace("+00:00", "Z"),
            "requestId": f"req-{seed}-{i}",
            "operation": rng.choice(["Converse", "ChatCompletions", "Messages"]),
            "modelId": rng.choice(["m-small", "m-large", "m-embed"]),
            "requestMetadata": {
                k: rng.choice(values)
                for k, values in (
                    ("application_name", ["support", "search", ""]),
                    ("tenant_id", ["t1", "t2", "t3"]),
                    ("team", ["red", "blue"]),
                    ("cost_center", ["cc-1", "cc-2"]),
                )
                if rng.random() < 0.7
            },
            "input": {},
            "output": {},
        }
        if rng.random() < 0.8:
            doc["provider"] = rng.choice(["sim", "openai", "bedrock"])
        for section, key in (
            ("input", "inputTokenCount"),
            ("output", "outputTokenCount"),
            ("input", "cacheReadInputTokenCount"),
            ("input", "cacheWriteInputTokenCount"),
        ):
            if rng.random() < 0.7:
                doc[section][key] = rng.randrange(0, 5000)
        latency, ttft = _latency(rng), _latency(rng)
        if latency is not None:
            doc["latencyMs"] = latency
        if ttft is not None:
            doc["timeToFirstTokenMs"] = ttft
        if rng.random() < 0.8:
            cents = Decimal(rng.randrange(-(10**6), 10**9)) / Decimal(10**9)
            doc["cost"] = {"totalUsd": str(rng.choice([cents, MONEY_MAX_USD, -MONEY_MAX_USD]))}
        if rng.random() < 0.2:
            doc["inferenceProfile"] = rng.choice(
                [{"name": "p1"}, {"arn": "arn:aws:bedrock:us-east-1:1:inference-profile/p2"}]
            )
        roll = rng.random()
        if roll < 0.35:
            doc["status"] = rng.choice(["ERROR", "ERROR", "OK"])
            error: dict[str, Any] = {}
            if rng.random() < 0.7:
                error["type"] = rng.choice(["throttled", "validation_error", "upstream_error"])
            if rng.random() < 0.8:
                error["httpStatus"] = rng.choice([399, 400, 404, 429, 499, 500, 503])
            doc["error"] = error
            if rng.random() < 0.4:
                doc["errorCode"] = rng.choice(["ThrottlingException", "ValidationException"])
        workspace = rng.choice(["default", "default", "team-b"])
        out.append(InvocationRecord.from_dict(doc, workspace=workspace))
    return out


@pytest.fixture
def conn() -> Iterator[duckdb.DuckDBPyConnection]:
    c = duckdb.connect()
    for name, columns in zip(STAGING, (STAGING_COLUMNS, STAGING_HISTOGRAM_COLUMNS), strict=True):
        c.execute(f"CREATE TABLE {name} (" + ", ".join(f'"{n}" {t}' for n, t in columns) + ")")
    yield c
    c.close()


def _staged(c: duckdb.DuckDBPyConnection, statements: list[str]) -> list[list[tuple[Any, ...]]]:
    """What ``statements`` stage, each table's rows in order; the tables emptied after."""
    for sql in statements:
        c.execute(sql)
    out = [c.execute(f"SELECT * FROM {t} ORDER BY ALL").fetchall() for t in STAGING]
    for table in STAGING:
        c.execute(f"DELETE FROM {table}")
    return out


@pytest.mark.parametrize("seed", range(6))
def test_the_arrow_way_stages_what_the_sql_stages(
    conn: duckdb.DuckDBPyConnection, seed: int
) -> None:
    schema = RecordSchema()
    records, _ = batch_tables(edgy_records(400, seed), schema, NOW)
    rollups = DuckDBRollups(schema)
    conn.register("_batch_records", records)
    by_sql = _staged(conn, rollups._stage_sql("_batch_records", {}, False))
    deltas = batch_deltas(records, schema)
    assert deltas is not None
    conn.register("_batch_deltas", deltas[0])
    conn.register("_batch_delta_histograms", deltas[1])
    by_arrow = _staged(conn, rollups._delta_sql({}))
    assert by_arrow == by_sql
    staged, histograms = by_sql
    assert len(staged) > 50 and len(histograms) > 100  # the batch spread over many series
    measures = [c for c, _ in STAGING_COLUMNS]
    # the edges were met: throttles, client and server errors, a zero-latency bucket
    for name in ("throttles", "client_errors", "server_errors"):
        assert sum(row[measures.index(name)] for row in staged) > 0
    assert any(row[-2] == -1 for row in histograms)


def test_a_refused_value_counts_as_other_either_way(conn: duckdb.DuckDBPyConnection) -> None:
    """Values the rollups refuse (past a dimension's cap) are mapped as the deltas are
    inserted: a series may then have several rows, which add up to what the SQL stages."""
    schema = RecordSchema()
    records, _ = batch_tables(edgy_records(400, 11), schema, NOW)
    rollups = DuckDBRollups(schema)
    refused = {
        "ModelId": ["default\x00m-small"],
        "TenantId": ["team-b\x00t2", "default\x00t1"],
        "ErrorType": ["default\x00throttled"],
    }
    params = {f"refused_{BY_NAME[name].column}": values for name, values in refused.items()}
    conn.register("_batch_records", records)
    by_sql = _merged(conn, rollups._stage_sql("_batch_records", refused, False), params)
    deltas = batch_deltas(records, schema)
    assert deltas is not None
    conn.register("_batch_deltas", deltas[0])
    conn.register("_batch_delta_histograms", deltas[1])
    by_arrow = _merged(conn, rollups._delta_sql(refused), params)
    assert by_arrow == by_sql
    assert sum("other" in row for row in by_sql[0]) > 10
    assert not any(
        "m-small" in row or "throttled" in row for row in by_sql[0] if row[0] == "default"
    )


def _merged(
    c: duckdb.DuckDBPyConnection, statements: list[str], params: dict[str, Any]
) -> list[list[tuple[Any, ...]]]:
    """What ``statements`` stage, one row a series (as a fold merges them); emptied after."""
    for sql in statements:
        c.execute(sql, params)
    keys = ", ".join(["workspace", "bucket", *DIM_COLUMNS])
    merged = ", ".join(f"{how}({name})" for name, _, _, how in MEASURES)
    out = [
        c.execute(
            f"SELECT {keys}, {merged} FROM metric_staging GROUP BY ALL ORDER BY ALL"
        ).fetchall(),
        c.execute(
            f"SELECT {keys}, metric, idx, sum(n) FROM metric_staging_histograms "
            "GROUP BY ALL ORDER BY ALL"
        ).fetchall(),
    ]
    for table in STAGING:
        c.execute(f"DELETE FROM {table}")
    return out


def test_batches_only_the_sql_stages_alike_have_no_deltas() -> None:
    schema = RecordSchema()
    plain = edgy_records(20, 3)
    assert batch_deltas(batch_tables(plain, schema, NOW)[0], schema) is not None
    # a dimension read from the metadata map, not a column
    unpromoted = RecordSchema(("application_name", "tenant_id", "cost_center"))
    assert batch_deltas(batch_tables(plain, unpromoted, NOW)[0], unpromoted) is None
    # a cost the SQL bounds (ingest refuses one; a record stored before could hold it)
    beyond = InvocationRecord.from_dict({**_doc(), "cost": {"totalUsd": "1000000"}})
    beyond.data["cost"]["totalUsd"] = "1000000.5"
    rich = [*plain, beyond]
    assert batch_deltas(batch_tables(rich, schema, NOW)[0], schema) is None
    # before 1970, where integer division rounds the other way
    old = [*plain, InvocationRecord.from_dict({**_doc(), "timestamp": "1969-12-31T23:59:55Z"})]
    assert batch_deltas(batch_tables(old, schema, NOW)[0], schema) is None


def _doc() -> dict[str, Any]:
    return {
        "schemaType": "ModelInvocationLog",
        "schemaVersion": "1.0",
        "timestamp": "2026-12-06T11:00:00Z",
        "requestId": "one",
        "operation": "Converse",
        "modelId": "m-small",
        "input": {"inputTokenCount": 5},
        "output": {"outputTokenCount": 3},
    }
