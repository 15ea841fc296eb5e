"""Metric rollups against the records they count: every figure the metrics service answers
equals the same figure computed by SQL over the records (percentiles within 1 %), before and
after folding, compaction and rebuilds."""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from llmtrail.errors import ValidationError
from llmtrail.metrics.model import MetricDataQuery, MetricStat
from llmtrail.metrics.service import MetricsService
from llmtrail.record import InvocationRecord
from llmtrail.store.duckdb import Database, DuckDBRecordStore
from llmtrail.store.duckdb.metric_store import DuckDBMetricStore
from llmtrail.store.duckdb.metrics import DIM_COLUMNS, DuckDBRollups

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
KEEP = {10: timedelta(days=9999), 60: timedelta(days=9999), 3600: timedelta(days=9999)}


def make_records(
    n: int, seed: int = 7, start: datetime = NOW - timedelta(days=2)
) -> list[InvocationRecord]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        ts = start + timedelta(seconds=rng.uniform(0, 2 * 86400))
        doc: dict[str, Any] = {
            "schemaType": "ModelInvocationLog",
            "schemaVersion": "1.0",
            "timestamp": ts.isoformat().replace("+00:00", "Z"),
            "requestId": f"req-{seed}-{i}",
            "operation": rng.choice(["Converse", "ChatCompletions", "Messages"]),
            "modelId": rng.choice(["m-small", "m-large", "m-embed"]),
            "provider": rng.choice(["sim", "openai"]),
            "requestMetadata": {
                "application_name": rng.choice(["support", "search", "claims"]),
                "tenant_id": f"t{rng.randrange(4)}",
                "cost_center": rng.choice(["cc-1", "cc-2"]),
            },
            "input": {"inputTokenCount": rng.randrange(0, 5000)},
            "output": {"outputTokenCount": rng.randrange(0, 900)},
            "latencyMs": int(rng.lognormvariate(6, 1)),
            "status": "OK",
            "cost": {"totalUsd": str(Decimal(rng.randrange(0, 10**6)) / Decimal(10**9))},
        }
        if rng.random() < 0.6:
            doc["timeToFirstTokenMs"] = rng.randrange(0, 800)
        if rng.random() < 0.1:
            del doc["cost"]  # no price: counts nothing in CostUsd
        roll = rng.random()
        if roll < 0.05:
            doc["status"] = "ERROR"
            doc["error"] = {"type": "throttled", "httpStatus": 429}
            doc["errorCode"] = "ThrottlingException"
        elif roll < 0.12:
            doc["status"] = "ERROR"
            doc["error"] = {"type": "validation_error", "httpStatus": 400}
        elif roll < 0.15:
            doc["status"] = "ERROR"
            doc["error"] = {"type": "upstream_error", "httpStatus": 502}
        out.append(InvocationRecord.from_dict(doc))
    return out


class Stores:
    def __init__(self, path: Path, top_n: int = 100) -> None:
        self.db = Database(path)
        self.rollups = DuckDBRollups(self.db.schema, top_n=top_n)
        self.records = DuckDBRecordStore(self.db, self.rollups)
        self.metric_store = DuckDBMetricStore(self.db, self.rollups)
        self.metrics = MetricsService(self.metric_store, clock=lambda: NOW)

    def sql(self, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
        return self.db.read(lambda c: c.execute(sql, params or []).fetchall())

    def one(
        self,
        metric: str,
        stat: str,
        period: int,
        dims: tuple[tuple[str, str], ...] = (),
        start: datetime = NOW - timedelta(days=3),
        end: datetime = NOW,
    ) -> dict[datetime, float]:
        [result] = self.metrics.get_metric_data(
            [MetricDataQuery("q", MetricStat(metric, stat, period, dims))], start, end
        )
        return dict(zip(result.timestamps, result.values, strict=True))


def _filled(path: Path) -> Stores:
    s = Stores(path)
    records = make_records(3000)
    for i in range(0, len(records), 400):  # several batches, as the pipeline stores them
        s.records.append(records[i : i + 400])
    return s


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stores]:
    """Read-only tests share one store."""
    s = _filled(tmp_path_factory.mktemp("rollups") / "m.duckdb")
    yield s
    s.db.close()


@pytest.fixture
def fresh(tmp_path: Path) -> Iterator[Stores]:
    """A store of its own, for tests that write."""
    s = _filled(tmp_path / "m.duckdb")
    yield s
    s.db.close()


def _by_period(rows: list[tuple[Any, ...]]) -> dict[datetime, float]:
    return {row[0]: float(row[1]) for row in rows if row[1] is not None}


def _bucket(period: int) -> str:
    return f'make_timestamptz((epoch_us("timestamp") // {period * 10**6}) * {period * 10**6})'


