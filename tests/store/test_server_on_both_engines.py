"""One real ``llmtrail serve`` per store engine, the same traffic and the same checks.

The `server` fixture starts a server on DuckDB (``[store] url = "duckdb:///…"``), one on
ClickHouse's embedded engine (``chdb:///…``, chosen by ``--store``) and, when
``CLICKHOUSE_URL`` is set, one on that ClickHouse server (its password by ``password_env``).
Each is started once per module. Every expected figure is computed from what the test sent
or read back from the same server's other APIs, never written down.
"""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anthropic
import boto3
import openai
import pytest
from botocore.config import Config

from tests.harness import ServerProcess
from tests.store.conftest import store_url

ENGINES = ["duckdb", "chdb"] + (["clickhouse"] if os.environ.get("CLICKHOUSE_URL") else [])
APPS = ("claims", "search", "support")


def _store(engine: str, root: Path) -> tuple[str, dict[str, str]]:
    """The store URL for ``engine`` and the environment the server needs for it."""
    if engine == "duckdb":
        return f"duckdb://{root / 'store' / 'calls.duckdb'}", {}
    if engine == "chdb":
        return f"chdb://{root / 'chdb'}", {}
    return store_url(os.environ["CLICKHOUSE_URL"], f"e2e_{uuid.uuid4().hex[:12]}")


@pytest.fixture(scope="module", params=ENGINES)
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    root = tmp_path_factory.mktemp(f"on-{request.param}")
    url, env = _store(request.param, root)
    # chdb is chosen by the flag, the others by the environment: both ways are in use
    how = {"args": ("--store", url)} if request.param == "chdb" else {}
    env = env if how else {"LLMTRAIL_STORE__URL": url, **env}
    with ServerProcess(root / "data", env=env, **how) as proc:
        proc.engine = request.param  # the store in use (ServerProcess's own only picks chdb)
        yield proc


def call(server: ServerProcess, method: str, path: str, body: Any = None) -> Any:
    data = None
    headers = {}
    if body is not None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        headers["content-type"] = (
            "application/x-ndjson" if isinstance(body, bytes) else "application/json"
        )
    req = urllib.request.Request(server.url + path, data=data, method=method, headers=headers)
    with urllib.request.urlopen(req, timeout=60) as response:
        return json.loads(response.read())


def record(server: ServerProcess, request_id: str) -> dict[str, Any]:
    return call(server, "GET", f"/api/records/{urllib.parse.quote(request_id, safe='')}")


def query(server: ServerProcess, text: str) -> list[dict[str, Any]]:
    answer = call(server, "POST", "/api/query", {"queryString": text, "since": "2d"})
    assert answer["status"] == "Complete", answer
    return [{c["field"]: c["value"] for c in row} for row in answer["results"]]


def test_the_server_runs_on_the_store_it_was_given(server: ServerProcess) -> None:
    engine = server.engine
    data = server.data_dir
    assert not (data / "llmtrail.duckdb").exists()  # not the default file
    if engine == "duckdb":
        assert (data.parent / "store" / "calls.duckdb").exists()
    elif engine == "chdb":
        assert any((data.parent / "chdb").iterdir())


