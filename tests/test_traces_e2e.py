"""Traces end to end, against running servers: the llmtrail SDK and OpenTelemetry
instrumentation (OpenInference's ``openai`` instrumentation) around calls through the
gateway end as one trace with one record per model call; SDK errors show in the trace, in
``/api/errors`` and in the CLI, with and without a server; the timeline of sim traffic is
drawn and checked.

How the pieces meet: inside an llmtrail SDK span the patched ``openai`` client sends
``traceparent`` naming that span, so the gateway's record is its child. An OpenInference span
is an OpenTelemetry span: it does not know the SDK's context, so it roots a trace of its own,
and it records the response (``output.value``) with the upstream's id — the ``responseId``
the gateway also recorded — which is what merges it. With OpenTelemetry spans alone,
``traceparent`` comes from OpenTelemetry's propagator (here an httpx event hook), names the
OpenInference span, and merges it as the record's parent.
"""

from __future__ import annotations

import itertools
import json
import time
import urllib.error
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import numpy
import openai
import pytest
from openinference.instrumentation.openai import OpenAIInstrumentor
from opentelemetry import propagate
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from PIL import Image

from llmtrail import sdk
from llmtrail.cli import main as cli
from tests.harness import ServerProcess, engines


@pytest.fixture(autouse=True)
def sdk_off_afterwards() -> Iterator[None]:
    yield
    sdk.shutdown(timeout=5)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, engine: str) -> Iterator[ServerProcess]:
    with ServerProcess(tmp_path_factory.mktemp("traces") / "data", engine=engine) as running:
        yield running


class Instrumented:
    """OpenInference's instrumentation of ``openai``, exporting to a server over OTLP/HTTP
    (protobuf) and keeping a copy of every span in memory."""

    def __init__(self, url: str, service: str) -> None:
        self.memory = InMemorySpanExporter()
        self.provider = TracerProvider(resource=Resource.create({"service.name": service}))
        self.provider.add_span_processor(
            BatchSpanProcessor(
                OTLPSpanExporter(endpoint=url + "/v1/traces"), schedule_delay_millis=60_000
            )
        )
        self.provider.add_span_processor(SimpleSpanProcessor(self.memory))
        self.instrumentor = OpenAIInstrumentor()
        self.instrumentor.instrument(tracer_provider=self.provider)

    def flush(self) -> list[ReadableSpan]:
        assert self.provider.force_flush(30_000)
        return list(self.memory.get_finished_spans())

    def close(self) -> None:
        self.instrumentor.uninstrument()
        self.provider.shutdown()


@pytest.fixture
def instrumented(server: ServerProcess) -> Iterator[Instrumented]:
    spans = Instrumented(server.url, "oi-app")
    yield spans
    spans.close()


def hex_ids(span: ReadableSpan) -> tuple[str, str]:
    context = span.get_span_context()
    assert context is not None
    return f"{context.trace_id:032x}", f"{context.span_id:016x}"


def records_of(server: ServerProcess, model: str) -> list[dict[str, Any]]:
    server.settle()
    page = server.get(f"/api/records?model={model}&limit=100")
    return list(page["records"])


def traces_of(server: ServerProcess, app: str) -> list[dict[str, Any]]:
    return list(server.get(f"/api/traces?app={app}&limit=100")["traces"])


def missing(server: ServerProcess, path: str) -> bool:
    try:
        server.get(path)
    except urllib.error.HTTPError as exc:
        exc.close()
        return exc.code == 404
    return False


