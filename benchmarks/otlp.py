"""Part D: OTLP ingest — ``POST /v1/traces`` into DuckDB through a running server, and the same
spans stage by stage in-process.

The bodies are what the OpenTelemetry SDK's OTLP/HTTP exporter sends: protobuf
``ExportTraceServiceRequest``s, built beforehand with the generated classes, 100 traces (1,000
spans) each. A trace is one agent request in the llmtrail SDK's shape: a workflow with input,
output, tags and a session, an agent, three tool calls with arguments and results, a
retrieval, a task, and — in the ``mixed`` workload — three GenAI (v1.37) model calls with
token counts and messages, which become invocation records (spool, fsync, DuckDB) where the
rest go to the SpanStore. ``steps`` replaces the model calls by three more tool calls.

The server run: a fresh ``llmtrail serve``, one warm-up request, then this file's own client
(``python otlp.py client``, its own process: aiohttp, keep-alive connections) posts every body
and waits until ``/metrics`` shows every record stored; an answer comes after the spans are
committed and the records fsync'd to the spool. Spans per second count every span sent.

The in-process baselines on the same bodies: decoding alone (`decode_traces`: protobuf and
the conventions mapping), its protobuf step alone (`parse_protobuf`), and the SpanStore's
DuckDB insert alone (Arrow + INSERT of spans decoded beforehand).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from random import Random
from typing import Any

import orjson
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, KeyValue
from rich import box
from rich.table import Table

import procs
import spy
from machine_load import OtherLoad, other_load_text, own_cpu_s, server_tree, wait_quiet

GOAL_SPANS_S = 20_000
TRACES_PER_REQUEST = 100
SPANS_PER_TRACE = 10
CONNECTIONS = 4
WORKLOADS = ("steps", "mixed")


@dataclass(frozen=True)
class Plan:
    requests: int  # per workload; spans = requests × 1,000


FULL = Plan(80)
QUICK = Plan(16)


@dataclass
class Stage:
    name: str
    spans: int
    seconds: float
    note: str = ""


@dataclass
class OtlpResult:
    server: dict[str, dict[str, Any]] = field(default_factory=dict)  # by workload
    stages: list[Stage] = field(default_factory=list)
    profile: Path | None = None


# -- the bodies ------------------------------------------------------------------------------------


def _kv(key: str, value: Any) -> KeyValue:
    if isinstance(value, bool):
        any_value = AnyValue(bool_value=value)
    elif isinstance(value, int):
        any_value = AnyValue(int_value=value)
    elif isinstance(value, list):
        strings = [AnyValue(string_value=v) for v in value]
        any_value = AnyValue(array_value=ArrayValue(values=strings))
    else:
        any_value = AnyValue(string_value=value)
    return KeyValue(key=key, value=any_value)


def _step(kind: str, **more: Any) -> dict[str, Any]:
    operations = {"workflow": "invoke_workflow", "agent": "invoke_agent", "tool": "execute_tool"}
    attrs: dict[str, Any] = {"llmtrail.span.kind": kind}
    if kind in operations:
        attrs["gen_ai.operation.name"] = operations[kind]
    return {**attrs, **more}


@dataclass
class _Trace:
    """Adds the spans of one trace to a scope."""

    scope: Any
    rnd: Random
    trace_id: bytes
    at_ns: int

    def add(
        self, name: str, parent: bytes | None, attrs: dict[str, Any], ms: tuple[int, int]
    ) -> bytes:
        span = self.scope.spans.add()
        span.trace_id, span.span_id = self.trace_id, self.rnd.randbytes(8)
        if parent is not None:
            span.parent_span_id = parent
        span.name = name
        span.kind = 3 if attrs.get("gen_ai.operation.name") == "chat" else 1
        span.start_time_unix_nano = self.at_ns + ms[0] * 1_000_000
        span.end_time_unix_nano = self.at_ns + ms[1] * 1_000_000
        span.attributes.extend(_kv(k, v) for k, v in attrs.items())
        return bytes(span.span_id)


def _chat(question: str, rnd: Random, i: int) -> dict[str, Any]:
    answer = [
        {
            "role": "assistant",
            "parts": [{"type": "text", "content": "It is in transit."}],
            "finish_reason": "stop",
        }
    ]
    return {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-4o-mini",
        "gen_ai.response.id": f"chatcmpl-{rnd.getrandbits(64):016x}",
        "gen_ai.usage.input_tokens": 180 + i,
        "gen_ai.usage.output_tokens": 40 + i,
        "gen_ai.input.messages": json.dumps(
            [{"role": "user", "parts": [{"type": "text", "content": question}]}]
        ),
        "gen_ai.output.messages": json.dumps(answer),
    }


def body(workload: str, seed: int, start_ns: int) -> bytes:
    """One request: ``TRACES_PER_REQUEST`` agent traces of ``SPANS_PER_TRACE`` spans."""
    rnd = Random(seed)
    request = ExportTraceServiceRequest()
    resource_spans = request.resource_spans.add()
    resource_spans.resource.attributes.extend(
        [_kv("service.name", "bench-agent"), _kv("deployment.environment.name", "bench")]
    )
    scope = resource_spans.scope_spans.add()
    scope.scope.name = "llmtrail.sdk"
    for t in range(TRACES_PER_REQUEST):
        trace = _Trace(scope, rnd, rnd.randbytes(16), start_ns + t * 5_000_000_000)
        question = f"Where is parcel {rnd.randrange(10**6)}? It was due on Monday."
        workflow = _step(
            "workflow",
            **{
                "session.id": f"session-{seed}-{t % 7}",
                "llmtrail.input": json.dumps({"question": question}),
                "llmtrail.output": json.dumps("It arrives tomorrow before noon."),
                "llmtrail.tags": ["prod", "support"],
            },
        )
        root = trace.add("handle", None, workflow, (0, 4000))
        agent = trace.add(
            "support", root, _step("agent", **{"gen_ai.agent.name": "support"}), (1, 3990)
        )
        tools = 3 if workload == "mixed" else 6
        for i in range(tools):
            tool = _step(
                "tool",
                **{
                    "gen_ai.tool.name": f"tool_{i}",
                    "llmtrail.input": json.dumps({"parcel": "P-123", "step": i}),
                    "llmtrail.output": json.dumps({"status": "in transit", "hub": "LYS"}),
                },
            )
            trace.add(f"tool {i}", agent, tool, (100 + i * 300, 300 + i * 300))
        retrieval = _step(
            "retrieval",
            **{
                "llmtrail.input": json.dumps(question),
                "llmtrail.output": json.dumps(["doc 1", "doc 2"]),
            },
        )
        trace.add("search", agent, retrieval, (2000, 2100))
        trace.add(
            "plan", agent, _step("task", **{"llmtrail.input": json.dumps({"n": t})}), (2100, 2150)
        )
        if workload == "mixed":
            for i in range(3):
                trace.add(
                    "chat gpt-4o-mini",
                    agent,
                    _chat(question, rnd, i),
                    (2200 + i * 500, 2600 + i * 500),
                )
    return request.SerializeToString()


def bodies(workload: str, n: int, seed: int = 0) -> list[bytes]:
    start = time.time_ns() - 3600 * 10**9
    return [body(workload, seed + i, start) for i in range(n)]


# -- the client (its own process) ------------------------------------------------------------------


async def post_all(base: str, path: Path, connections: int) -> dict[str, Any]:
    import aiohttp

    items = orjson.loads(path.read_bytes())
    payloads = [bytes.fromhex(b) for b in items["bodies"]]
    headers = {"content-type": "application/x-protobuf"}
    problems: list[str] = []
    connector = aiohttp.TCPConnector(limit=connections, keepalive_timeout=300)
    async with aiohttp.ClientSession(
        connector=connector, timeout=aiohttp.ClientTimeout(total=300)
    ) as session:
        async with session.post(
            base + "/v1/traces", data=bytes.fromhex(items["warmup"]), headers=headers
        ) as r:
            await r.read()
        queue = list(reversed(payloads))

        async def worker() -> None:
            while queue:
                payload = queue.pop()
                async with session.post(base + "/v1/traces", data=payload, headers=headers) as r:
                    raw = await r.read()
                if r.status != 200 or raw:
                    problems.append(f"HTTP {r.status}: {raw[:200]!r}")

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(connections)))
        acked = time.perf_counter()
        expected = items["records"] + items["warmup_records"]
        while True:
            async with session.get(base + "/metrics") as r:
                text = (await r.read()).decode()
            if procs.parse_metrics(text)["stored"] >= expected or problems:
                break
            if time.perf_counter() - acked > 300:
                problems.append("records not stored within 300 s of the last acknowledgement")
                break
            await asyncio.sleep(0.005)
        stored = time.perf_counter()
    return {
        "requests": len(payloads),
        "bytes": sum(len(p) for p in payloads),
        "ack_s": acked - started,
        "lag_s": stored - acked,
        "problems": problems[:3],
    }


def run_server(
    workdir: Path, workload: str, plan: Plan, log: procs.Log, profile: Path | None
) -> dict[str, Any]:
    payloads = bodies(workload, plan.requests, seed=100)
    warmup = body(workload, 99, time.time_ns() - 7200 * 10**9)
    records = 0 if workload == "steps" else 3 * TRACES_PER_REQUEST
    spec = workdir / f"otlp-{workload}.json"
    spec.write_bytes(
        orjson.dumps(
            {
                "bodies": [p.hex() for p in payloads],
                "warmup": warmup.hex(),
                "records": records * len(payloads),
                "warmup_records": records,
            }
        )
    )
    started: list[procs.Proc] = []
    with procs.stopping(started):
        server, base = procs.start_llmtrail(workdir, f"llmtrail-otlp-{workload}")
        started.append(server)
        tree = server_tree(server.pid)
        quiet = wait_quiet(tree, own_cpu_s)  # as part C: a phase measures llmtrail, not others
        log(f"  {workload}: server pid {server.pid}; posting {plan.requests:,} requests …")
        argv = [sys.executable, __file__, "client", "--base", base, "--spec", str(spec)]
        argv += ["--connections", str(CONNECTIONS)]
        recorder = spy.Recorder(server.pid, profile) if profile is not None else None
        cpu0 = procs.tree_cpu_seconds(server.pid)
        other = OtherLoad(tree, own_cpu_s)
        done = subprocess.run(argv, capture_output=True, check=False, timeout=1800)
        cpu = procs.tree_cpu_seconds(server.pid) - cpu0
        other_cpu_s = other.seconds()
        if recorder is not None:
            recorder.stop()
        if done.returncode != 0:
            raise RuntimeError(
                f"otlp client failed: {done.stderr.decode(errors='replace')[-2000:]}"
            )
        result: dict[str, Any] = json.loads(done.stdout)
        result["spans"] = len(payloads) * TRACES_PER_REQUEST * SPANS_PER_TRACE
        result["records"] = records * len(payloads)
        result["server_cpu_s"] = cpu
        result["quiet_cores"], result["other_cpu_s"] = quiet, other_cpu_s
        return result


# -- in-process stages -----------------------------------------------------------------------------


def _timed(fn: Any, *args: Any) -> tuple[float, Any]:
    t0 = time.perf_counter()
    out = fn(*args)
    return time.perf_counter() - t0, out


def _decode(payloads: list[bytes]) -> list[Any]:
    from llmtrail.capture.otlp import decode_traces

    return [decode_traces(p, "application/x-protobuf") for p in payloads]


def _protobuf(payloads: list[bytes]) -> int:
    """The protobuf step alone: the generated classes parse and `OtlpSpan` values are built."""
    from llmtrail.capture.otlp import parse_protobuf

    return sum(len(parse_protobuf(p)) for p in payloads)


def _span_store(decoded: list[Any], path: Path) -> float:
    from llmtrail.store.duckdb import Database
    from llmtrail.store.duckdb.spans import DuckDBSpanStore

    db = Database(path)
    try:
        store = DuckDBSpanStore(db)
        store.append(decoded[0].spans[:10])  # warm: the first insert imports and plans
        t0 = time.perf_counter()
        for d in decoded:
            store.append(d.spans)
        return time.perf_counter() - t0
    finally:
        db.close()


def run_stages(workdir: Path, plan: Plan, log: procs.Log) -> list[Stage]:
    stages = []
    for workload in WORKLOADS:
        payloads = bodies(workload, max(4, plan.requests // 4), seed=500)
        n = len(payloads) * TRACES_PER_REQUEST * SPANS_PER_TRACE
        log(f"  {workload}: decode, generated classes, span store …")
        _decode(payloads[:1])
        seconds, decoded = _timed(_decode, payloads)
        records = sum(len(d.records) for d in decoded)
        stages.append(
            Stage(
                f"{workload}: decode alone (protobuf + mapping)",
                n,
                seconds,
                f"{records:,} of them model calls → record documents",
            )
        )
        seconds, _ = _timed(_protobuf, payloads)
        stages.append(
            Stage(
                f"{workload}: of which protobuf → OtlpSpan (generated classes, upb)",
                n,
                seconds,
                "parse_protobuf alone",
            )
        )
        spans = sum(len(d.spans) for d in decoded)
        seconds = _span_store(decoded, workdir / f"stage-spans-{workload}.duckdb")
        stages.append(
            Stage(
                f"{workload}: DuckDB SpanStore.append alone (Arrow + INSERT)",
                spans,
                seconds,
                f"{len(decoded)} transactions of {spans // len(decoded):,} spans",
            )
        )
    return stages


def run(workdir: Path, plan: Plan, log: procs.Log, profile: Path | None = None) -> OtlpResult:
    result = OtlpResult(profile=profile)
    for workload in WORKLOADS:
        result.server[workload] = run_server(
            workdir, workload, plan, log, profile if workload == "mixed" else None
        )
    log("in-process stages …")
    result.stages = run_stages(workdir, plan, log)
    return result


def tables(result: OtlpResult) -> list[Table]:
    t = Table(
        title="D. OTLP ingest: POST /v1/traces, protobuf, "
        f"{TRACES_PER_REQUEST * SPANS_PER_TRACE:,} spans/request, {CONNECTIONS} keep-alive "
        "connections, into DuckDB",
        box=box.MARKDOWN,
        title_justify="left",
    )
    for column in ("workload", "spans (records)", "acknowledged", "spans/s", "all stored",
                   "server CPU", "other processes", "goal"):  # fmt: skip
        t.add_column(column, justify="left" if column in ("workload", "goal") else "right")
    for workload, s in result.server.items():
        rate = s["spans"] / s["ack_s"] if s["ack_s"] else 0.0
        stored_s = s["ack_s"] + s["lag_s"]
        verdict = "PASS" if rate >= GOAL_SPANS_S else "MISS"
        t.add_row(
            workload,
            f"{s['spans']:,} ({s['records']:,})",
            f"{s['ack_s']:.2f} s",
            f"{rate:,.0f}",
            f"{stored_s:.2f} s ({s['spans'] / stored_s:,.0f}/s)",
            f"{s['server_cpu_s']:.1f} s ({s['server_cpu_s'] / stored_s:.0%} of a core)"
            if stored_s
            else "",
            other_load_text(s["other_cpu_s"], s["ack_s"], s["quiet_cores"]),
            f"≥ {GOAL_SPANS_S:,}: {verdict}"
            + (f"; {'; '.join(s['problems'])}" if s["problems"] else ""),
        )
    st = Table(
        title="D. In-process baselines (this process, single thread, same kind of bodies)",
        box=box.MARKDOWN,
        title_justify="left",
    )
    for column in ("stage", "spans", "seconds", "spans/s", "µs/span", "note"):
        st.add_column(column, justify="left" if column in ("stage", "note") else "right")
    for stage in result.stages:
        st.add_row(
            stage.name,
            f"{stage.spans:,}",
            f"{stage.seconds:.2f}",
            f"{stage.spans / stage.seconds:,.0f}",
            f"{stage.seconds / stage.spans * 1e6:.1f}",
            stage.note,
        )
    return [t, st]


def main() -> None:
    parser = argparse.ArgumentParser(description="OTLP ingest benchmark (part D)")
    sub = parser.add_subparsers(dest="mode", required=True)
    client = sub.add_parser("client", help="post the bodies of a spec file (used by run())")
    client.add_argument("--base", required=True)
    client.add_argument("--spec", required=True, type=Path)
    client.add_argument("--connections", type=int, default=CONNECTIONS)
    args = parser.parse_args()
    result = asyncio.run(post_all(args.base, args.spec, args.connections))
    sys.stdout.buffer.write(orjson.dumps(result) + b"\n")


if __name__ == "__main__":
    main()
