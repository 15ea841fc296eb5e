"""Part B: ingest through ``POST /api/records``, and the same records stage by stage in-process.

The server run: a fresh ``llmtrail serve``; a separate load-generator process posts NDJSON
bodies of 1,000 ~1 KB Bedrock-shaped records over 4 keep-alive connections. An answer comes
after the spool's group-commit fsync, so "acknowledged" means durable. After the last
acknowledgement the client polls ``/metrics`` until ``stored`` (committed to DuckDB, so
queryable) reaches the total.

The stages, single-threaded in this process on the same records, show where that time can go:
decode + validate, spool append (encode + write + fsync), store (rows → Arrow → DuckDB), and a
DuckDB-only baseline inserting a hand-built Arrow table of the same shape.
"""

from __future__ import annotations

import gc
import json
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import orjson
import pyarrow as pa
from rich import box
from rich.table import Table

import procs
import spy
from bench_records import ndjson_bodies
from llmtrail.capture.ingest_body import parse_records
from llmtrail.pipeline.pipeline import encode_payload
from llmtrail.pipeline.spool import Spool
from llmtrail.record import InvocationRecord
from llmtrail.security.logging_config import LoggingConfigs, LoggingConfigStore
from llmtrail.security.record_policy import RecordPolicy
from llmtrail.security.redaction_store import RedactionPolicies
from llmtrail.store.duckdb import Database, DuckDBRecordStore
from llmtrail.store.memory import MemoryStateStore
from machine_load import OtherLoad, other_load_text, own_cpu_s, server_tree, wait_quiet

LOADGEN = Path(__file__).resolve().parent / "loadgen.py"
GOAL_RECORDS_S = 50_000
PER_REQUEST = 1000
CONNECTIONS = 4
SPOOL_BATCH = 1000
STORE_BATCH = 20_000
RUN_ID = "0a1b2c3d"
DETECTORS_RUN_ID = "0d0e0f10"
# the redaction policy's opt-in detectors (the key detectors are on by default)
EVERY_DETECTOR = ("email", "phone", "card", "iban", "ip")


@dataclass(frozen=True)
class Plan:
    records: int


FULL = Plan(200_000)
QUICK = Plan(20_000)


@dataclass
class Stage:
    name: str
    records: int
    seconds: float
    note: str = ""


@dataclass
class IngestResult:
    server: dict[str, Any]
    metrics: dict[str, float]
    stages: list[Stage] = field(default_factory=list)
    profile: Path | None = None


def run_server(
    workdir: Path, plan: Plan, log: procs.Log, profile: Path | None = None
) -> tuple[dict[str, Any], dict[str, float]]:
    started: list[procs.Proc] = []
    with procs.stopping(started):
        server, base = procs.start_llmtrail(workdir, "llmtrail-ingest")
        started.append(server)
        warm_up(base)
        log(f"  server pid {server.pid}; posting {plan.records:,} records …")
        recorder = spy.Recorder(server.pid, profile) if profile is not None else None
        result = _post(server.pid, base, plan.records, RUN_ID)
        if recorder is not None:
            recorder.stop()
        metrics = procs.metrics(base)
        # the same records with every detector of the redaction policy on
        status, answer = procs.http(
            base + "/api/redaction",
            json.dumps({"detectors": list(EVERY_DETECTOR)}).encode(),
            {"content-type": "application/json"},
            timeout=30,
            method="PUT",
        )
        if status != 200:
            raise RuntimeError(f"the redaction policy was refused: HTTP {status} {answer[:200]!r}")
        detectors = plan.records // 4
        log(f"  every detector on: posting {detectors:,} records …")
        result["every_detector"] = _post(server.pid, base, detectors, DETECTORS_RUN_ID)
        return result, metrics