def test_the_three_wire_formats_are_recorded(server: ServerProcess) -> None:
    app = f"gw-{uuid.uuid4().hex[:6]}"
    bedrock = boto3.client(
        "bedrock-runtime",
        endpoint_url=server.url,
        region_name="us-east-1",
        aws_access_key_id="AKIAEXAMPLEEXAMPLE00",
        aws_secret_access_key="secret",
        config=Config(retries={"max_attempts": 1}),
    )
    with (
        openai.OpenAI(base_url=server.url + "/v1", api_key="sk-test", max_retries=0) as oa,
        anthropic.Anthropic(base_url=server.url, api_key="sk-ant", max_retries=0) as an,
        closing(bedrock) as br,
    ):
        chat = oa.chat.completions.with_raw_response.create(
            model="sim/gpt",
            messages=[{"role": "user", "content": "hello there"}],
            metadata={"application_name": app},
        )
        msg = an.messages.with_raw_response.create(
            model="sim/claude",
            max_tokens=50,
            messages=[{"role": "user", "content": "hi"}],
            metadata={"user_id": "u-1"},
        )
        converse = br.converse(
            modelId="sim/nova",
            messages=[{"role": "user", "content": [{"text": "hello"}]}],
            requestMetadata={"application_name": app},
        )
    server.settle()
    got = {
        "ChatCompletions": record(server, chat.headers["x-llmtrail-request-id"]),
        "Messages": record(server, msg.headers["x-llmtrail-request-id"]),
        "Converse": record(server, converse["ResponseMetadata"]["RequestId"]),
    }
    usage = chat.parse().usage
    assert usage is not None
    assert got["ChatCompletions"]["input"]["inputTokenCount"] == usage.prompt_tokens
    assert got["ChatCompletions"]["output"]["outputTokenCount"] == usage.completion_tokens
    assert got["Messages"]["output"]["outputTokenCount"] == msg.parse().usage.output_tokens
    assert got["Converse"]["output"]["outputTokenCount"] == converse["usage"]["outputTokens"]
    for operation, doc in got.items():
        assert doc["operation"] == operation and doc["status"] == "OK"
    rows = query(server, f'filter requestMetadata.application_name = "{app}" | stats count(*) as n')
    assert [int(r["n"]) for r in rows] == [2]


def _ingested(n: int, prefix: str) -> list[dict[str, Any]]:
    now = datetime.now(UTC) - timedelta(minutes=5)
    return [
        {
            "requestId": f"{prefix}-{i}",
            "timestamp": (now + timedelta(seconds=i)).isoformat().replace("+00:00", "Z"),
            "modelId": f"sim/m{i % 2}",
            "operation": "Converse",
            "requestMetadata": {"application_name": APPS[i % 3], "batch": prefix},
            "input": {"inputTokenCount": 10 + i},
            "output": {"outputTokenCount": 2 * i},
            "latencyMs": 100 + i,
        }
        for i in range(n)
    ]


def test_ingest_then_query_and_metrics_agree(server: ServerProcess) -> None:
    prefix = f"in-{uuid.uuid4().hex[:6]}"
    docs = _ingested(30, prefix)
    body = "\n".join(json.dumps(d) for d in docs).encode()
    answer = call(server, "POST", "/api/records", body)
    assert answer["stored"] == len(docs), answer
    server.settle()
    assert record(server, f"{prefix}-7")["requestMetadata"]["batch"] == prefix
    rows = query(
        server,
        f'filter requestMetadata.batch = "{prefix}" | stats count(*) as n, '
        "sum(input.inputTokenCount) as tin by requestMetadata.application_name as app",
    )
    expected_n = Counter(d["requestMetadata"]["application_name"] for d in docs)
    expected_tin: Counter[str] = Counter()
    for d in docs:
        expected_tin[d["requestMetadata"]["application_name"]] += d["input"]["inputTokenCount"]
    assert {r["app"]: int(r["n"]) for r in rows} == dict(expected_n)
    assert {r["app"]: int(r["tin"]) for r in rows} == dict(expected_tin)
    # the metric rollups count every record the store holds, the gateway's too
    [total] = query(server, "stats count(*) as n")
    series = _metric(server, "Invocations")
    assert sum(series) == float(total["n"])
    [tokens] = query(server, "stats sum(input.inputTokenCount) as t")
    assert sum(_metric(server, "InputTokenCount")) == float(tokens["t"])


def _metric(server: ServerProcess, name: str) -> list[float]:
    """The values of metric ``name`` over two days by the hour, waiting for the rollups to
    be folded (DuckDB folds staged rollups every maintenance interval)."""
    deadline = time.monotonic() + 30
    while True:
        answer = call(server, "GET", f"/api/metrics?metric={name}&period=3600&since=2d")
        [result] = answer["MetricDataResults"]
        values = [float(v) for v in result["Values"]]
        [total] = query(server, "stats count(*) as n")
        counted = sum(_values(call(server, "GET", "/api/metrics?metric=Invocations&since=2d")))
        if counted == float(total["n"]) or time.monotonic() > deadline:
            return values
        time.sleep(0.2)