# -- one trace, one record per call ---------------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_openinference_call_inside_sdk_spans_is_one_trace_and_one_record(
    server: ServerProcess, instrumented: Instrumented, stream: bool
) -> None:
    app, model = f"oi-sdk-{stream}", f"sim/oi-sdk-{stream}"
    sdk.configure(url=server.url, app=app, export_interval=3600)
    client = openai.OpenAI(base_url=server.url + "/v1", api_key="sk-test", max_retries=0)

    @sdk.workflow(name="handle")
    def handle(question: str) -> str:
        if not stream:
            answer = client.chat.completions.create(
                model=model, messages=[{"role": "user", "content": question}]
            )
            return str(answer.choices[0].message.content)
        chunks = client.chat.completions.create(
            model=model, messages=[{"role": "user", "content": question}], stream=True
        )
        return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)

    with client:
        handle("Where is my parcel?")
    # as an exporter's batch delay would: the call is on record before its span is exported
    # (a span exported sooner than the gateway hands its call over is not merged)
    deadline = time.monotonic() + 30
    while not server.get(f"/api/records?model={model}&limit=1")["records"]:
        assert time.monotonic() < deadline, "the gateway's record was never stored"
        time.sleep(0.05)
    assert sdk.flush(30)
    (oi_span,) = instrumented.flush()
    oi_trace, _ = hex_ids(oi_span)
    (record,) = records_of(server, model)  # the gateway's record only: the OTLP span merged
    assert record["source"] == "gateway"
    assert oi_span.attributes is not None
    assert json.loads(str(oi_span.attributes["output.value"]))["id"] == record["responseId"]
    (summary,) = traces_of(server, app)
    assert summary["traceId"] == record["trace"]["traceId"] != oi_trace
    assert (summary["spanCount"], summary["llmCalls"], summary["name"]) == (2, 1, "handle")
    assert missing(server, f"/api/traces/{oi_trace}")  # the merged span left no trace of its own
    spans = server.get(f"/api/traces/{summary['traceId']}")["spans"]
    workflow = next(s for s in spans if s["spanKind"] == "workflow")
    call = next(s for s in spans if s["spanKind"] == "llm")
    assert call["parentSpanId"] == workflow["spanId"] and call["requestId"] == record["requestId"]
    assert call["inputTokens"] == record["input"]["inputTokenCount"] > 0


def test_sdk_llm_span_around_a_gateway_call_becomes_the_record(server: ServerProcess) -> None:
    sdk.configure(url=server.url, app="sdk-llm", export_interval=3600)
    client = openai.OpenAI(base_url=server.url + "/v1", api_key="sk-test", max_retries=0)

    @sdk.llm(name="draft reply")
    def draft(question: str) -> Any:
        return client.chat.completions.create(
            model="sim/sdk-llm", messages=[{"role": "user", "content": question}]
        )

    @sdk.workflow(name="handle")
    def handle(question: str) -> str:
        return str(draft(question).choices[0].message.content)

    with client:
        handle("Is it raining?")
    assert sdk.flush(30)
    (record,) = records_of(server, "sim/sdk-llm")
    assert record["source"] == "gateway"
    (summary,) = traces_of(server, "sdk-llm")
    assert (summary["spanCount"], summary["llmCalls"]) == (3, 1)  # workflow, link, record
    spans = server.get(f"/api/traces/{summary['traceId']}")["spans"]
    assert [s["name"] for s in spans] == ["handle", "draft reply"]  # fused: one node per call
    workflow, call = spans
    assert call["spanId"] == record["trace"]["parentSpanId"]  # the SDK span's own id …
    assert call["recordSpanId"] == record["trace"]["spanId"]  # … standing for the record
    assert call["parentSpanId"] == workflow["spanId"]
    assert (call["spanKind"], call["source"], call["requestId"]) == (
        "llm",
        "gateway",
        record["requestId"],
    )
    assert call["outputTokens"] == record["output"]["outputTokenCount"]


def test_opentelemetry_spans_alone_propagate_and_merge_by_parent(server: ServerProcess) -> None:
    spans = Instrumented(server.url, "otel-only")
    tracer = spans.provider.get_tracer("app")

    def inject(request: httpx2.Request) -> None:
        propagate.inject(request.headers)  # W3C traceparent of the current span

    http = httpx2.Client(event_hooks={"request": [inject]})
    client = openai.OpenAI(
        base_url=server.url + "/v1", api_key="sk-test", max_retries=0, http_client=http
    )
    try:
        with client, tracer.start_as_current_span("answer question"):
            client.chat.completions.create(
                model="sim/otel-only", messages=[{"role": "user", "content": "hello"}]
            )
        finished = spans.flush()
    finally:
        spans.close()
    call = next(s for s in finished if s.name != "answer question")
    root = next(s for s in finished if s.name == "answer question")
    trace_id, call_id = hex_ids(call)
    (record,) = records_of(server, "sim/otel-only")
    assert record["trace"]["traceId"] == trace_id
    assert record["trace"]["parentSpanId"] == call_id  # traceparent named the OpenInference span
    view = server.get(f"/api/traces/{trace_id}")["spans"]
    assert [(s["name"], s["spanKind"], s["source"]) for s in view] == [
        ("answer question", "other", "otlp"),
        (call.name, "llm", "gateway"),
    ]
    assert view[1]["spanId"] == call_id and view[1]["parentSpanId"] == hex_ids(root)[1]


