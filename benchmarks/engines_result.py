"""Part I's plan, what it measures and shared settings (`engines`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import metrics
import query

CACHE = Path(__file__).resolve().parent / ".cache"
CHDB_PATH = CACHE / "engines-chdb"
BATCH = 5_000
GOALS = {"duckdb": 5.0, "chdb": 10.0}  # NDJSON bytes / engine bytes, at least
ENGINES = ("duckdb", "chdb")
WAYS = query.WAYS
Log = Callable[[str], None]


@dataclass(frozen=True)
class Plan:
    ingest: int  # records through RecordStore.append (with bodies)
    query_rows: int  # records for the Logs Insights queries
    metric_rows: int  # records for the metric questions (both engines)
    rounds: int
    reps: int


FULL = Plan(ingest=100_000, query_rows=10_000_000, metric_rows=200_000, rounds=10, reps=10)
QUICK = Plan(ingest=20_000, query_rows=1_000_000, metric_rows=50_000, rounds=3, reps=3)


@dataclass
class Rate:
    name: str
    records: int
    seconds: float
    note: str = ""


@dataclass
class Size:
    name: str
    engine: str  # "ndjson", "duckdb" or "chdb"
    records: int
    bytes: int
    note: str = ""
    reference: float | None = None  # NDJSON bytes/record compared with (None: with bodies)


@dataclass
class QueryTimes:
    engine: str
    query: query.BenchQuery
    seconds: dict[str, list[float]] = field(default_factory=lambda: {w: [] for w in WAYS})
    rows: list[tuple[Any, ...]] = field(default_factory=list)
    same_rows: bool = False


@dataclass
class Result:
    plan: Plan
    load: list[str]
    ndjson_record_bytes: float = 0.0
    rates: list[Rate] = field(default_factory=list)
    sizes: list[Size] = field(default_factory=list)
    columns: list[tuple[str, str, int, int]] = field(default_factory=list)
    queries: list[QueryTimes] = field(default_factory=list)
    metric_times: dict[str, list[metrics.Timed]] = field(default_factory=dict)
    built: dict[str, float] = field(default_factory=dict)  # data set → seconds to build


def load_average() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "n/a"


def chdb_url() -> str:
    CHDB_PATH.mkdir(parents=True, exist_ok=True)
    return f"chdb://{CHDB_PATH}"
