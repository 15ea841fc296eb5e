"""What each stage of the record path costs, per record, and in which process it runs.

    .venv/bin/python benchmarks/stages.py            # 5,000 gateway records
    .venv/bin/python benchmarks/stages.py --records 20000

Every stage runs here, one after the other, over the same records (no HTTP, no pipe): the
hand-over (the serving process builds a `CallFacts` and pickles it as the link does), then
in the recorder the answer read and the record built (timed unpriced, then priced, and the
pricing alone), the logging configuration and redaction, the spool frames, the spool itself
(append + fsync per batch), the Arrow conversion, the batch's metric staging rows
(`batch_deltas`) with the IPC encoding of all, and back in the serving process the insert
(DuckDB, with the staging rows). CPU time (``process_time``) is printed beside wall time,
and summed per process for one gateway record. The relay itself is not here: it is part A's
``--no-record`` row (`run.py`, CPU µs per request).

A second table does the same for part B's ingest records, in bodies of 1,000 as a body of
64 KB or more takes them: in the recorder's worker process, then in the recorder, then the
insert in the serving process.
"""

from __future__ import annotations

import argparse
import io
import pickle
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
from rich import box
from rich.console import Console
from rich.table import Table

from bench_records import ndjson_bodies
from llmtrail.capture.gateway.facts import WHOLE, CallFacts, record_of
from llmtrail.capture.ingest_body import validate_batch
from llmtrail.config import Settings
from llmtrail.pipeline.dedup import RecentRequestIds
from llmtrail.pipeline.enrich import enriched
from llmtrail.pipeline.frames import encode_payload
from llmtrail.pipeline.ingest_frames import prepare_body
from llmtrail.pipeline.link import from_ipc, ipc
from llmtrail.pipeline.packed import RecordFrames
from llmtrail.pipeline.spool import Spool
from llmtrail.server.collector import RECORD_PATH_YOUNG, settle_collector
from llmtrail.server.record_path import LocalRecording
from llmtrail.server.runtime import Runtime
from llmtrail.store.duckdb.metric_deltas import batch_deltas
from llmtrail.store.duckdb.records import batch_tables

if TYPE_CHECKING:
    import pyarrow as pa

    from llmtrail.schema import RecordSchema

REQUEST = {
    "model": "gpt-4o-mini",
    "messages": [
        {"role": "system", "content": "You are a helpful assistant. " * 4},
        {"role": "user", "content": "Summarise the quarterly numbers for the team. " * 6},
    ],
    "metadata": {"application_name": "bench", "tenant_id": "t-1"},
}
ANSWER = {
    "id": "chatcmpl-bench",
    "object": "chat.completion",
    "created": 1_700_000_000,
    "model": "gpt-4o-mini",
    "choices": [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "The numbers went up. " * 40},
            "finish_reason": "stop",
        }
    ],
    "usage": {"prompt_tokens": 120, "completion_tokens": 200, "total_tokens": 320},
}

TRANSACTIONS = 20  # 1-record batches, for the fixed cost of a store transaction