# -- nesting, kinds and errors, in the API and the CLI ------------------------------------------


class ParcelNotFound(Exception):
    pass


def sdk_agent_traffic(server: ServerProcess, app: str) -> list[str]:
    """Three requests of a support agent: one fine, two where a tool fails the same way, one
    of those also with a failing model call. Their trace ids."""
    sdk.configure(url=server.url, app=app, export_interval=3600)
    client = openai.OpenAI(base_url=server.url + "/v1", api_key="sk-test", max_retries=0)
    traces = []

    @sdk.tool(name="track")
    def track(parcel: str) -> dict[str, str]:
        if parcel.startswith("X"):
            raise ParcelNotFound(f"no parcel {parcel[:1]}…")
        return {"parcel": parcel, "status": "in transit"}

    @sdk.task(name="plan")
    def plan(question: str) -> list[str]:
        return ["track", "answer"]

    @sdk.agent(name="support")
    def support(question: str, parcel: str, model: str) -> str:
        sdk.annotate(tags=["support"], metadata={"tier": "gold"})
        plan(question)
        try:
            status = track(parcel)
        except ParcelNotFound:
            status = {"status": "unknown"}
        reply = client.chat.completions.create(
            model=model, messages=[{"role": "user", "content": f"{question} {status}"}]
        )
        return str(reply.choices[0].message.content)

    @sdk.workflow(name="handle")
    def handle(question: str, parcel: str, model: str = "sim/agent") -> str:
        traces.append(sdk.current_span().trace_id)  # type: ignore[union-attr]
        return support(question, parcel, model)

    with client:
        handle("Where is it?", "A-1")
        handle("Where is it?", "X-2")
        with pytest.raises(openai.InternalServerError):
            handle("Where is it?", "X-3", model="sim/error-503")
    assert sdk.flush(30)
    server.settle()
    return traces