EXACT = [
    ("Invocations", "Sum", "count(*)", "TRUE"),
    ("InputTokenCount", "Sum", "sum(input_token_count)", "TRUE"),
    ("OutputTokenCount", "Average", "avg(output_token_count)", "TRUE"),
    ("CostUsd", "Sum", "coalesce(sum(cost_total_usd), 0)", "TRUE"),
    ("InvocationThrottles", "Sum", "count(*) FILTER (WHERE error_http_status = 429)", "TRUE"),
    (
        "InvocationClientErrors",
        "Sum",
        "count(*) FILTER (WHERE status = 'ERROR' AND error_http_status BETWEEN 400 AND 428)",
        "TRUE",
    ),
    ("InvocationServerErrors", "Sum", "count(*) FILTER (WHERE error_http_status >= 500)", "TRUE"),
    ("InvocationLatency", "Average", "avg(latency_ms)", "TRUE"),
    ("InvocationLatency", "Maximum", "max(latency_ms)", "TRUE"),
    ("InvocationLatency", "Minimum", "min(latency_ms)", "TRUE"),
    (
        "TimeToFirstToken",
        "SampleCount",
        "count(time_to_first_token_ms)",
        "time_to_first_token_ms IS NOT NULL",
    ),
]


def _expected(
    stores: Stores, agg: str, where: str, period: int, dims: tuple[tuple[str, str], ...] = ()
) -> dict[datetime, float]:
    columns = {
        "ApplicationName": "meta_application_name",
        "ModelId": "model_id",
        "Status": "status",
        "CostCenter": "meta_cost_center",
        "TenantId": "meta_tenant_id",
    }
    conds = [where] + [f"{columns[n]} = ?" for n, _ in dims]
    rows = stores.sql(
        f"SELECT {_bucket(period)} AS p, {agg} FROM records WHERE {' AND '.join(conds)} GROUP BY p",
        [v for _, v in dims],
    )
    return _by_period(rows)


def _close(got: dict[datetime, float], want: dict[datetime, float]) -> None:
    assert got.keys() == want.keys()
    for key, value in want.items():
        assert math.isclose(got[key], value, rel_tol=1e-9, abs_tol=1e-9), (key, got[key], value)


@pytest.mark.parametrize("period", [3600, 300, 86400])
@pytest.mark.parametrize(("metric", "stat", "agg", "where"), EXACT)
def test_metrics_equal_sql_over_records(
    stores: Stores, period: int, metric: str, stat: str, agg: str, where: str
) -> None:
    _close(stores.one(metric, stat, period), _expected(stores, agg, where, period))


@pytest.mark.parametrize(
    "dims",
    [
        (("ApplicationName", "claims"),),
        (("ModelId", "m-large"), ("Status", "ERROR")),
        (("ApplicationName", "search"), ("CostCenter", "cc-2")),
        (("TenantId", "t3"),),
    ],
)
def test_dimension_series_equal_sql(stores: Stores, dims: tuple[tuple[str, str], ...]) -> None:
    got = stores.one("InputTokenCount", "Sum", 3600, dims)
    assert got, "the series has data"
    _close(got, _expected(stores, "sum(input_token_count)", "TRUE", 3600, dims))


def _nearest_rank(values: list[int], q: float) -> float:
    ordered = sorted(values)
    return float(ordered[max(1, math.ceil(q / 100 * len(ordered))) - 1])


@pytest.mark.parametrize("q", [50, 90, 95, 99])
def test_percentiles_within_one_percent(stores: Stores, q: int) -> None:
    got = stores.one("InvocationLatency", f"p{q}", 86400)
    rows = stores.sql(f"SELECT {_bucket(86400)} AS p, list(latency_ms) FROM records GROUP BY p")
    want = {p: _nearest_rank(values, q) for p, values in rows}
    assert got.keys() == want.keys()
    for key, value in want.items():
        assert abs(got[key] - value) <= 0.01 * value + 1e-9, (key, got[key], value)


def test_folding_compaction_and_rebuild_keep_every_figure(fresh: Stores) -> None:
    stores = fresh
    before = {(m, s, p): stores.one(m, s, p) for m, s, *_ in EXACT for p in (300, 3600)}
    before[("lat", "p99", 0)] = stores.one("InvocationLatency", "p99", 3600)
    staged = stores.sql("SELECT count(*) FROM metric_staging")[0][0]
    assert staged > 0
    stores.metric_store.maintain(KEEP)
    assert stores.sql("SELECT count(*) FROM metric_staging")[0][0] == 0
    stores.records.append(make_records(500, seed=8))  # deltas on folded buckets, then fold again
    stores.metric_store.maintain(KEEP)
    keys = ", ".join(["width_s", "workspace", "bucket", "dimset", *DIM_COLUMNS])
    rows = stores.sql(
        f"SELECT count(*) FROM (SELECT {keys} FROM metric_rollups GROUP BY ALL HAVING count(*) > 1)"
    )
    assert rows[0][0] == 0  # one row per series and bucket after compaction
    stores.metric_store.rebuild()
    stores.metric_store.rebuild(NOW - timedelta(hours=20))
    for (m, s, p), want in before.items():
        if m == "lat":
            continue
        got = stores.one(m, s, p)
        expected = _expected(stores, dict((e[0], e[2]) for e in EXACT if e[1] == s)[m], "TRUE", p)
        if m == "TimeToFirstToken":
            expected = _expected(
                stores, "count(time_to_first_token_ms)", "time_to_first_token_ms IS NOT NULL", p
            )
        _close(got, expected)
        if s == "Sum":  # 500 more records were stored since
            assert sum(got.values()) >= sum(want.values())