def timed(
    rows: list[tuple[str, str, float, float]],
    process: str,
    name: str,
    n: int,
    fn: Callable[[], Any],
) -> Any:
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    rows.append((process, name, wall / n * 1e6, cpu / n * 1e6))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=5000)
    parser.add_argument("--batch", type=int, default=500)
    args = parser.parse_args()
    n, batch = args.records, args.batch
    work = Path(tempfile.mkdtemp(prefix="stages-"))
    settings = Settings(data_dir=work / "data")
    runtime = Runtime(settings)  # the record path in this process: every stage timed here
    runtime.start(warm=True)
    for thread in threading.enumerate():  # the warm-up (tokenizer, prices, pyarrow) first
        if thread.name == "llmtrail-warm":
            thread.join()
    runtime.recording.close()
    assert isinstance(runtime.recording, LocalRecording)
    # the collector as the recorder sets it (server/recorder.py), where all but two stages run
    settle_collector(RECORD_PATH_YOUNG)
    path = runtime.recording.path
    rows: list[tuple[str, str, float, float]] = []
    headers = {"user-agent": "bench", "content-type": "application/json"}
    started = datetime.now(UTC)

    # each call's own bytes, as the serving loop holds them (one object shared by every call
    # would be pickled once for all the messages of a write)
    requests = [orjson.dumps(REQUEST) for _ in range(n)]
    answers = [orjson.dumps(ANSWER) for _ in range(n)]

    def hand_over() -> bytes:
        facts = [
            CallFacts(
                wire="openai",
                operation="ChatCompletions",
                started=started,
                request_id=str(uuid.uuid4()),
                latency_ms=12,
                model_id="gpt-4o-mini",
                workspace="default",
                request_raw=request,
                headers=headers,
                provider="openai",
                resolved_model="gpt-4o-mini",
                metadata={"application_name": "bench"},
                answer=WHOLE,
                raw=answer,
            )
            for request, answer in zip(requests, answers, strict=True)
        ]
        return b"".join(  # as the loop's pipe sends them: 10 ms of calls a write
            pickle.dumps([("facts", f) for f in facts[i : i + 16]], pickle.HIGHEST_PROTOCOL)
            for i in range(0, n, 16)
        )

    sent = timed(rows, "serving", "hand over (CallFacts, pickled for the pipe)", n, hand_over)
    facts = _unpickled(sent)
    reader = path.readers["openai"]
    timed(  # the parse and the build alone: the record below is built again, priced
        rows,
        "recorder",
        "parse: read the answer, build the record (unpriced)",
        n,
        lambda: [record_of(f, settings, reader, withhold=path._withhold) for f in facts],
    )
    records = timed(
        rows,
        "recorder",
        "parse and price (the record as stored)",
        n,
        lambda: [path.record_call(f) for f in facts],
    )
    docs = [dict(r.data) for r in records]
    price = path.enricher
    timed(rows, "recorder", "of which price (Enricher)", n, lambda: [price(d) for d in docs])
    policy = path.policy

    def prepared() -> None:
        for i in range(0, n, batch):
            policy.prepare_all(records[i : i + batch])

    timed(rows, "recorder", f"prepare (delivery, redaction; a search per {batch})", n, prepared)
    frames = timed(
        rows, "recorder", "encode the spool frames", n, lambda: [encode_payload(r) for r in records]
    )
    spool = Spool(work / "spool", fsync=True)

    def spooled() -> None:
        for i in range(0, n, batch):
            spool.append(frames[i : i + batch])

    timed(rows, "recorder", f"spool (fsync per {batch})", n, spooled)
    spool.close()
    schema = runtime.schema
    for t in batch_tables(records[:10], schema, datetime.now(UTC)):  # pyarrow loads on first use
        from_ipc(ipc(t))

    def convert() -> list[tuple[pa.Table, pa.Table]]:
        now = datetime.now(UTC)
        return [batch_tables(records[i : i + batch], schema, now) for i in range(0, n, batch)]

    tables = timed(rows, "recorder", "convert to Arrow", n, convert)
    batches = timed(
        rows,
        "recorder",
        "the metric staging rows, IPC for the pipe",
        n,
        lambda: [_crossing(t, b, schema) for t, b in tables],
    )
    store = runtime.records

    def insert() -> None:
        for t, b, staged in batches:
            store.append_tables(from_ipc(t), from_ipc(b), None, _from_ipc(staged))

    timed(rows, "serving", "insert (DuckDB, with the staging rows)", n, insert)
    # what a transaction costs however few records it holds (its statements planned, the
    # Arrow tables scanned): a gateway batch carries ~1 s of calls, which share it
    singles = [
        _crossing(t, b, schema)
        for t, b in (batch_tables([r], schema, datetime.now(UTC)) for r in records[:TRANSACTIONS])
    ]

    def insert_singles() -> None:
        for t, b, staged in singles:
            store.append_tables(from_ipc(t), from_ipc(b), None, _from_ipc(staged))

    timed(
        rows,
        "serving",
        "of which a transaction's fixed cost (1-record batches), µs a transaction",
        len(singles),
        insert_singles,
    )
    ingest_rows = ingest_stages(path, runtime, work, n)
    runtime.close()
    print_stages(
        f"record path, per gateway record ({n} records, batches of {batch})",
        rows,
        ("serving", "recorder"),
        ("ingest", "parse:", "of which"),
        "gateway record",
        "relay: run.py part A, --no-record's CPU µs per request",
    )
    print_stages(
        f"ingest, per record ({n} part B records, bodies of {INGEST_BODY:,})",
        ingest_rows,
        ("worker", "recorder", "serving"),
        ("of ",),
        "ingested record",
        "the HTTP request and its answer are not here: part B's CPU by process",
    )
    return 0


INGEST_BODY = 1000


def print_stages(
    title: str,
    rows: list[tuple[str, str, float, float]],
    processes: tuple[str, ...],
    not_summed: tuple[str, ...],
    what: str,
    caption: str,
) -> None:
    """A table of ``rows`` (process, stage, wall µs, CPU µs), with each process's CPU for one
    record summed over its rows, less those whose stage starts with ``not_summed``."""
    table = Table(title=title, box=box.MARKDOWN)
    for column in ("process", "stage"):
        table.add_column(column)
    table.add_column("wall µs", justify="right")
    table.add_column("CPU µs", justify="right")
    for process, name, wall, cpu in rows:
        table.add_row(process, name, f"{wall:,.1f}", f"{cpu:,.1f}")
    for process in processes:
        cpu = sum(r[3] for r in rows if r[0] == process and not r[1].startswith(not_summed))
        table.add_row(process, f"[b]{what}, total[/b]", "", f"{cpu:,.1f}")
    table.caption = caption
    Console(width=140).print(table)