def test_sdk_trace_nesting_kinds_and_errors_in_the_api(server: ServerProcess) -> None:
    fine, recovered, failed = sdk_agent_traffic(server, "parcel-bot")
    spans = server.get(f"/api/traces/{fine}")["spans"]
    by_name = {s["name"]: s for s in spans}
    assert [(s["name"], s["spanKind"]) for s in spans] == [
        ("handle", "workflow"),
        ("support", "agent"),
        ("plan", "task"),
        ("track", "tool"),
        ("ChatCompletions sim/agent", "llm"),
    ]
    assert by_name["support"]["parentSpanId"] == by_name["handle"]["spanId"]
    for child in ("plan", "track", "ChatCompletions sim/agent"):
        assert by_name[child]["parentSpanId"] == by_name["support"]["spanId"]
    assert by_name["track"]["input"] == {"parcel": "A-1"}
    assert by_name["track"]["output"] == {"parcel": "A-1", "status": "in transit"}
    assert by_name["support"]["tags"] == ["support"]
    assert by_name["support"]["attributes"]["llmtrail.metadata.tier"] == "gold"
    failed_spans = {s["name"]: s for s in server.get(f"/api/traces/{failed}")["spans"]}
    tool_error = failed_spans["track"]["error"]
    assert tool_error["type"] == f"{__name__}.ParcelNotFound"
    assert tool_error["message"] == "no parcel X…"
    assert "raise ParcelNotFound" in tool_error["stackTrace"]
    assert failed_spans["handle"]["status"] == "ERROR"  # the model call's error left it
    assert failed_spans["ChatCompletions sim/error-503"]["status"] == "ERROR"
    (listed,) = [t for t in traces_of(server, "parcel-bot") if t["traceId"] == failed]
    assert listed["status"] == "ERROR" and listed["errorCount"] >= 3
    erring = server.get("/api/traces?app=parcel-bot&hasError=true")["traces"]
    assert {t["traceId"] for t in erring} == {failed, recovered}  # the tool failed in both

    groups = {(g["type"], g["message"]): g for g in server.get("/api/errors")["errors"]}
    tool = groups[(f"{__name__}.ParcelNotFound", "no parcel X…")]
    assert tool["count"] == 2  # two failures, not one per span they passed through
    assert tool["apps"] == ["parcel-bot"] and tool["sources"] == ["otlp"]
    assert "raise ParcelNotFound" in tool["sampleStackTrace"]
    assert tool["firstSeen"] < tool["lastSeen"]
    upstream = groups[("server_error", "sim: injected error 503")]  # the gateway's record
    assert (upstream["count"], upstream["models"], upstream["sources"]) == (
        1,
        ["sim/error-503"],
        ["gateway"],
    )
    assert upstream["sampleRequestId"]
    # the app's exception, worded as the installed openai release words it
    (client_side,) = [g for (kind, _), g in groups.items() if kind == "openai.InternalServerError"]
    assert "503" in client_side["message"] and "sim: injected error 503" in client_side["message"]
    assert (client_side["count"], client_side["apps"]) == (1, ["parcel-bot"])  # the app's view
    assert "client.chat.completions.create" in client_side["sampleStackTrace"]


# The CLI runs in this process (a subprocess would pay seconds of start-up per command); with
# no server it opens the data directory, whose runtime warms the tokenizer up, and the
# tokenizer package uses a deprecated importlib.resources call.
no_server_warnings = pytest.mark.filterwarnings(
    "ignore:open_binary is deprecated:DeprecationWarning"
)
# The same reason keeps these tests on DuckDB: chdb serves one path per process, and a test
# process may already hold another (the session's `clickhouse_url`). The errors, traces and
# timeline read APIs are compared across engines in tests/store/test_read_apis_both_engines.py,
# and the CLI opening a chdb data directory in tests/test_query_api.py.
in_process_cli = engines("duckdb", reason="the CLI opens the store inside the test process")


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    code = cli(list(args))
    out, err = capsys.readouterr()
    assert code == 0, err
    return out


@no_server_warnings
@in_process_cli
def test_cli_shows_traces_and_errors_with_and_without_a_server(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    engine: str,
) -> None:
    monkeypatch.delenv("LLMTRAIL_URL", raising=False)
    monkeypatch.setenv("COLUMNS", "240")
    data = tmp_path / "data"
    own = ServerProcess(data, engine=engine).start()
    try:
        _, _, failed = sdk_agent_traffic(own, "cli-bot")
        sdk.shutdown(timeout=5)
        with_server = {
            "trace": run_cli(capsys, "trace", failed, "--data-dir", str(data)),
            "errors": run_cli(capsys, "errors", "--data-dir", str(data), "--json"),
            "traces": run_cli(capsys, "traces", "--errors", "--data-dir", str(data), "--json"),
        }
    finally:
        own.stop()
    without = {
        "trace": run_cli(capsys, "trace", failed, "--data-dir", str(data)),
        "errors": run_cli(capsys, "errors", "--data-dir", str(data), "--json"),
        "traces": run_cli(capsys, "traces", "--errors", "--data-dir", str(data), "--json"),
    }
    assert with_server == without  # the same answers from the HTTP API and the data directory
    tree = without["trace"]
    for line in (
        "handle (workflow)",
        "support (agent)",
        "track (tool)",
        f"ERROR {__name__}.ParcelNotFound",
        "ChatCompletions sim/error-503 (llm)",
    ):
        assert line in tree, tree
    assert tree.index("handle (workflow)") < tree.index("support (agent)") < tree.index("track")
    groups = json.loads(without["errors"])
    tool = next(g for g in groups if g["type"] == f"{__name__}.ParcelNotFound")
    assert tool["count"] == 2 and tool["apps"] == ["cli-bot"]
    listed = json.loads(without["traces"])
    assert failed in {t["traceId"] for t in listed} and len(listed) == 2
    assert all(t["errorCount"] > 0 and t["app"] == "cli-bot" for t in listed)
    table = run_cli(capsys, "errors", "--data-dir", str(data))
    assert "ParcelNotFound" in table and "sim/error-503" in table