def test_a_failed_batch_counts_nothing(fresh: Stores) -> None:
    stores = fresh
    total = sum(stores.one("Invocations", "Sum", 86400).values())
    bad = make_records(3, seed=9)
    bad[2] = InvocationRecord({**bad[2].data, "latencyMs": "not a number"})
    with pytest.raises(Exception):  # noqa: B017  (whatever the store raises)
        stores.records.append(bad)
    assert sum(stores.one("Invocations", "Sum", 86400).values()) == total
    stores.records.append(bad[:2])
    assert sum(stores.one("Invocations", "Sum", 86400).values()) == total + 2


def test_values_past_the_top_n_count_as_other(tmp_path: Path) -> None:
    s = Stores(tmp_path / "top.duckdb", top_n=2)
    try:
        records = []
        for i, app in enumerate(["a", "b", "c", "d", "c", "c", "d"]):
            [r] = make_records(1, seed=100 + i, start=NOW - timedelta(days=2, hours=1))
            r.data["requestMetadata"]["application_name"] = app
            records.append(InvocationRecord(dict(r.data)))
        s.records.append(records[:1])
        s.records.append(records[1:])
        found = {
            dict(d)["ApplicationName"]
            for _, d in s.metrics.list_metrics(
                metric="Invocations", dimension_names=("ApplicationName",)
            )
        }
        assert found == {"a", "b", "other"}
        assert s.one("Invocations", "Sum", 86400, (("ApplicationName", "other"),)) != {}
        total = sum(
            sum(s.one("Invocations", "Sum", 86400, (("ApplicationName", app),)).values())
            for app in found
        )
        assert total == len(records)
        s.metric_store.rebuild()  # the top 2 by invocations: c (3) and d (2)
        found = {
            dict(d)["ApplicationName"]
            for _, d in s.metrics.list_metrics(
                metric="Invocations", dimension_names=("ApplicationName",)
            )
        }
        assert found == {"c", "d", "other"}
        assert (
            sum(s.one("Invocations", "Sum", 86400, (("ApplicationName", "other"),)).values()) == 2
        )
    finally:
        s.db.close()


@pytest.mark.parametrize(
    ("stat", "field", "words"),
    [
        (MetricStat("Invocations", "Sum", 45), "Period", "multiple of 60"),
        (MetricStat("Invocations", "Sum", 10), "Period", "last 3 hours"),
        (MetricStat("Invocations", "p99", 60), "Stat", "percentiles"),
        (MetricStat("Invocations", "Maximum", 60), "Stat", "Maximum"),
        (MetricStat("Nope", "Sum", 60), "MetricName", "unknown metric"),
        (MetricStat("Invocations", "Sum", 60, (("Planet", "x"),)), "Dimensions", "unknown"),
        (
            MetricStat("Invocations", "Sum", 60, (("TenantId", "x"), ("Team", "y"))),
            "Dimensions",
            "no series is kept",
        ),
        (MetricStat("Invocations", "Sum", 60, namespace="AWS/EC2"), "Namespace", "AWS/Bedrock"),
    ],
)
def test_bad_queries_name_the_field(
    stores: Stores, stat: MetricStat, field: str, words: str
) -> None:
    with pytest.raises(ValidationError) as info:
        stores.metrics.get_metric_data([MetricDataQuery("q", stat)], NOW - timedelta(days=1), NOW)
    assert field in info.value.field
    assert words in info.value.message


def test_high_resolution_periods_over_the_last_three_hours(stores: Stores) -> None:
    start = NOW - timedelta(hours=2)
    for period in (10, 30):
        got = stores.one("Invocations", "Sum", period, start=start)
        want = _expected(stores, "count(*)", f"\"timestamp\" >= '{start.isoformat()}'", period)
        _close(got, want)


@pytest.mark.parametrize("workspaces", [["w"], ["w", "v", "w2"]])
def test_a_batchs_distinct_dimension_values_keep_first_occurrence(workspaces: list[str]) -> None:
    """The values a batch would admit, each (workspace, value) once in the order first seen,
    the first set column winning and empty values left out: one workspace (read in Arrow)
    and several (read in Python) alike."""
    import pyarrow as pa

    from llmtrail.store.duckdb.metrics import _distinct

    rnd = random.Random(len(workspaces))
    n = 500
    ws = [rnd.choice(workspaces) for _ in range(n)]
    first = [rnd.choice([None, "", "a", "b", "c"]) for _ in range(n)]
    second = [rnd.choice([None, "", "x", "y"]) for _ in range(n)]
    batch = pa.table({"workspace": ws, "p": first, "q": second})
    expected: list[tuple[str, str]] = []
    for w, a, b in zip(ws, first, second, strict=True):
        value = a if a is not None else b
        if value and (w, value) not in expected:
            expected.append((w, value))
    assert _distinct(batch, ["p", "q"]) == expected
    assert _distinct(batch, []) == []
