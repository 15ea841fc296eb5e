"""Dashboards against a running server: the default body put through the API, each widget's
numbers equal to what ``POST /api/query`` answers over the same records, validation answers
naming the path, a broken widget that leaves the rest drawn, and the CLI's get/put round trip."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from llmtrail.dashboards.default import DEFAULT_NAME, default_dashboard
from tests.harness import ServerProcess, call

NOW = datetime.now(UTC).replace(microsecond=0)
APPS = ("search", "chat", "billing")
CENTERS = ("cc-100", "cc-200")


def _records() -> list[dict[str, Any]]:
    return [
        {
            "schemaType": "ModelInvocationLog",
            "schemaVersion": "1.0",
            "timestamp": (NOW - timedelta(minutes=7 * i)).isoformat().replace("+00:00", "Z"),
            "accountId": "123456789012",
            "region": "us-east-1",
            "requestId": f"dash-{i:03d}",
            "operation": "Converse",
            "modelId": "anthropic.claude-3-haiku-20240307-v1:0",
            "requestMetadata": {"application_name": APPS[i % 3], "cost_center": CENTERS[i % 2]},
            "input": {"inputContentType": "application/json", "inputTokenCount": 100 + i},
            "output": {"outputContentType": "application/json", "outputTokenCount": 20 + 3 * i},
        }
        for i in range(50)
    ]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    root = tmp_path_factory.mktemp("dashboards")
    with ServerProcess(root / "data") as proc:
        body = "\n".join(json.dumps(r) for r in _records())
        import urllib.request

        request = urllib.request.Request(
            proc.url + "/api/records",
            data=body.encode(),
            method="POST",
            headers={"content-type": "application/x-ndjson"},
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            assert response.status == 200
        proc.settle()
        yield proc


def ok(server: ServerProcess, method: str, path: str, body: Any = None) -> Any:
    status, answer = call(server.url, method, path, body)
    assert status == 200, answer
    return answer


def query(server: ServerProcess, text: str) -> list[dict[str, str]]:
    answer = ok(server, "POST", "/api/query", {"queryString": text, "since": "1d"})
    return [{c["field"]: c["value"] for c in row} for row in answer["results"]]


def test_the_default_dashboard_put_through_the_api_shows_the_query_apis_numbers(
    server: ServerProcess,
) -> None:
    listed = ok(server, "GET", "/api/dashboards")["DashboardEntries"]
    assert DEFAULT_NAME in [d["DashboardName"] for d in listed]
    body = default_dashboard()
    body["start"] = "-P1D"
    answer = ok(server, "PUT", "/api/dashboards/seed", body)
    assert answer["DashboardValidationMessages"] == []
    assert ok(server, "GET", "/api/dashboards/seed") == body
    widgets = ok(server, "GET", "/api/dashboards/seed/view")["widgets"]
    assert [w["kind"] for w in widgets] == ["value", "chart", "chart", "chart", "table"]
    assert [(w["x"], w["y"], w["width"], w["height"]) for w in widgets] == [
        (w["x"], w["y"], w["width"], w["height"]) for w in body["widgets"]
    ]
    total, pie, trend, bar, table = widgets

    (row,) = query(server, "stats sum(input.inputTokenCount + output.outputTokenCount) as t")
    assert total["values"] == [["Total tokens", f"{int(row['t']):,}"]]

    by_app = query(server, body["widgets"][1]["properties"]["query"])
    (trace,) = pie["figure"]["data"]
    assert trace["type"] == "pie"
    assert dict(zip(trace["labels"], trace["values"], strict=True)) == {
        r["requestMetadata.application_name"]: float(r["tokens"]) for r in by_app
    }

    hourly = query(
        server,
        "stats sum(input.inputTokenCount) as i, sum(output.outputTokenCount) as o"
        " by bin(1h) as hour",
    )
    lines = {t["name"]: t for t in trend["figure"]["data"]}
    assert set(lines) == {"Input tokens", "OutputTokenCount"}
    assert sum(lines["Input tokens"]["y"]) == sum(int(r["i"]) for r in hourly)
    assert sum(lines["OutputTokenCount"]["y"]) == sum(int(r["o"]) for r in hourly)
    assert sorted(lines["Input tokens"]["y"]) == sorted(float(r["i"]) for r in hourly)

    by_center = query(server, body["widgets"][3]["properties"]["query"])
    (bars,) = bar["figure"]["data"]
    assert dict(zip(bars["x"], bars["y"], strict=True)) == {
        r["requestMetadata.cost_center"]: float(r["cost"]) for r in by_center
    }
    assert set(bars["x"]) == set(CENTERS)

    latest = query(server, body["widgets"][4]["properties"]["query"])
    assert table["columns"] == list(latest[0])
    assert table["rows"] == [list(r.values()) for r in latest]


def test_the_default_dashboard_is_there_until_one_is_stored_under_its_name(
    server: ServerProcess,
) -> None:
    assert ok(server, "GET", f"/api/dashboards/{DEFAULT_NAME}") == default_dashboard()
    status, _ = call(server.url, "DELETE", f"/api/dashboards/{DEFAULT_NAME}")
    assert status == 404


def test_a_broken_widget_is_an_error_view_and_the_rest_render(server: ServerProcess) -> None:
    body = {
        "widgets": [
            {"type": "text", "properties": {"markdown": "# Team\n<script>alert(1)</script>"}},
            {
                "type": "log",
                "properties": {
                    "query": "SOURCE '/aws/lambda/x' | stats count(*)",
                    "region": "us-east-1",
                },
            },
            {
                "type": "metric",
                "properties": {"metrics": [["AWS/EC2", "CPUUtilization", "InstanceId", "i-1"]]},
            },
            {"type": "custom", "properties": {"endpoint": "arn:aws:lambda:x"}},
            {
                "type": "alarm",
                "properties": {"alarms": ["arn:aws:cloudwatch:us-east-1:1:alarm:none"]},
            },
            {
                "type": "log",
                "properties": {
                    "query": "SOURCE '/aws/bedrock/modelinvocations'"
                    " | stats count(*) as n by requestMetadata.application_name",
                    "view": "pie",
                },
            },
        ]
    }
    answer = ok(server, "PUT", "/api/dashboards/mixed", body)
    paths = [m["DataPath"] for m in answer["DashboardValidationMessages"]]
    assert paths == ["widgets[2].properties.metrics[0]", "widgets[3].type"]
    widgets = ok(server, "GET", "/api/dashboards/mixed/view?since=1d")["widgets"]
    text, unknown, ec2, custom, alarm, pie = widgets
    assert (
        text["kind"] == "text"
        and "<script>" not in text["html"]
        and "<h1>Team</h1>" in text["html"]
    )
    assert unknown["kind"] == "error" and "unknown log group '/aws/lambda/x'" in unknown["message"]
    assert unknown["message"].startswith("widget 1 (log)")
    assert ec2["kind"] == "error" and "AWS/EC2" in ec2["message"]
    assert (
        custom["kind"] == "placeholder" and "custom widgets are not supported" in custom["message"]
    )
    assert alarm["kind"] in ("alarm", "placeholder")
    assert pie["kind"] == "chart" and sum(pie["figure"]["data"][0]["values"]) == 50
    # auto placement: six 6x6 widgets without x/y fill four columns, then a second row
    assert [(w["x"], w["y"]) for w in widgets] == [(0, 0), (6, 0), (12, 0), (18, 0), (0, 6), (6, 6)]


def test_metric_rows_expressions_and_search(server: ServerProcess) -> None:
    body = {
        "widgets": [
            {
                "type": "metric",
                "properties": {
                    "view": "table",
                    "stat": "Sum",
                    "setPeriodToTimeRange": True,
                    "metrics": [
                        [
                            "AWS/Bedrock",
                            "InputTokenCount",
                            "ApplicationName",
                            "search",
                            {"id": "m1"},
                        ],
                        ["...", "chat", {"id": "m2"}],
                        [{"expression": "m1 + m2", "label": "search+chat", "id": "e1"}],
                        [
                            {
                                "expression": "SEARCH('{AWS/Bedrock,ApplicationName}"
                                " MetricName=\"InputTokenCount\"', 'Sum', 3600)",
                                "id": "e2",
                                "visible": False,
                            }
                        ],
                        [{"expression": "SUM(e2)", "label": "all apps", "id": "e3"}],
                    ],
                },
            }
        ]
    }
    ok(server, "PUT", "/api/dashboards/apps", body)
    (widget,) = ok(server, "GET", "/api/dashboards/apps/view?since=1d")["widgets"]
    assert widget["kind"] == "table", widget["message"]
    got = {label: value for label, value in widget["rows"]}
    rows = query(
        server, "stats sum(input.inputTokenCount) as t by requestMetadata.application_name"
    )
    by_app = {r["requestMetadata.application_name"]: int(r["t"]) for r in rows}
    assert got["InputTokenCount search"] == f"{by_app['search']:,}"
    assert got["InputTokenCount chat"] == f"{by_app['chat']:,}"
    assert got["search+chat"] == f"{by_app['search'] + by_app['chat']:,}"
    assert got["all apps"] == f"{sum(by_app.values()):,}"


def test_bad_bodies_are_problems_naming_the_path(server: ServerProcess) -> None:
    bad = {
        "widgets": [
            {
                "type": "metric",
                "properties": {"metrics": [["AWS/Bedrock", "Invocations"], ["..."], [1]]},
            }
        ]
    }
    status, answer = call(server.url, "PUT", "/api/dashboards/bad", bad)
    assert status == 400
    assert answer["field"] == "widgets[0].properties.metrics[2][0]"
    assert answer["DashboardValidationMessages"][0]["DataPath"] == answer["field"]
    status, answer = call(server.url, "PUT", "/api/dashboards/bad%20name", {"widgets": []})
    assert status == 400 and answer["field"] == "DashboardName"
    status, answer = call(server.url, "PUT", "/api/dashboards/x", {"DashboardBody": "{not json"})
    assert status == 400 and answer["field"] == "DashboardBody"
    status, _ = call(server.url, "GET", "/api/dashboards/never-stored")
    assert status == 404
    # a PutDashboard request: DashboardBody as a string
    ok(
        server,
        "PUT",
        "/api/dashboards/aws-shaped",
        {"DashboardName": "aws-shaped", "DashboardBody": json.dumps({"widgets": []})},
    )
    assert ok(server, "GET", "/api/dashboards/aws-shaped") == {"widgets": []}
    assert ok(server, "DELETE", "/api/dashboards/aws-shaped") == {"deleted": "aws-shaped"}
    status, _ = call(server.url, "GET", "/api/dashboards/aws-shaped")
    assert status == 404


def test_cli_get_and_put_round_trip(server: ServerProcess, tmp_path: Path) -> None:
    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "llmtrail", "dashboards", *args, "--url", server.url],
            capture_output=True,
            text=True,
            timeout=120,
        )

    exported = tmp_path / "overview.json"
    done = cli("get", DEFAULT_NAME, "--output", str(exported))
    assert done.returncode == 0, done.stderr
    body = json.loads(exported.read_text())
    assert body == default_dashboard()
    body["widgets"][0]["properties"]["title"] = "All tokens"
    exported.write_text(json.dumps(body))
    done = cli("put", "round-trip", str(exported))
    assert done.returncode == 0, done.stderr
    again = cli("get", "round-trip")
    assert json.loads(again.stdout) == body
    listed = json.loads(cli("list", "--format", "json").stdout)
    assert "round-trip" in [d["DashboardName"] for d in listed]
    exported.write_text(json.dumps({"widgets": [{"type": "text", "properties": {}}]}))
    failed = cli("put", "round-trip", str(exported))
    assert failed.returncode == 1 and "widgets[0].properties.markdown" in failed.stderr
    assert cli("delete", "round-trip").returncode == 0
    assert cli("get", "round-trip").returncode == 1
