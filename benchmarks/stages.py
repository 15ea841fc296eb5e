"""What each stage of the record path costs, per record, in one process (no HTTP).

    .venv/bin/python benchmarks/stages.py            # 5,000 gateway records, 5,000 ingested
    .venv/bin/python benchmarks/stages.py --records 20000

Stages, in the order a record meets them: parse (the upstream's answer), build (the record
document), price (cost and characters), prepare (logging configuration and redaction),
encode (the spool frame), spool (append + fsync per batch), convert (rows to Arrow) and
insert (DuckDB, with the metric rollups). Each is timed over the same records, and the CPU
time (``process_time``) is reported beside the wall time.
"""

from __future__ import annotations

import argparse
import copy
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from rich import box
from rich.console import Console
from rich.table import Table

from llmtrail.config import Settings
from llmtrail.pipeline.pipeline import encode_payload
from llmtrail.pipeline.spool import Spool
from llmtrail.record import InvocationRecord
from llmtrail.server.runtime import Runtime

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


def timed(name: str, n: int, fn: Callable[[], Any], rows: list[tuple[str, float, float]]) -> Any:
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    rows.append((name, wall / n * 1e6, cpu / n * 1e6))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=5000)
    parser.add_argument("--batch", type=int, default=500)
    args = parser.parse_args()
    n, batch = args.records, args.batch
    work = Path(tempfile.mkdtemp(prefix="stages-"))
    settings = Settings(data_dir=work / "data")
    runtime = Runtime(settings)
    runtime.start(warm=True)
    runtime.pipeline.stop()
    rows: list[tuple[str, float, float]] = []
    raw_answer = orjson.dumps(ANSWER)
    from llmtrail.capture.gateway.call import Call
    from llmtrail.capture.gateway.openai.models import chat_usage

    def parse() -> list[Any]:
        return [chat_usage(orjson.loads(raw_answer)) for _ in range(n)]

    outcomes = timed("parse the answer", n, parse, rows)
    headers = {"user-agent": "bench", "content-type": "application/json"}

    def build() -> list[InvocationRecord]:
        out = []
        for o in outcomes:
            call = Call(headers, settings, "ChatCompletions")
            rec = call.record(
                model_id="gpt-4o-mini",
                provider="openai",
                resolved_model="gpt-4o-mini",
                input_body=REQUEST,
                output_body=ANSWER,
                input_tokens=o.input_tokens,
                output_tokens=o.output_tokens,
                response_id=o.response_id,
                stop_reason=o.stop_reason,
                metadata={"application_name": "bench"},
            )
            assert rec is not None
            out.append(rec)
        return out

    records = timed("build the record", n, build, rows)
    timed("price (cost, characters)", n, lambda: [runtime.enricher(r.data) for r in records], rows)
    prepare = runtime.record_policy.prepare
    timed("prepare (delivery, redaction)", n, lambda: [prepare(r) for r in records], rows)
    frames = timed("encode the spool frame", n, lambda: [encode_payload(r) for r in records], rows)
    spool = Spool(work / "spool", fsync=True)

    def spooled() -> None:
        for i in range(0, n, batch):
            spool.append(frames[i : i + batch])

    timed(f"spool (fsync per {batch})", n, spooled, rows)
    spool.close()
    store = runtime.records
    now = datetime.now(UTC)

    def convert() -> list[Any]:
        return [store.arrow_tables(records[i : i + batch], now) for i in range(0, n, batch)]

    timed("convert to Arrow", n, convert, rows)
    fresh = [
        InvocationRecord(
            {**copy.deepcopy(r.data), "requestId": f"r{i}", "recordId": f"0{i:031d}"}, r.derived
        )
        for i, r in enumerate(records)
    ]

    def insert() -> None:
        for i in range(0, n, batch):
            store.append(fresh[i : i + batch])

    timed("convert + insert (DuckDB, rollups)", n, insert, rows)
    ingest_raw = b"\n".join(orjson.dumps(r.data) for r in records)
    from llmtrail.server.api import validate_batch

    limits = settings.limits

    def validate() -> Any:
        return [
            validate_batch(
                b"\n".join(ingest_raw.split(b"\n")[i : i + batch]),
                False,
                limits.max_ingest_bytes,
                limits.max_ingest_records,
                limits.max_json_depth,
            )
            for i in range(0, n, batch)
        ]

    timed("ingest: decode + validate", n, validate, rows)
    runtime.close()
    table = Table(
        title=f"record path, per record ({n} records, batches of {batch})", box=box.MARKDOWN
    )
    table.add_column("stage")
    table.add_column("wall µs", justify="right")
    table.add_column("CPU µs", justify="right")
    for name, wall, cpu in rows:
        table.add_row(name, f"{wall:,.1f}", f"{cpu:,.1f}")
    Console(width=120).print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