def _post(server: int, base: str, records: int, run_id: str) -> dict[str, Any]:
    """``records`` posted by the load generator once the machine is quiet: its result, with
    what other processes used meanwhile and llmtrail's CPU by process."""
    tree = server_tree(server)
    quiet = wait_quiet(tree, own_cpu_s)  # as part C: a phase measures llmtrail, not others
    cpu_before = _cpu_by_process(server)
    argv = [sys.executable, str(LOADGEN), "ingest", "--base", base]
    argv += ["--records", str(records), "--per-request", str(PER_REQUEST)]
    argv += ["--connections", str(CONNECTIONS), "--run", run_id]
    other = OtherLoad(tree, own_cpu_s)
    done = subprocess.run(argv, capture_output=True, check=False, timeout=1800)
    other_cpu_s = other.seconds()
    cpu_by_process = _cpu_by_process(server, cpu_before)
    if done.returncode != 0:
        raise RuntimeError(f"ingest client failed: {done.stderr.decode(errors='replace')[-2000:]}")
    result: dict[str, Any] = json.loads(done.stdout)
    result["quiet_cores"], result["other_cpu_s"] = quiet, other_cpu_s
    result["cpu_by_process"] = cpu_by_process
    return result


def warm_up(base: str) -> None:
    """One body before the run: the first body of 64 KB or more starts the recorder's ingest
    workers (~2 s, that body prepared by the recorder meanwhile), as a server does once."""
    body = ndjson_bodies("0f0f0f0f", PER_REQUEST, PER_REQUEST)[0]
    status, answer = procs.http(
        base + "/api/records", body, {"content-type": "application/x-ndjson"}, timeout=60
    )
    if status != 200:
        raise RuntimeError(f"the warm-up body was refused: HTTP {status} {answer[:200]!r}")
    if "ingest_workers_warm" in procs.metrics(base):
        procs.wait_metric(base, "ingest_workers_warm", 1)
    procs.wait_drained(base)


def _cpu_by_process(server: int, before: dict[str, float] | None = None) -> dict[str, float]:
    """CPU seconds of the serving process, its recorder and the recorder's workers (since
    ``before``)."""
    recorders = set(procs.children_of(server))
    out = {"serving": procs.cpu_seconds(server), "recorder": 0.0, "workers": 0.0}
    for pid in procs.children(server):
        out["recorder" if pid in recorders else "workers"] += procs.cpu_seconds(pid)
    return {k: v - (before or {}).get(k, 0.0) for k, v in out.items()}


# -- in-process stages ---------------------------------------------------------------------


def _timed(fn: Any, *args: Any) -> tuple[float, Any]:
    t0 = time.perf_counter()
    out = fn(*args)
    return time.perf_counter() - t0, out


def _decode(bodies: list[bytes]) -> list[InvocationRecord]:
    out = []
    for body in bodies:
        docs = [orjson.loads(line) for line in body.split(b"\n") if line]
        out += [InvocationRecord.from_dict(doc, source="ingest") for doc in docs]
    return out


def _decode_as_server(bodies: list[bytes]) -> int:
    n = 0
    for body in bodies:
        docs = parse_records(body, 50_000, 64)  # what the handler calls: adds a depth walk
        n += len([InvocationRecord.from_dict(doc, source="ingest") for doc in docs])
    return n


def _spool(records: list[InvocationRecord], directory: Path) -> tuple[float, float, int]:
    """Encode + append in batches of SPOOL_BATCH with fsync; (total s, encode s, fsyncs)."""
    encode_s = 0.0
    with Spool(directory, fsync=True) as spool:
        t0 = time.perf_counter()
        for i in range(0, len(records), SPOOL_BATCH):
            e0 = time.perf_counter()
            payloads = [encode_payload(r) for r in records[i : i + SPOOL_BATCH]]
            encode_s += time.perf_counter() - e0
            spool.append(payloads)
        total = time.perf_counter() - t0
        fsyncs = spool.stats.fsyncs
    return total, encode_s, fsyncs


def _prepare(records: list[InvocationRecord]) -> int:
    """What the spool thread does to each batch first: the workspace's logging configuration
    and redaction (the default policy: key detectors, mask), on copies."""
    state = MemoryStateStore()
    policy = RecordPolicy(
        LoggingConfigs(LoggingConfigStore(state)), RedactionPolicies(state, b"k" * 32)
    )
    for i in range(0, len(records), SPOOL_BATCH):
        policy.prepare_all(_copied(records[i : i + SPOOL_BATCH]))
    return len(records)


def _copies(records: list[InvocationRecord]) -> int:
    """The copies alone, to subtract from `_prepare`."""
    for i in range(0, len(records), SPOOL_BATCH):
        _copied(records[i : i + SPOOL_BATCH])
    return len(records)


