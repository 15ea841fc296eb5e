"""The `MetricStore` contract on every backend: the figures the metrics service reads from
the rollups equal the same figures computed in Python over the records stored (percentiles
within 1 %), by dimension too; a rebuild keeps them; retention drops old buckets of one
width only; and a batch stored once is counted once however often it is sent."""

from __future__ import annotations

import math
import random
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from llmtrail.metrics.dimensions import dimension_set
from llmtrail.metrics.model import MetricDataQuery, MetricStat
from llmtrail.metrics.service import MetricsService
from llmtrail.record import InvocationRecord
from llmtrail.store.interfaces import MetricStore, RecordStore, SeriesRead

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
BACKENDS = ["duckdb", "clickhouse"]
Doc = dict[str, Any]


def make_docs(n: int, seed: int, start: datetime, span: timedelta) -> list[Doc]:
    """Records of every kind the measures tell apart, spread over ``[start, start + span)``."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        ts = start + timedelta(seconds=rng.uniform(0, span.total_seconds()))
        meta = {
            "application_name": rng.choice(["support", "search", "claims"]),
            "tenant_id": f"t{rng.randrange(4)}",
        }
        if rng.random() < 0.5:
            meta["team"] = rng.choice(["core", "ml"])
        doc: Doc = {
            "timestamp": ts.isoformat().replace("+00:00", "Z"),
            "requestId": f"m-{seed}-{i}",
            "operation": rng.choice(["Converse", "ChatCompletions"]),
            "modelId": rng.choice(["m-small", "m-large", "m-embed"]),
            "provider": rng.choice(["sim", "openai"]),
            "requestMetadata": meta,
            "input": {"inputTokenCount": rng.randrange(0, 5000)},
            "output": {"outputTokenCount": rng.randrange(0, 900)},
            "status": "OK",
            "cost": {"totalUsd": str(Decimal(rng.randrange(0, 10**6)) / Decimal(10**9))},
        }
        if rng.random() < 0.97:  # some records have no latency; a few took 0 ms
            doc["latencyMs"] = 0 if rng.random() < 0.02 else int(rng.lognormvariate(6, 1))
        if rng.random() < 0.5:
            doc["timeToFirstTokenMs"] = rng.randrange(0, 800)
        if rng.random() < 0.1:
            del doc["cost"]  # no price: counts nothing in CostUsd
        roll = rng.random()
        if roll < 0.04:
            doc |= {"status": "ERROR", "error": {"type": "throttled", "httpStatus": 429}}
        elif roll < 0.06:  # a throttle by its code alone is no client error
            doc |= {"status": "ERROR", "errorCode": "ThrottlingException"}
            doc["error"] = {"type": "rate", "httpStatus": 400}
        elif roll < 0.12:
            doc |= {"status": "ERROR", "error": {"type": "validation_error", "httpStatus": 400}}
        elif roll < 0.15:
            doc |= {"status": "ERROR", "error": {"type": "upstream_error", "httpStatus": 503}}
        elif roll < 0.16:
            doc |= {"status": "ERROR", "error": {"type": "cancelled"}}
        out.append(doc)
    return out


def records_of(docs: list[Doc], now: datetime | None = None) -> list[InvocationRecord]:
    return [InvocationRecord.from_dict(dict(d), now=now) for d in docs]


@dataclass
class Backend:
    name: str
    records: RecordStore
    metric_store: MetricStore
    close: Callable[[], None]

    def service(self, now: datetime = NOW) -> MetricsService:
        return MetricsService(self.metric_store, clock=lambda: now)

    def one(
        self,
        metric: str,
        stat: str,
        period: int,
        dims: tuple[tuple[str, str], ...] = (),
        *,
        start: datetime = NOW - timedelta(days=3),
        end: datetime = NOW,
    ) -> dict[datetime, float]:
        [result] = self.service().get_metric_data(
            [MetricDataQuery("q", MetricStat(metric, stat, period, dims))], start, end
        )
        return dict(zip(result.timestamps, result.values, strict=True))


def open_backend(name: str, path: Path, clickhouse: Callable[[], tuple[str, str]]) -> Backend:
    if name == "duckdb":
        from llmtrail.store.duckdb import Database, DuckDBRecordStore
        from llmtrail.store.duckdb.metric_store import DuckDBMetricStore
        from llmtrail.store.duckdb.metrics import DuckDBRollups

        db = Database(path / "metrics.duckdb")
        rollups = DuckDBRollups(db.schema)
        return Backend(
            name, DuckDBRecordStore(db, rollups), DuckDBMetricStore(db, rollups), db.close
        )
    from llmtrail.store.clickhouse import ClickHouseDatabase, ClickHouseRecordStore
    from llmtrail.store.clickhouse.metrics import ClickHouseMetricStore

    ch = ClickHouseDatabase.open(*clickhouse())
    return Backend(name, ClickHouseRecordStore(ch), ClickHouseMetricStore(ch), ch.close)


def _clickhouse_database(request: pytest.FixtureRequest) -> Iterator[Callable[[], tuple[str, str]]]:
    """A database of this fixture's own on the session's ClickHouse, dropped afterwards."""
    names: list[tuple[str, str]] = []

    def make() -> tuple[str, str]:
        names.append((request.getfixturevalue("clickhouse_url"), f"m_{uuid.uuid4().hex[:16]}"))
        return names[-1]

    yield make
    if names:
        from llmtrail.store.clickhouse import connect

        client = connect(names[0][0])
        try:
            for _, name in names:
                client.command(f"DROP DATABASE IF EXISTS `{name}`")
        finally:
            client.close()


DOCS = make_docs(3000, seed=11, start=NOW - timedelta(days=2), span=timedelta(days=2))


def _fill(backend: Backend, docs: list[Doc]) -> None:
    records = records_of(docs)
    for i in range(0, len(records), 500):  # several batches, as the pipeline stores them
        backend.records.append(records[i : i + 500])


@pytest.fixture(scope="module", params=BACKENDS)
def filled(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Backend]:
    """Read-only tests share one store per backend, holding `DOCS`."""
    databases = _clickhouse_database(request)
    backend = open_backend(request.param, tmp_path_factory.mktemp("metrics"), next(databases))
    _fill(backend, DOCS)
    yield backend
    backend.close()
    next(databases, None)


@pytest.fixture(params=BACKENDS)
def fresh(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    """An empty store of its own, for tests that write."""
    databases = _clickhouse_database(request)
    backend = open_backend(request.param, tmp_path, next(databases))
    yield backend
    backend.close()
    next(databases, None)


# -- the same figures computed in Python over the records --------------------------------


def _floor(ts: datetime, period: int) -> datetime:
    seconds = int(ts.timestamp())
    return datetime.fromtimestamp(seconds - seconds % period, UTC)


def _ts(doc: Doc) -> datetime:
    return datetime.fromisoformat(doc["timestamp"].replace("Z", "+00:00"))


def _throttle(d: Doc) -> bool:
    return (
        d.get("errorCode") == "ThrottlingException" or d.get("error", {}).get("httpStatus") == 429
    )


def _http(d: Doc) -> int | None:
    value = d.get("error", {}).get("httpStatus")
    return int(value) if value is not None and d["status"] == "ERROR" else None


# metric, stat → (values per record, or None to leave it out; how the values combine)
def _sum(values: list[float]) -> float:
    return float(sum(values))


def _mean(values: list[float]) -> float:
    return float(sum(values)) / len(values)


def _count(values: list[float]) -> float:
    return float(len(values))


FIGURES: dict[tuple[str, str], tuple[Callable[[Doc], Any], Callable[[list[Any]], float]]] = {
    ("Invocations", "Sum"): (lambda d: 1, _sum),
    ("InputTokenCount", "Sum"): (lambda d: d["input"]["inputTokenCount"], _sum),
    ("OutputTokenCount", "Average"): (lambda d: d["output"]["outputTokenCount"], _mean),
    ("CostUsd", "Sum"): (lambda d: Decimal(d["cost"]["totalUsd"]) if "cost" in d else 0, _sum),
    ("InvocationLatency", "Average"): (lambda d: d.get("latencyMs"), _mean),
    ("InvocationLatency", "Minimum"): (lambda d: d.get("latencyMs"), lambda v: float(min(v))),
    ("InvocationLatency", "Maximum"): (lambda d: d.get("latencyMs"), lambda v: float(max(v))),
    ("InvocationLatency", "SampleCount"): (lambda d: d.get("latencyMs"), _count),
    ("TimeToFirstToken", "Sum"): (lambda d: d.get("timeToFirstTokenMs"), _sum),
    ("InvocationThrottles", "Sum"): (lambda d: 1 if _throttle(d) else 0, _sum),
    (
        "InvocationClientErrors",
        "Sum",
    ): (lambda d: int(400 <= (_http(d) or 0) <= 499 and not _throttle(d)), _sum),
    ("InvocationServerErrors", "Sum"): (lambda d: int((_http(d) or 0) >= 500), _sum),
}
META = {"ApplicationName": "application_name", "TenantId": "tenant_id", "Team": "team"}
FIELDS = {"ModelId": "modelId", "Status": "status", "Operation": "operation"}


def dimension_value(doc: Doc, name: str) -> str:
    if name in META:
        return str(doc["requestMetadata"].get(META[name], ""))
    return str(doc.get(FIELDS[name], ""))


def expected(
    docs: list[Doc],
    metric: str,
    stat: str,
    period: int,
    dims: tuple[tuple[str, str], ...] = (),
) -> dict[datetime, float]:
    per_record, combine = FIGURES[(metric, stat)]
    periods: dict[datetime, list[Any]] = {}
    for doc in docs:
        if any(dimension_value(doc, n) != v for n, v in dims):
            continue
        value = per_record(doc)
        bucket = periods.setdefault(_floor(_ts(doc), period), [])
        if value is not None:
            bucket.append(value)
    if metric in ("InvocationLatency", "TimeToFirstToken"):
        return {p: combine(v) for p, v in periods.items() if v}
    return {p: combine(v) for p, v in periods.items()}


def nearest_rank(values: list[int], q: float) -> float:
    ordered = sorted(values)
    return float(ordered[max(1, math.ceil(q / 100 * len(ordered))) - 1])


def assert_close(got: dict[datetime, float], want: dict[datetime, float]) -> None:
    assert got.keys() == want.keys()
    for key, value in want.items():
        assert math.isclose(got[key], value, rel_tol=1e-9, abs_tol=1e-9), (key, got[key], value)


# -- the contract ----------------------------------------------------------------------------


@pytest.mark.parametrize("period", [3600, 86400])
@pytest.mark.parametrize(("metric", "stat"), list(FIGURES))
def test_figures_equal_python_over_the_records(
    filled: Backend, metric: str, stat: str, period: int
) -> None:
    got = filled.one(metric, stat, period)
    assert got, "the store has data"
    assert_close(got, expected(DOCS, metric, stat, period))


def test_minute_and_ten_second_figures(filled: Backend) -> None:
    assert_close(filled.one("Invocations", "Sum", 300), expected(DOCS, "Invocations", "Sum", 300))
    start = NOW - timedelta(hours=2)
    recent = [d for d in DOCS if _ts(d) >= start]
    got = filled.one("InputTokenCount", "Sum", 10, start=start)
    assert_close(got, expected(recent, "InputTokenCount", "Sum", 10))


@pytest.mark.parametrize("q", [50, 99])
@pytest.mark.parametrize(("metric", "field"), [("InvocationLatency", "latencyMs")])
def test_percentiles_within_one_percent(filled: Backend, metric: str, field: str, q: int) -> None:
    got = filled.one(metric, f"p{q}", 86400)
    periods: dict[datetime, list[int]] = {}
    for doc in DOCS:
        if doc.get(field) is not None:
            periods.setdefault(_floor(_ts(doc), 86400), []).append(doc[field])
    want = {p: nearest_rank(v, q) for p, v in periods.items()}
    assert got.keys() == want.keys()
    for key, value in want.items():
        assert abs(got[key] - value) <= 0.01 * value + 1e-9, (key, got[key], value)


@pytest.mark.parametrize(
    "dims",
    [
        (("ApplicationName", "claims"),),
        (("ModelId", "m-large"), ("Status", "ERROR")),
        (("ApplicationName", "search"), ("TenantId", "t2")),
        (("Team", ""),),  # records without the key
    ],
)
def test_dimension_series_equal_python(filled: Backend, dims: tuple[tuple[str, str], ...]) -> None:
    got = filled.one("InputTokenCount", "Sum", 3600, dims)
    assert got, "the series has data"
    assert_close(got, expected(DOCS, "InputTokenCount", "Sum", 3600, dims))


@pytest.mark.parametrize(
    "names", [(), ("ModelId",), ("Team",), ("ApplicationName", "TenantId"), ("ModelId", "Status")]
)
def test_series_are_the_dimension_values_stored(filled: Backend, names: tuple[str, ...]) -> None:
    got = filled.metric_store.series("default", dimension_set(names), None, None)
    want = sorted({tuple(dimension_value(d, n) for n in names) for d in DOCS})
    assert got == want


def test_error_types_only_for_errors(filled: Backend) -> None:
    got = filled.metric_store.series("default", dimension_set(["ErrorType"]), None, None)
    assert got == [
        ("",),
        ("cancelled",),
        ("rate",),
        ("throttled",),
        ("upstream_error",),
        ("validation_error",),
    ]


def test_latency_buckets_hold_zero(filled: Backend) -> None:
    read = SeriesRead("default", 0, (), 3600, 86400, NOW - timedelta(days=4), NOW)
    counts: dict[int, int] = {}
    for per_day in filled.metric_store.histogram(read, "latency").values():
        for idx, n in per_day.items():
            counts[idx] = counts.get(idx, 0) + n
    zeros = sum(1 for d in DOCS if d.get("latencyMs") == 0)
    assert zeros > 0 and counts[-1] == zeros
    assert sum(counts.values()) == sum(1 for d in DOCS if d.get("latencyMs") is not None)


def test_rebuild_keeps_every_figure(fresh: Backend) -> None:
    docs = DOCS[:1500]
    _fill(fresh, docs)
    keys = [("Invocations", "Sum"), ("CostUsd", "Sum"), ("InvocationLatency", "Maximum")]
    for since in (None, NOW - timedelta(hours=20, minutes=30)):
        fresh.metric_store.rebuild(since)
        for metric, stat in keys:
            assert_close(fresh.one(metric, stat, 3600), expected(docs, metric, stat, 3600))
        got = fresh.one("InvocationLatency", "p99", 86400)
        assert got.keys() == expected(docs, "InvocationLatency", "Maximum", 86400).keys()
    fresh.records.append(records_of(DOCS[1500:1600]))  # the views (or staging) go on counting
    assert_close(
        fresh.one("Invocations", "Sum", 3600), expected(DOCS[:1600], "Invocations", "Sum", 3600)
    )


def test_retention_drops_old_buckets_of_one_width(fresh: Backend) -> None:
    now = datetime.now(UTC)
    # nothing within two hours of the cut, so the clock moving on changes nothing
    old = make_docs(200, seed=21, start=now - timedelta(hours=48), span=timedelta(hours=22))
    new = make_docs(200, seed=22, start=now - timedelta(hours=22), span=timedelta(hours=21))
    _fill(fresh, old + new)
    keep = {10: timedelta(hours=24), 60: timedelta(days=400), 3600: timedelta(days=400)}
    fresh.metric_store.maintain(keep)

    def total(width: int) -> int:
        read = SeriesRead("default", 0, (), width, 3600, now - timedelta(days=3), now)
        return sum(int(m["invocations"]) for _, m in fresh.metric_store.measures(read))

    assert (total(10), total(60), total(3600)) == (len(new), 400, 400)
    fresh.metric_store.maintain(keep)  # nothing more to drop
    assert total(10) == len(new)


def test_on_clickhouse_the_retention_is_the_tables_ttl(fresh: Backend) -> None:
    """After `maintain`, old buckets are dropped by ClickHouse itself, with no mutation."""
    if fresh.name != "clickhouse":
        pytest.skip("TTL is ClickHouse's; DuckDB's maintenance deletes")
    from llmtrail.store.clickhouse.metrics import VIEWS

    now = datetime.now(UTC)
    keep = {10: timedelta(hours=24), 60: timedelta(days=400), 3600: timedelta(days=400)}
    fresh.metric_store.maintain(keep)
    db = fresh.metric_store.db  # type: ignore[attr-defined]
    for table in VIEWS:
        [(create,)] = db.query(
            "SELECT create_table_query FROM system.tables WHERE database = {d:String} "
            "AND name = {t:String}",
            {"d": db.database, "t": table},
        )
        assert "TTL" in create and "WHERE width_s = 10" in create, create
    old = make_docs(100, seed=31, start=now - timedelta(hours=48), span=timedelta(hours=20))
    new = make_docs(50, seed=32, start=now - timedelta(hours=20), span=timedelta(hours=19))
    _fill(fresh, old + new)

    def total(width: int) -> int:
        read = SeriesRead("default", 0, (), width, 3600, now - timedelta(days=3), now)
        return sum(int(m["invocations"]) for _, m in fresh.metric_store.measures(read))

    # ClickHouse applies the TTL as it merges parts (in the background, or now): the old
    # records' 10 s buckets go, with no maintenance run and no mutation since
    for table in VIEWS:
        db.command(f"OPTIMIZE TABLE {db.table(table)} FINAL")
    assert (total(10), total(60), total(3600)) == (50, 150, 150)


# -- counted once --------------------------------------------------------------------------


def _invocations(backend: Backend) -> int:
    return int(sum(backend.one("Invocations", "Sum", 86400).values()))


def test_the_figures_count_what_the_store_holds(fresh: Backend) -> None:
    later = datetime.now(UTC) + timedelta(minutes=5)  # captured while the store is open
    batch = records_of(DOCS[:40], now=later)
    fresh.records.append(batch, position="1:100")
    fresh.records.append(records_of(DOCS[40:60], now=later), position="1:200")
    assert fresh.records.committed_position() == "1:200"  # replay starts after it
    assert _invocations(fresh) == 60
    fresh.records.append(batch)  # no position, no promise: stored again, counted again
    assert _invocations(fresh) == 100


@pytest.mark.parametrize("fresh", ["clickhouse"], indirect=True)
def test_a_retried_batch_dropped_by_its_token_counts_once(fresh: Backend) -> None:
    later = datetime.now(UTC) + timedelta(minutes=5)  # not looked up: only the token drops it
    batch = records_of(DOCS[:50], now=later)
    assert fresh.records.append(batch, position="1:300").extra == {}
    assert fresh.records.append(batch, position="1:300").extra == {}
    assert _invocations(fresh) == 50
    assert_close(fresh.one("CostUsd", "Sum", 3600), expected(DOCS[:50], "CostUsd", "Sum", 3600))
    fresh.records.append(records_of(DOCS[50:60], now=later), position="1:300")  # another batch
    assert _invocations(fresh) == 60


@pytest.mark.parametrize("fresh", ["clickhouse"], indirect=True)
def test_a_replay_after_a_crash_counts_once(fresh: Backend) -> None:
    records = records_of(DOCS[:30], now=datetime.now(UTC) - timedelta(hours=1))  # before
    fresh.records.append(records[:20])  # the store was opened again after a crash that
    # stored these records but lost their position
    result = fresh.records.append(records[10:30], position="1:900")  # replayed, re-batched
    assert result.extra == {"already_stored": 10}
    assert_close(
        fresh.one("InputTokenCount", "Sum", 3600),
        expected(DOCS[:30], "InputTokenCount", "Sum", 3600),
    )


@pytest.mark.parametrize("fresh", ["clickhouse"], indirect=True)
def test_promoting_a_dimension_key_repoints_the_views(
    fresh: Backend, request: pytest.FixtureRequest
) -> None:
    from llmtrail.schema import RecordSchema
    from llmtrail.store.clickhouse import ClickHouseDatabase, ClickHouseRecordStore
    from llmtrail.store.clickhouse.metrics import ClickHouseMetricStore

    url = request.getfixturevalue("clickhouse_url")
    name = f"p_{uuid.uuid4().hex[:16]}"
    try:
        before = ClickHouseDatabase.open(url, name, RecordSchema(("tenant_id",)))
        ClickHouseRecordStore(before).append(records_of(DOCS[:100]))  # team in the map
        before.close()
        after = ClickHouseDatabase.open(url, name, RecordSchema(("tenant_id", "team")))
        ClickHouseRecordStore(after).append(records_of(DOCS[100:200]))  # team in its column
        backend = Backend("clickhouse", fresh.records, ClickHouseMetricStore(after), after.close)
        for team in ("core", ""):
            dims = (("Team", team),)
            got = backend.one("Invocations", "Sum", 3600, dims)
            assert_close(got, expected(DOCS[:200], "Invocations", "Sum", 3600, dims))
        after.close()
    finally:
        from llmtrail.store.clickhouse import connect

        client = connect(url)
        client.command(f"DROP DATABASE IF EXISTS `{name}`")
        client.close()


@pytest.mark.parametrize("names", [(), ("ModelId",), ("ModelId", "Status")])
def test_totals_per_series_equal_python(filled: Backend, names: tuple[str, ...]) -> None:
    """One read for every series of a set: invocations, input tokens and the latency buckets'
    count, per series over the whole range."""
    start, end = NOW - timedelta(days=3), NOW + timedelta(hours=1)
    read = SeriesRead("default", dimension_set(names), (), 3600, 3600, start, end)
    got = {
        t.values: (
            int(t.measures["invocations"]),
            int(t.measures["input_tokens"]),
            sum(t.histograms.get("latency", {}).values()),
        )
        for t in filled.metric_store.totals(read)
    }
    want: dict[tuple[str, ...], tuple[int, int, int]] = {}
    for doc in DOCS:
        key = tuple(dimension_value(doc, n) for n in names)
        n, tokens, timed = want.get(key, (0, 0, 0))
        want[key] = (
            n + 1,
            tokens + int(doc.get("input", {}).get("inputTokenCount") or 0),
            timed + (doc.get("latencyMs") is not None),
        )
    assert got == want
