"""A few thousand generated invocation records, written to a real DuckDB store, and the
figures the reports must show computed from them here in plain Python (never with SQL).

Costs are not priced by llmtrail's pricing code: the cost columns are added to the test
database with ``ALTER TABLE`` and filled with values computed here, so the reports are
checked independently of the price table.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pyarrow as pa

from llmtrail.record import InvocationRecord, format_timestamp
from llmtrail.store.duckdb import Database, DuckDBRecordStore

COST_COLUMNS = (
    "cost_input_usd",
    "cost_output_usd",
    "cost_cache_read_usd",
    "cost_cache_write_usd",
    "cost_total_usd",
)
PRICE_VERSION = "test-2026-01"
NANO = Decimal("0.000000001")
# US dollars per million tokens: input, output, cache read, cache write; None: no price
PRICES: dict[str, tuple[Decimal, Decimal, Decimal, Decimal] | None] = {
    "sim/fast": (Decimal("0.15"), Decimal("0.60"), Decimal("0.075"), Decimal("0.1875")),
    "sim/smart": (Decimal("3"), Decimal("15"), Decimal("0.30"), Decimal("3.75")),
    "us.anthropic.claude-sonnet-4-5-20250929-v1:0": (
        Decimal("3.3"),
        Decimal("16.5"),
        Decimal("0.33"),
        Decimal("4.125"),
    ),
    "sim/embed": (Decimal("0.02"), Decimal("0"), Decimal("0"), Decimal("0")),
    "sim/unpriced": None,
}
TENANTS = ("acme", "globex", "initech", "umbrella", None)
PROJECTS = ("alpha", "beta", None)


@dataclass(frozen=True)
class Generated:
    """One generated record as plain values."""

    request_id: str
    ts: datetime
    workspace: str
    model: str
    tenant: str | None
    project: str | None
    dept: str | None
    status: str
    error_code: str | None
    http_status: int | None
    latency: int | None
    ttft: int | None
    input_tokens: int
    output_tokens: int
    cache_read: int
    cache_write: int
    costs: tuple[Decimal, Decimal, Decimal, Decimal, Decimal] | None

    def doc(self) -> dict[str, Any]:
        """The record as the JSON document the ingest API would take."""
        meta = {"application_name": "reports-test"}
        if self.tenant is not None:
            meta["tenant_id"] = self.tenant
        if self.project is not None:
            meta["project"] = self.project
        doc: dict[str, Any] = {
            "schemaType": "ModelInvocationLog",
            "schemaVersion": "1.0",
            "timestamp": format_timestamp(self.ts),
            "requestId": self.request_id,
            "operation": "ChatCompletions",
            "modelId": self.model,
            "provider": "sim",
            "requestMetadata": meta,
            "input": {
                "inputTokenCount": self.input_tokens,
                "cacheReadInputTokenCount": self.cache_read,
                "cacheWriteInputTokenCount": self.cache_write,
            },
            "output": {"outputTokenCount": self.output_tokens},
            "status": self.status,
        }
        if self.latency is not None:
            doc["latencyMs"] = self.latency
        if self.ttft is not None:
            doc["timeToFirstTokenMs"] = self.ttft
        if self.error_code is not None:
            doc["errorCode"] = self.error_code
        if self.status != "OK":
            error: dict[str, Any] = {"type": self.error_code or "client_disconnected"}
            if self.http_status is not None:
                error["httpStatus"] = self.http_status
            doc["error"] = error
        if self.dept is not None:
            doc["inferenceProfile"] = {"name": "claims-app", "tags": {"dept": self.dept}}
            doc["appLabels"] = {"dept": self.dept}  # a key no column holds: kept in extra
        return doc


def generate(count: int = 3000, seed: int = 5) -> list[Generated]:
    """``count`` records from 2026-01-20 to 2026-03-25 (UTC), plus records on the local
    month and day boundaries of America/New_York."""
    rng = random.Random(seed)
    first = datetime(2026, 1, 20, tzinfo=UTC)
    span = int((datetime(2026, 3, 25, tzinfo=UTC) - first).total_seconds())
    instants = [first + timedelta(seconds=rng.randrange(span)) for _ in range(count)]
    instants += [
        datetime(2026, 3, 1, 2, 30, tzinfo=UTC),  # still February in New York
        datetime(2026, 3, 1, 5, 30, tzinfo=UTC),  # March in New York
        datetime(2026, 2, 1, 4, 59, 59, tzinfo=UTC),  # before the New York start
        datetime(2026, 2, 1, 5, 0, tzinfo=UTC),  # the New York start, included
        datetime(2026, 3, 15, 3, 59, 59, tzinfo=UTC),  # the last second before the end (EDT)
        datetime(2026, 3, 15, 4, 0, tzinfo=UTC),  # the New York end, excluded
    ]
    out = []
    for n, ts in enumerate(instants):
        model = rng.choice(list(PRICES))
        roll = rng.random()
        status, code, http = "OK", None, None
        if roll < 0.05:
            status, code, http = "ERROR", "ThrottlingException", 429
        elif roll < 0.09:
            status, code, http = "ERROR", "InternalServerException", 500
        elif roll < 0.12:
            status, code, http = "ERROR", "ValidationException", 400
        elif roll < 0.13:
            status, code, http = "ERROR", "ModelErrorException", None
        elif roll < 0.15:
            status = "CANCELLED"
        ok = status == "OK"
        input_tokens = rng.randint(5, 4000)
        output_tokens = rng.randint(1, 1500) if ok else 0
        cache_read = rng.choice((0, 0, rng.randint(1, 2000)))
        cache_write = rng.choice((0, 0, 0, rng.randint(1, 800)))
        prices = PRICES[model]
        costs = None
        if prices is not None:
            counts = (input_tokens, output_tokens, cache_read, cache_write)
            parts = tuple(
                (Decimal(c) * p / Decimal(1_000_000)).quantize(NANO)
                for c, p in zip(counts, prices, strict=True)
            )
            costs = (*parts, sum(parts, Decimal(0)))
        out.append(
            Generated(
                request_id=f"req-{n:05d}",
                ts=ts,
                workspace="other" if rng.random() < 0.04 else "default",
                model=model,
                tenant=rng.choice(TENANTS),
                project=rng.choice(PROJECTS),
                dept=rng.choice(("claims", "sales", None, None)),
                status=status,
                error_code=code,
                http_status=http,
                latency=None if rng.random() < 0.03 else rng.randint(40, 6000),
                ttft=rng.randint(10, 900) if rng.random() < 0.5 else None,
                input_tokens=input_tokens,
                output_tokens=output_tokens,
                cache_read=cache_read,
                cache_write=cache_write,
                costs=costs,  # type: ignore[arg-type]
            )
        )
    return out


def write(db: Database, rows: list[Generated]) -> None:
    """Append ``rows`` through the DuckDB record store, then add and fill the cost columns."""
    store = DuckDBRecordStore(db)
    for workspace in ("default", "other"):
        records = [
            InvocationRecord.from_dict(r.doc(), workspace=workspace, source="sdk")
            for r in rows
            if r.workspace == workspace
        ]
        store.append(records)
    money = pa.decimal128(38, 9)
    priced = [r for r in rows if r.costs is not None]
    costs = pa.table(
        {
            "request_id": pa.array([r.request_id for r in priced], pa.string()),
            **{
                name: pa.array([r.costs[i] for r in priced if r.costs], money)
                for i, name in enumerate(COST_COLUMNS)
            },
            "price_version": pa.array([PRICE_VERSION] * len(priced), pa.string()),
        }
    )

    def fill(conn: Any) -> None:
        for name in COST_COLUMNS:
            conn.execute(f"ALTER TABLE records ADD COLUMN IF NOT EXISTS {name} DECIMAL(38,9)")
        conn.execute("ALTER TABLE records ADD COLUMN IF NOT EXISTS price_version VARCHAR")
        conn.register("_costs", costs)
        sets = ", ".join(f"{name} = c.{name}" for name in (*COST_COLUMNS, "price_version"))
        conn.execute(
            f"UPDATE records SET {sets} FROM _costs c WHERE records.request_id = c.request_id"
        )
        conn.unregister("_costs")

    db.write(fill)


# -- independent expectations ---------------------------------------------------------------


def in_scope(
    rows: Iterable[Generated], start: datetime, end: datetime, workspace: str = "default"
) -> list[Generated]:
    return [r for r in rows if r.workspace == workspace and start <= r.ts < end]


def local_day(row: Generated, tz: str) -> date:
    return row.ts.astimezone(ZoneInfo(tz)).date()


def local_month(row: Generated, tz: str) -> str:
    return row.ts.astimezone(ZoneInfo(tz)).strftime("%Y-%m")


def quantile(values: list[int], q: float) -> float | None:
    """Linear interpolation between the closest ranks (numpy's default, DuckDB's
    ``quantile_cont``)."""
    if not values:
        return None
    ordered = sorted(values)
    position = (len(ordered) - 1) * q
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def mean(values: list[int]) -> float | None:
    return sum(values) / len(values) if values else None


def cost(row: Generated, index: int) -> Decimal:
    return row.costs[index] if row.costs else Decimal(0)