def _copied(records: list[InvocationRecord]) -> list[InvocationRecord]:
    return [InvocationRecord(orjson.loads(orjson.dumps(r.data))) for r in records]


def _store(records: list[InvocationRecord], path: Path) -> float:
    db = Database(path)
    store = DuckDBRecordStore(db)
    try:
        t0 = time.perf_counter()
        for i in range(0, len(records), STORE_BATCH):
            store.append(records[i : i + STORE_BATCH], f"1:{i}")
        return time.perf_counter() - t0
    finally:
        db.close()


def _rows_and_arrow(records: list[InvocationRecord]) -> float | None:
    """The Python half of the store: the batch's Arrow tables, no DuckDB insert."""
    db = Database(Path(tempfile.mkdtemp(prefix="llmtrail-arrow-")) / "a.duckdb")
    try:
        store = DuckDBRecordStore(db)
        now = datetime.now(UTC)
        t0 = time.perf_counter()
        for i in range(0, len(records), STORE_BATCH):
            store.arrow_tables(records[i : i + STORE_BATCH], now)
        return time.perf_counter() - t0
    finally:
        db.close()


def baseline_tables(n: int) -> list[pa.Table]:
    """Hand-built Arrow tables (STORE_BATCH rows each) of ~35 columns shaped like a record row
    plus its two JSON bodies."""
    base = datetime(2026, 11, 20, 8, tzinfo=UTC)
    tables = []
    for start in range(0, n, STORE_BATCH):
        idx = range(start, min(n, start + STORE_BATCH))
        text = [f"{i:012x}" for i in idx]
        ts = [base + timedelta(milliseconds=7 * i) for i in idx]
        cols: dict[str, pa.Array] = {
            "record_id": pa.array([f"019a0000-0000-7000-8000-{t}" for t in text]),
            "workspace": pa.array(["default"] * len(idx)),
            "timestamp": pa.array(ts, pa.timestamp("us", tz="UTC")),
            "request_id": pa.array([f"0a1b2c3d-0000-4000-8000-{t}" for t in text]),
            "schema_type": pa.array(["ModelInvocationLog"] * len(idx)),
            "schema_version": pa.array(["1.0"] * len(idx)),
            "account_id": pa.array(["123456789012"] * len(idx)),
            "identity_arn": pa.array([f"arn:aws:iam::123456789012:user/app-{i % 50}" for i in idx]),
            "region": pa.array(["us-east-1"] * len(idx)),
            "operation": pa.array([("Converse", "InvokeModel")[i % 2] for i in idx]),
            "model_id": pa.array([f"anthropic.claude-model-{i % 4}-v1:0" for i in idx]),
            "request_metadata": pa.array(
                [[("environment", "production")] for _ in idx], pa.map_(pa.string(), pa.string())
            ),
            "input_content_type": pa.array(["application/json"] * len(idx)),
            "input_token_count": pa.array([180 + i % 97 for i in idx], pa.int64()),
            "cache_read_input_token_count": pa.array([0] * len(idx), pa.int64()),
            "cache_write_input_token_count": pa.array([0] * len(idx), pa.int64()),
            "output_content_type": pa.array(["application/json"] * len(idx)),
            "output_token_count": pa.array([40 + i % 53 for i in idx], pa.int64()),
            "error_code": pa.array([None] * len(idx), pa.string()),
            "provider": pa.array(["bedrock"] * len(idx)),
            "status": pa.array(["OK"] * len(idx)),
            "source": pa.array(["ingest"] * len(idx)),
            "latency_ms": pa.array([300 + i % 1700 for i in idx], pa.int64()),
            "stop_reason": pa.array(["end_turn"] * len(idx)),
            "meta_application_name": pa.array([f"App{i % 4}" for i in idx]),
            "meta_tenant_id": pa.array([f"tenant-{i % 1000}" for i in idx]),
            "meta_user_id": pa.array([f"user-{i % 5000}" for i in idx]),
            "meta_team": pa.array([f"team-{i % 4}" for i in idx]),
            "derived": pa.array(
                ['["recordId","workspace","status","provider","source"]'] * len(idx)
            ),
            "extra": pa.array([None] * len(idx), pa.string()),
            "ingested_at": pa.array([base] * len(idx), pa.timestamp("us", tz="UTC")),
            "input_body_json": pa.array(
                [
                    f'{{"messages":[{{"role":"user","content":[{{"text":"question {t} '
                    + "x" * 150
                    + '"}]}],"inferenceConfig":{"maxTokens":512}}'
                    for t in text
                ]
            ),
            "output_body_json": pa.array(
                [
                    f'{{"output":{{"message":{{"role":"assistant","content":[{{"text":"answer {t} '
                    + "y" * 150
                    + '"}]}},"stopReason":"end_turn"}'
                    for t in text
                ]
            ),
        }
        tables.append(pa.table(cols))
    return tables