# -- the timeline ---------------------------------------------------------------------------------

CALLS = [1, 2, 3, 1, 2, 3, 1, 2, 1, 1]  # model calls of each of the 10 requests: 17 in all
SESSIONS = ["s-a", "s-b", "s-c"]


def bands_of(image: Any, rgb: tuple[int, int, int], tolerance: int = 8, least: int = 10) -> int:
    """How many separate horizontal bands of ``image`` (rows × columns × RGB) have rows with
    at least ``least`` pixels of colour ``rgb`` (anti-aliased text and edges have fewer)."""
    close = (abs(image.astype(int) - rgb) <= tolerance).all(axis=2)
    rows = close.sum(axis=1) >= least
    return int(rows[0]) + int((rows[1:] & ~rows[:-1]).sum())


@no_server_warnings
@in_process_cli
def test_timeline_of_sim_traffic(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    engine: str,
) -> None:
    monkeypatch.delenv("LLMTRAIL_URL", raising=False)
    data = tmp_path / "data"
    with ServerProcess(data, engine=engine) as own:
        sdk.configure(url=own.url, app="timeline-bot", export_interval=3600)
        client = openai.OpenAI(base_url=own.url + "/v1", api_key="sk-test", max_retries=0)
        with client:
            for n, calls in enumerate(CALLS):
                with sdk.span(f"request {n}", kind="workflow", session_id=SESSIONS[n % 3]):
                    for c in range(calls):
                        client.chat.completions.create(
                            model=f"sim/slow-{40 + 20 * c}",
                            messages=[{"role": "user", "content": f"step {c} of request {n}"}],
                        )
                        time.sleep(0.03)  # a gap between calls, so bars stand apart (~20 px)
        assert sdk.flush(30)
        own.settle()
        timeline = ("timeline", "--since", "1h", "--data-dir", str(data))
        by_trace = json.loads(run_cli(capsys, *timeline, "--format", "json"))
        chart = tmp_path / "timeline.png"
        said = run_cli(capsys, *timeline, "--out", str(chart))
    by_session = json.loads(run_cli(capsys, *timeline, "--by", "session", "--format", "json"))
    assert (by_trace["requests"], by_trace["invocations"]) == (10, 17)
    assert [r["name"] for r in by_trace["rows"]] == [f"request {n}" for n in range(10)]
    assert [len(r["invocations"]) for r in by_trace["rows"]] == CALLS
    for row in by_trace["rows"]:
        calls = row["invocations"]
        assert all(c["durationSeconds"] >= 0.04 for c in calls)
        for a, b in itertools.pairwise(calls):
            assert a["offsetSeconds"] + a["durationSeconds"] <= b["offsetSeconds"] + 0.001
        last = calls[-1]["offsetSeconds"] + calls[-1]["durationSeconds"]
        assert row["totalSeconds"] >= last - 0.001
    assert said.strip() == f"{chart}: 10 requests, 17 model invocations"
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(chart) as png:
        image = numpy.asarray(png.convert("RGB"))
    assert image.shape == (600, 1100, 3)  # 11 in wide; 0.45 in a row + 1.5 in, at 100 dpi
    assert bands_of(image, (0x1C, 0x45, 0x87)) == 10  # a dark bar (a model call) in every row
    assert bands_of(image, (0xC9, 0xDA, 0xF8)) == 10  # and a light bar for each request
    assert (by_session["requests"], by_session["invocations"]) == (3, 17)
    assert sorted(r["key"] for r in by_session["rows"]) == SESSIONS
    assert sorted(len(r["invocations"]) for r in by_session["rows"]) == sorted(
        sum(CALLS[i::3]) for i in range(3)
    )