def ingest_stages(
    path: Any, runtime: Runtime, work: Path, n: int
) -> list[tuple[str, str, float, float]]:
    """An ingest body's stages as a body of 64 KB or more takes them: in the recorder's
    worker process (`prepare_body`, step by step, then whole as it answers), in the recorder
    (the answer read, the request ids claimed, the frames spooled), and in the serving
    process (the insert of the worker's tables)."""
    rows: list[tuple[str, str, float, float]] = []
    bodies = ndjson_bodies("5ca1ab1e", n, INGEST_BODY)
    rules = path._rules("default")
    limits = path.settings.limits
    checked = timed(
        rows,
        "worker",
        "decode + validate",
        n,
        lambda: [
            validate_batch(
                b,
                False,
                limits.max_ingest_bytes,
                limits.max_ingest_records,
                limits.max_json_depth,
            )[1]
            for b in bodies
        ],
    )
    priced = timed(
        rows, "worker", "price", n, lambda: [enriched(v, path.enricher) for v in checked]
    )
    redactor = path.redaction.for_workspace("default")
    found = timed(
        rows,
        "worker",
        "the redaction check (one search a body)",
        n,
        lambda: [redactor.to_redact([r.data for r in v]) for v in priced],
    )
    assert not any(found), "part B's records hold nothing to redact"
    timed(
        rows, "worker", "spool frames", n, lambda: [[encode_payload(r) for r in v] for v in priced]
    )
    schema = runtime.schema
    timed(
        rows,
        "worker",
        "convert to Arrow (IPC for the pipe)",
        n,
        lambda: [[ipc(t) for t in batch_tables(v, schema, datetime.now(UTC))] for v in priced],
    )
    answers = timed(
        rows,
        "worker",
        "of which the whole body, as it answers (prepare_body, pickled)",
        n,
        lambda: [
            pickle.dumps(prepare_body(b, False, "default", rules), pickle.HIGHEST_PROTOCOL)
            for b in bodies
        ],
    )
    spool = Spool(work / "ingest-spool", fsync=True)
    dedup = RecentRequestIds(600.0, 1_000_000)

    def recorder() -> list[RecordFrames]:
        out = []
        for answer in answers:
            framed = pickle.loads(answer).records
            assert isinstance(framed, RecordFrames)
            dedup.claim(framed.keys)
            spool.append(framed.frames, True)
            out.append(framed)
        return out

    framed = timed(
        rows,
        "recorder",
        "read the answer, claim the request ids, spool (fsync a body)",
        n,
        recorder,
    )
    spool.close()
    store = runtime.records

    def joined() -> list[tuple[bytes, bytes, tuple[bytes, bytes] | None]]:
        import pyarrow as pa

        out = []
        for i in range(0, len(framed), 20):  # the store's batches: 20,000 records
            tables = [f.tables() for f in framed[i : i + 20]]
            joined, bodies = (pa.concat_tables([t[k] for t in tables]) for k in (0, 1))
            out.append(_crossing(joined, bodies, runtime.schema))
        return out

    batches = timed(rows, "recorder", "join the tables, the metric staging rows, IPC", n, joined)

    def insert() -> None:
        for t, b, staged in batches:
            store.append_tables(from_ipc(t), from_ipc(b), None, _from_ipc(staged))

    timed(rows, "serving", "insert (DuckDB, with the staging rows; 20,000 a batch)", n, insert)
    return rows


def _crossing(
    records: pa.Table, bodies: pa.Table, schema: RecordSchema
) -> tuple[bytes, bytes, tuple[bytes, bytes] | None]:
    """A store batch as it crosses to the serving process (`RemoteRecordStore`): its two
    tables and its metric staging rows, as IPC streams."""
    deltas = batch_deltas(records, schema)
    staged = None if deltas is None else (ipc(deltas[0]), ipc(deltas[1]))
    return ipc(records), ipc(bodies), staged


def _from_ipc(staged: tuple[bytes, bytes] | None) -> tuple[pa.Table, pa.Table] | None:
    return None if staged is None else (from_ipc(staged[0]), from_ipc(staged[1]))


def _unpickled(sent: bytes) -> list[CallFacts]:
    out: list[CallFacts] = []
    stream = io.BytesIO(sent)
    while stream.tell() < len(sent):
        out += [m[1] for m in pickle.load(stream)]
    return out


if __name__ == "__main__":
    sys.exit(main())