def _duckdb_only(tables: list[pa.Table], path: Path) -> float:
    conn = duckdb.connect(str(path))
    try:
        first = tables[0]  # noqa: F841 - referenced by name in SQL
        conn.execute("CREATE TABLE t AS SELECT * FROM first LIMIT 0")
        t0 = time.perf_counter()
        for arrow_table in tables:  # noqa: B007 - referenced by name in SQL
            conn.execute("BEGIN")
            conn.execute("INSERT INTO t SELECT * FROM arrow_table")
            conn.execute("COMMIT")
        return time.perf_counter() - t0
    finally:
        conn.close()


def run_stages(workdir: Path, plan: Plan, log: procs.Log) -> list[Stage]:
    n = plan.records
    bodies = ndjson_bodies(RUN_ID, n, PER_REQUEST)
    size = sum(len(b) for b in bodies)
    # the collector as the recorder process sets it (server/recorder.py): with the default
    # thresholds, decoding 1,000-record bodies spends most of its time collecting
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)
    stages = []
    log("  (a) decode + validate …")
    seconds, records = _timed(_decode, bodies)
    stages.append(
        Stage(
            "(a) decode + validate: orjson.loads + InvocationRecord.from_dict",
            n,
            seconds,
            f"{size / n:,.0f} B/record NDJSON",
        )
    )
    seconds, _ = _timed(_decode_as_server, bodies)
    stages.append(
        Stage(
            "(a') same via capture.ingest_body.parse_records (adds the nesting check) + from_dict",
            n,
            seconds,
            "what the ingest handler runs (worker thread)",
        )
    )
    log("  (b) spool append …")
    total, encode_s, fsyncs = _spool(records, workdir / "stage-spool")
    stages.append(
        Stage(
            f"(b) spool append: encode_payload + Spool.append, {SPOOL_BATCH:,}/batch, fsync",
            n,
            total,
            f"encode {encode_s / total:.0%}; {fsyncs} fsyncs, "
            f"{(total - encode_s) / max(1, fsyncs) * 1000:.1f} ms write+fsync each",
        )
    )
    log("  (b') record policy …")
    copies, _ = _timed(_copies, records)
    prepared, _ = _timed(_prepare, records)
    stages.append(
        Stage(
            "(b') before the spool: logging configuration + redaction (default policy)",
            n,
            max(prepared - copies, 1e-9),
            f"{(prepared - copies) / n / (size / n / 1024) * 1e6:.1f} µs per KB of NDJSON",
        )
    )
    log("  (c) store …")
    seconds = _store(records, workdir / "stage-store.duckdb")
    stages.append(Stage(f"(c) store: DuckDBRecordStore.append, {STORE_BATCH:,}/batch", n, seconds))
    rows_s = _rows_and_arrow(records)
    if rows_s is not None:
        stages.append(
            Stage(
                "(c') of which records → Arrow tables (Python side, no DuckDB)",
                n,
                rows_s,
                f"{rows_s / seconds:.0%} of (c)",
            )
        )
    log("  (d) DuckDB-only baseline …")
    tables = baseline_tables(n)
    seconds = _duckdb_only(tables, workdir / "stage-baseline.duckdb")
    stages.append(
        Stage(
            f"(d) DuckDB only: INSERT INTO t SELECT * FROM arrow ({tables[0].num_columns} cols)",
            n,
            seconds,
            f"{STORE_BATCH:,} rows/transaction, Arrow built beforehand",
        )
    )
    return stages