def _values(answer: dict[str, Any]) -> list[float]:
    return [float(v) for r in answer["MetricDataResults"] for v in r["Values"]]


def test_otlp_spans_and_a_gateway_call_make_one_trace(server: ServerProcess) -> None:
    trace_id = uuid.uuid4().hex
    root_span, tool_span = uuid.uuid4().hex[:16], uuid.uuid4().hex[:16]
    now_ns = time.time_ns()
    spans = [
        _otlp_span(trace_id, root_span, None, "plan-trip", now_ns, 50, "workflow"),
        _otlp_span(trace_id, tool_span, root_span, "lookup", now_ns + 1_000_000, 5, "tool"),
    ]
    body = {"resourceSpans": [{"scopeSpans": [{"scope": {"name": "t"}, "spans": spans}]}]}
    call(server, "POST", "/v1/traces", body)
    with openai.OpenAI(
        base_url=server.url + "/v1",
        api_key="sk-test",
        max_retries=0,
        default_headers={"traceparent": f"00-{trace_id}-{root_span}-01"},
    ) as oa:
        oa.chat.completions.create(model="sim/gpt", messages=[{"role": "user", "content": "go"}])
    server.settle()
    deadline = time.monotonic() + 20
    while True:
        page = call(server, "GET", "/api/traces?limit=200")
        mine = [t for t in page["traces"] if t["traceId"] == trace_id]
        if (mine and mine[0]["spanCount"] == 3) or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    [summary] = mine
    assert (summary["name"], summary["spanCount"], summary["llmCalls"]) == ("plan-trip", 3, 1)
    full = call(server, "GET", f"/api/traces/{trace_id}")
    by_name = {s["name"]: s for s in full["spans"]}
    assert by_name["lookup"]["parentSpanId"] == root_span
    [llm] = [s for s in full["spans"] if s["spanKind"] == "llm"]
    assert llm["parentSpanId"] == root_span
    stored = record(server, llm["requestId"])
    assert summary["inputTokens"] == llm["inputTokens"] == stored["input"]["inputTokenCount"]


def _otlp_span(
    trace_id: str, span_id: str, parent: str | None, name: str, start_ns: int, ms: int, kind: str
) -> dict[str, Any]:
    span: dict[str, Any] = {
        "traceId": trace_id,
        "spanId": span_id,
        "name": name,
        "startTimeUnixNano": str(start_ns),
        "endTimeUnixNano": str(start_ns + ms * 1_000_000),
        "attributes": [{"key": "llmtrail.span.kind", "value": {"stringValue": kind}}],
    }
    if parent:
        span["parentSpanId"] = parent
    return span


def test_a_profile_stamps_the_calls_made_through_it(server: ServerProcess) -> None:
    name = f"team-{uuid.uuid4().hex[:6]}"
    created = call(
        server,
        "POST",
        "/api/profiles",
        {
            "inferenceProfileName": name,
            "modelSource": {"copyFrom": "sim/gpt"},
            "tags": [{"key": "dept", "value": "claims"}],
        },
    )
    arn = created["inferenceProfileArn"]
    listed = call(server, "GET", "/api/profiles?type=APPLICATION")
    assert arn in [p["inferenceProfileArn"] for p in listed["inferenceProfileSummaries"]]
    with openai.OpenAI(base_url=server.url + "/v1", api_key="sk-test", max_retries=0) as oa:
        answer = oa.chat.completions.with_raw_response.create(
            model=arn, messages=[{"role": "user", "content": "via a profile"}]
        )
    server.settle()
    doc = record(server, answer.headers["x-llmtrail-request-id"])
    assert doc["inferenceProfile"] == {"arn": arn, "name": name, "tags": {"dept": "claims"}}
    rows = query(server, f'filter inferenceProfile.name = "{name}" | stats count(*) as n')
    assert [int(r["n"]) for r in rows] == [1]
