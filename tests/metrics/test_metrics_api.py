"""The metrics API and /metrics on a running server: figures equal what the query API counts
over the same records, a resent batch and a restart after kill -9 count nothing twice, and bad
parameters name the field."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.harness import ServerProcess, call

CONFIG = "[metrics]\nmaintenance_interval_s = 1\n"
APPS = ("support", "search", "claims")


def records(n: int) -> list[dict[str, Any]]:
    now = datetime.now(UTC)
    out = []
    for i in range(n):
        ts = now - timedelta(minutes=7 * i)
        out.append(
            {
                "timestamp": ts.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                "requestId": f"metrics-api-{i}",
                "modelId": ["m-a", "m-b"][i % 2],
                "operation": "Converse",
                "requestMetadata": {"application_name": APPS[i % 3], "tenant_id": f"t{i % 4}"},
                "input": {"inputTokenCount": 10 * i + 1},
                "output": {"outputTokenCount": i},
                "latencyMs": 100 + 13 * i,
            }
        )
    return out


def query(server: ServerProcess, text: str) -> list[dict[str, str]]:
    now = datetime.now(UTC)
    status, answer = call(
        server.url,
        "POST",
        "/api/query",
        {
            "queryString": text,
            "startTime": (now - timedelta(days=2)).isoformat(),
            "endTime": (now + timedelta(minutes=1)).isoformat(),
        },
    )
    assert status == 200, answer
    return [{c["field"]: c["value"] for c in row} for row in answer["results"]]


def metric_data(server: ServerProcess, queries: list[dict[str, Any]]) -> dict[str, Any]:
    now = datetime.now(UTC)
    status, answer = call(
        server.url,
        "POST",
        "/api/metrics",
        {
            "MetricDataQueries": queries,
            "StartTime": (now - timedelta(days=2)).isoformat(),
            "EndTime": (now + timedelta(minutes=1)).isoformat(),
            "ScanBy": "TimestampAscending",
        },
    )
    assert status == 200, answer
    return {r["Id"]: r for r in answer["MetricDataResults"]}


def stat(metric: str, statistic: str, period: int = 86400, **dims: str) -> dict[str, Any]:
    return {
        "Metric": {
            "Namespace": "AWS/Bedrock",
            "MetricName": metric,
            "Dimensions": [{"Name": k, "Value": v} for k, v in dims.items()],
        },
        "Period": period,
        "Stat": statistic,
    }


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    root = tmp_path_factory.mktemp("metrics-api")
    with ServerProcess(root / "data", config=CONFIG) as proc:
        body = "\n".join(json.dumps(r) for r in records(120)).encode()
        for _ in range(2):  # the second time every record is a resend
            answer = httpx.post(proc.url + "/api/records", content=body, timeout=30)
            assert answer.status_code == 200, answer.text
        for i in range(4):  # and live calls through the gateway
            answer = httpx.post(
                proc.url + "/v1/chat/completions",
                json={"model": "sim/demo", "messages": [{"role": "user", "content": f"hi {i}"}]},
                headers={"x-llmtrail-metadata": '{"application_name": "gateway-app"}'},
                timeout=30,
            )
            assert answer.status_code == 200, answer.text
        proc.settle()
        yield proc


def _total(result: dict[str, Any]) -> float:
    return sum(result["Values"])


def test_invocations_and_tokens_equal_the_query_api(server: ServerProcess) -> None:
    [counted] = query(server, "stats count(*) as n, sum(input.inputTokenCount) as tokens")
    got = metric_data(
        server,
        [
            {"Id": "n", "MetricStat": stat("Invocations", "Sum")},
            {"Id": "tokens", "MetricStat": stat("InputTokenCount", "Sum")},
        ],
    )
    assert _total(got["n"]) == float(counted["n"]) == 124
    assert _total(got["tokens"]) == float(counted["tokens"])


def test_series_by_application_equal_the_query_api(server: ServerProcess) -> None:
    rows = query(server, "stats count(*) as n by requestMetadata.application_name as app")
    expected = {r["app"]: float(r["n"]) for r in rows}
    queries = [
        {"Id": f"a{i}", "Label": app, "MetricStat": stat("Invocations", "Sum", ApplicationName=app)}
        for i, app in enumerate(expected)
    ]
    got = metric_data(server, queries)
    assert {r["Label"]: _total(r) for r in got.values()} == expected
    status, answer = call(
        server.url,
        "GET",
        "/api/metrics?metric=Invocations&by=ApplicationName&period=86400&since=2d",
    )
    assert status == 200, answer
    assert {r["Label"]: _total(r) for r in answer["MetricDataResults"]} == expected
    assert len({r["Id"] for r in answer["MetricDataResults"]}) == len(expected)
    status, answer = call(
        server.url,
        "GET",
        "/api/metrics?metric=Invocations&metric=InputTokenCount&by=ApplicationName"
        "&period=86400&since=2d",
    )
    assert status == 200, answer
    labels = {r["Label"] for r in answer["MetricDataResults"]}
    assert labels == {f"{m} {app}" for m in ("Invocations", "InputTokenCount") for app in expected}
    assert all(r["Id"] for r in answer["MetricDataResults"])


def test_latency_statistics(server: ServerProcess) -> None:
    [row] = query(
        server,
        "filter ispresent(latencyMs) | stats avg(latencyMs) as a, "
        "max(latencyMs) as mx, count(*) as n, pct(latencyMs, 50) as p50",
    )
    got = metric_data(
        server,
        [
            {"Id": "a", "MetricStat": stat("InvocationLatency", "Average", 172800)},
            {"Id": "mx", "MetricStat": stat("InvocationLatency", "Maximum", 172800)},
            {"Id": "n", "MetricStat": stat("InvocationLatency", "SampleCount", 172800)},
            {"Id": "p", "MetricStat": stat("InvocationLatency", "p50", 172800)},
        ],
    )
    assert _total(got["n"]) == float(row["n"])
    assert max(got["mx"]["Values"]) == float(row["mx"])
    assert got["p"]["Values"], "a percentile was answered"


def test_expression_over_two_series(server: ServerProcess) -> None:
    got = metric_data(
        server,
        [
            {"Id": "i", "MetricStat": stat("InputTokenCount", "Sum"), "ReturnData": False},
            {"Id": "o", "MetricStat": stat("OutputTokenCount", "Sum"), "ReturnData": False},
            {"Id": "both", "Expression": "i + o", "Label": "tokens"},
        ],
    )
    [row] = query(server, "stats sum(input.inputTokenCount) + sum(output.outputTokenCount) as t")
    assert list(got) == ["both"]
    assert _total(got["both"]) == float(row["t"])


def test_an_expression_over_a_search_sees_every_series(server: ServerProcess) -> None:
    search = "SEARCH('{AWS/Bedrock,ModelId} MetricName=\"Invocations\"', 'Sum', 86400)"
    got = metric_data(
        server,
        [
            {"Id": "s", "Expression": search, "ReturnData": False},
            {"Id": "total", "Expression": "SUM(s)"},
        ],
    )
    rows = query(server, "stats count(*) as n by modelId")
    assert len(rows) >= 2  # several models: one series each for the SEARCH
    assert _total(got["total"]) == sum(float(r["n"]) for r in rows)


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/api/metrics?metric=Invocations&period=45", "Period"),
        ("/api/metrics?metric=Invocations&period=10&since=1d", "Period"),
        ("/api/metrics?metric=Nope", "MetricName"),
        ("/api/metrics?metric=Invocations&dimension=Planet=x", "dimension"),
        ("/api/metrics?metric=Invocations&since=forever", "since"),
        ("/api/metrics?metric=Invocations&stat=p99", "Stat"),
    ],
)
def test_bad_parameters_name_the_field(server: ServerProcess, path: str, field: str) -> None:
    status, answer = call(server.url, "GET", path)
    assert status == 400
    assert field in json.dumps(answer)


def test_prometheus_genai_metrics_parse_and_count(server: ServerProcess) -> None:
    text = httpx.get(server.url + "/metrics", timeout=30).text
    families = {f.name: f for f in text_string_to_metric_families(text)}
    usage = families["gen_ai_client_token_usage"]
    input_sum = sum(
        s.value
        for s in usage.samples
        if s.name.endswith("_sum") and s.labels["gen_ai_token_type"] == "input"
    )
    [row] = query(server, "stats sum(input.inputTokenCount) as t")
    assert input_sum == float(row["t"])
    duration = families["gen_ai_client_operation_duration_seconds"]
    counts = [s for s in duration.samples if s.name.endswith("_count")]
    assert sum(s.value for s in counts) == 124
    assert {s.labels["gen_ai_request_model"] for s in counts} >= {"m-a", "m-b"}
    assert "llmtrail_pipeline_queued" in families or any(
        n.startswith("llmtrail_pipeline") for n in families
    )


def test_kill_and_restart_counts_nothing_twice(tmp_path_factory: pytest.TempPathFactory) -> None:
    root = tmp_path_factory.mktemp("metrics-kill")
    body = "\n".join(json.dumps(r) for r in records(60)).encode()
    proc = ServerProcess(root / "data", config=CONFIG).start()
    try:
        assert httpx.post(proc.url + "/api/records", content=body, timeout=30).status_code == 200
        proc.kill()  # acknowledged = spooled; the restart replays what was not stored
    finally:
        proc.stop()
    with ServerProcess(root / "data", config=CONFIG) as again:
        again.settle()
        assert (
            httpx.post(again.url + "/api/records", content=body, timeout=30).status_code == 200
        )  # resent after the restart
        again.settle()
        got = metric_data(again, [{"Id": "n", "MetricStat": stat("Invocations", "Sum")}])
        [row] = query(again, "stats count(*) as n")
        assert _total(got["n"]) == float(row["n"]) == 60