def run(workdir: Path, plan: Plan, log: procs.Log, profile: Path | None = None) -> IngestResult:
    server, metrics = run_server(workdir, plan, log, profile)
    log("in-process stages …")
    return IngestResult(server, metrics, run_stages(workdir, plan, log), profile)


def tables(result: IngestResult) -> list[Table]:
    s, m = result.server, result.metrics
    t = Table(
        title=f"B. Ingest: POST /api/records, NDJSON, {PER_REQUEST:,} records/request, "
        f"{CONNECTIONS} keep-alive connections",
        box=box.MARKDOWN,
        title_justify="left",
    )
    t.add_column("measure")
    t.add_column("value", justify="right")
    t.add_column("goal")
    rate = s["stored"] / s["ack_s"] if s["ack_s"] else 0.0
    t.add_row("records acknowledged (stored)", f"{s['stored']:,} of {s['records']:,}", "")
    t.add_row(
        "request bodies", f"{s['requests']:,} × {s['bytes'] / s['requests'] / 1e6:.2f} MB", ""
    )
    t.add_row("time to last acknowledgement", f"{s['ack_s']:.2f} s", "")
    t.add_row(
        "acknowledged records/s (after fsync)",
        f"{rate:,.0f} ({s['bytes'] / s['ack_s'] / 1e6:.1f} MB/s)",
        f"≥ {GOAL_RECORDS_S:,}: {'PASS' if rate >= GOAL_RECORDS_S else 'MISS'}",
    )
    t.add_row("lag, last ack → all stored (/metrics stored = total)", f"{s['lag_s']:.3f} s", "")
    total_s = s["ack_s"] + s["lag_s"]
    t.add_row(
        "first request → all queryable", f"{total_s:.2f} s ({s['stored'] / total_s:,.0f}/s)", ""
    )
    t.add_row("GET /api/records?limit=1 afterwards", f"{s['listed']} record", "")
    t.add_row(
        "other processes' CPU while posting (before: their load after waiting for quiet)",
        other_load_text(s["other_cpu_s"], s["ack_s"], s["quiet_cores"]),
        "",
    )
    cpu = s.get("cpu_by_process", {})
    if cpu and s["stored"]:
        per = {k: v / s["stored"] * 1e6 for k, v in cpu.items()}
        t.add_row(
            "CPU µs a record while posting: serving / recorder / its workers (all)",
            f"{per['serving']:.0f} / {per['recorder']:.0f} / {per['workers']:.0f} "
            f"({sum(per.values()):.0f})",
            "",
        )
    t.add_row(
        "spool group commits / store transactions",
        f"{m.get('spool_fsyncs', 0):.0f} / {m.get('batches', 0):.0f}",
        "",
    )
    every = s.get("every_detector")
    if every:
        every_rate = every["stored"] / every["ack_s"] if every["ack_s"] else 0.0
        per = {k: v / max(1, every["stored"]) * 1e6 for k, v in every["cpu_by_process"].items()}
        t.add_row(
            f"with every detector on ({', '.join(EVERY_DETECTOR)}; {every['records']:,} "
            "records): acknowledged records/s; lag; CPU µs a record",
            f"{every_rate:,.0f}; {every['lag_s']:.3f} s; "
            f"{per['serving']:.0f} / {per['recorder']:.0f} / {per['workers']:.0f}",
            "",
        )
        s = {**s, "problems": [*s["problems"], *every["problems"]]}
    if s["problems"]:
        t.add_row("problems", "; ".join(s["problems"]), "")
    st = Table(
        title="B. In-process stages (this process, single thread, same records)",
        box=box.MARKDOWN,
        title_justify="left",
    )
    st.add_column("stage")
    st.add_column("records", justify="right")
    st.add_column("seconds", justify="right")
    st.add_column("records/s", justify="right")
    st.add_column("µs/record", justify="right")
    st.add_column("note")
    for stage in result.stages:
        st.add_row(
            stage.name,
            f"{stage.records:,}",
            f"{stage.seconds:.2f}",
            f"{stage.records / stage.seconds:,.0f}",
            f"{stage.seconds / stage.records * 1e6:.1f}",
            stage.note,
        )
    return [t, st]
