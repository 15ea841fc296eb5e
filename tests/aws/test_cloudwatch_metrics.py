"""``cloudwatch.get_metric_data`` with the official boto3 client (Smithy RPC v2 CBOR) against
a real server: each answer equals ``POST /api/metrics`` on the same body and the same data;
ScanBy orders, MaxDatapoints pages and a NextToken continues exactly; what llmtrail refuses
is a ValidationError naming the parameter as CloudWatch does, and ``/api/metrics`` refuses
the same body too."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.aws.conftest import AwsServer
from tests.harness import call


def window() -> tuple[datetime, datetime]:
    """Whole minutes around the stored traffic (the shared server's, minutes old at most)."""
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    return now - timedelta(hours=2), now + timedelta(minutes=2)


def stat(metric: str, statistic: str, period: int = 60, **dims: str) -> dict[str, Any]:
    return {
        "Metric": {
            "Namespace": "AWS/Bedrock",
            "MetricName": metric,
            "Dimensions": [{"Name": k, "Value": v} for k, v in dims.items()],
        },
        "Period": period,
        "Stat": statistic,
    }


QUERIES: list[dict[str, Any]] = [
    {"Id": "fast", "MetricStat": stat("Invocations", "Sum", ModelId="sim/fast")},
    {"Id": "tokens", "MetricStat": stat("InputTokenCount", "Sum")},
    {"Id": "outavg", "MetricStat": stat("OutputTokenCount", "Average", 300)},
    {"Id": "lat95", "MetricStat": stat("InvocationLatency", "p95", ModelId="sim/smart")},
    {
        "Id": "latavg",
        "MetricStat": stat("InvocationLatency", "Average", Operation="Converse"),
        "Label": "Converse latency",
    },
    {"Id": "calls", "MetricStat": stat("Invocations", "Sum"), "ReturnData": False},
    {"Id": "perminute", "Expression": "tokens / calls", "Label": "tokens per call"},
    {
        "Id": "bymodel",
        "Expression": "SEARCH('{AWS/Bedrock,ModelId} MetricName=\"Invocations\"', 'Sum', 60)",
    },
]


def aws_results(answer: dict[str, Any]) -> list[dict[str, Any]]:
    """MetricDataResults as /api/metrics writes them (timestamps as datetimes to compare)."""
    return [
        {
            "Id": r["Id"],
            "Label": r["Label"],
            "Timestamps": [t.astimezone(UTC) for t in r["Timestamps"]],
            "Values": r["Values"],
            "StatusCode": r["StatusCode"],
        }
        for r in answer["MetricDataResults"]
    ]


def api_results(server: AwsServer, body: dict[str, Any]) -> list[dict[str, Any]]:
    status, answer = call(server.url, "POST", "/api/metrics", body)
    assert status == 200, answer
    return [
        {
            "Id": r["Id"],
            "Label": r["Label"],
            "Timestamps": [datetime.fromisoformat(t).astimezone(UTC) for t in r["Timestamps"]],
            "Values": r["Values"],
            "StatusCode": r["StatusCode"],
        }
        for r in answer["MetricDataResults"]
    ]


def api_body(queries: list[dict[str, Any]], start: datetime, end: datetime, **more: Any) -> Any:
    return {
        "MetricDataQueries": queries,
        "StartTime": int(start.timestamp()),
        "EndTime": int(end.timestamp()),
        **more,
    }


def count_of(server: AwsServer, text: str, start: datetime, end: datetime) -> float:
    status, answer = call(
        server.url,
        "POST",
        "/api/query",
        {"queryString": text, "startTime": start.isoformat(), "endTime": end.isoformat()},
    )
    assert status == 200, answer
    [row] = answer["results"]
    return float(next(c["value"] for c in row if c["field"] == "n"))


@pytest.fixture(scope="module")
def cloudwatch(aws_server: AwsServer) -> Any:
    client = aws_server.client("cloudwatch")
    yield client
    client.close()


def test_answers_equal_the_metrics_api(aws_server: AwsServer, cloudwatch: Any) -> None:
    start, end = window()
    answer = cloudwatch.get_metric_data(MetricDataQueries=QUERIES, StartTime=start, EndTime=end)
    got = aws_results(answer)
    assert got == api_results(aws_server, api_body(QUERIES, start, end))
    assert "NextToken" not in answer and answer["Messages"] == []
    ids = [r["Id"] for r in got]
    assert "calls" not in ids and {"fast", "lat95", "perminute"} <= set(ids)
    assert all(r["StatusCode"] == "Complete" for r in got)
    # not an empty comparison: the counts are the records' own
    by_id = {r["Id"]: r for r in got}
    fast = count_of(aws_server, 'filter modelId = "sim/fast" | stats count(*) as n', start, end)
    everything = count_of(aws_server, "stats count(*) as n", start, end)
    assert sum(by_id["fast"]["Values"]) == fast > 0
    per_model = [r for r in got if r["Id"].startswith("bymodel")]
    assert len(per_model) >= 3  # sim/fast, sim/smart, sim/tiny
    assert sum(v for r in per_model for v in r["Values"]) == everything > fast
    assert by_id["latavg"]["Label"] == "Converse latency" and by_id["latavg"]["Values"]


def test_scan_by_orders_the_points(aws_server: AwsServer, cloudwatch: Any) -> None:
    start, end = window()
    queries = [{"Id": "m", "MetricStat": stat("Invocations", "Sum", 10)}]
    newest = cloudwatch.get_metric_data(MetricDataQueries=queries, StartTime=start, EndTime=end)
    oldest = cloudwatch.get_metric_data(
        MetricDataQueries=queries, StartTime=start, EndTime=end, ScanBy="TimestampAscending"
    )
    [desc], [asc] = aws_results(newest), aws_results(oldest)
    assert len(asc["Timestamps"]) >= 1
    assert asc["Timestamps"] == sorted(asc["Timestamps"])
    assert desc["Timestamps"] == asc["Timestamps"][::-1] and desc["Values"] == asc["Values"][::-1]
    assert [desc] == api_results(aws_server, api_body(queries, start, end))
    body = api_body(queries, start, end, ScanBy="TimestampAscending")
    assert [asc] == api_results(aws_server, body)


PAGED: list[dict[str, Any]] = [
    {
        "Id": "model",
        "Expression": "SEARCH('{AWS/Bedrock,ModelId} MetricName=\"Invocations\"', 'Sum', 10)",
    },
    {
        "Id": "op",
        "Expression": "SEARCH('{AWS/Bedrock,Operation} MetricName=\"InputTokenCount\"', 'Sum', 10)",
    },
    {"Id": "lat", "MetricStat": stat("InvocationLatency", "Maximum", 10)},
]


@pytest.mark.parametrize("scan", ["TimestampDescending", "TimestampAscending"])
def test_max_datapoints_pages_and_next_token_continue(
    aws_server: AwsServer, cloudwatch: Any, scan: str
) -> None:
    start, end = window()
    whole = aws_results(
        cloudwatch.get_metric_data(
            MetricDataQueries=PAGED, StartTime=start, EndTime=end, ScanBy=scan
        )
    )
    total = sum(len(r["Values"]) for r in whole)
    assert total > 4  # several pages of 2
    assert whole == api_results(aws_server, api_body(PAGED, start, end, ScanBy=scan))
    pages, token = [], None
    while True:
        more: dict[str, Any] = {"NextToken": token} if token else {}
        answer = cloudwatch.get_metric_data(
            MetricDataQueries=PAGED,
            StartTime=start,
            EndTime=end,
            ScanBy=scan,
            MaxDatapoints=2,
            **more,
        )
        pages.append(aws_results(answer))
        token = answer.get("NextToken")
        if token is None:
            break
    assert len(pages) == -(-total // 2)
    for page in pages[:-1]:
        assert sum(len(r["Values"]) for r in page) == 2
        assert any(r["StatusCode"] == "PartialData" for r in page)
    assert all(r["StatusCode"] == "Complete" for r in pages[-1])
    # every page answers every series; together they are the whole answer, in order
    for n, series in enumerate(whole):
        assert all(page[n]["Id"] == series["Id"] for page in pages)
        assert [t for page in pages for t in page[n]["Timestamps"]] == series["Timestamps"]
        assert [v for page in pages for v in page[n]["Values"]] == series["Values"]
    # the newest (or oldest) points come first, across series
    flat = [t for page in pages for r in page for t in r["Timestamps"]]
    assert flat[0] == (max if scan == "TimestampDescending" else min)(flat)


def test_the_boto3_paginator_reads_every_page(aws_server: AwsServer, cloudwatch: Any) -> None:
    start, end = window()
    whole = cloudwatch.get_metric_data(MetricDataQueries=PAGED, StartTime=start, EndTime=end)
    paginator = cloudwatch.get_paginator("get_metric_data")
    pages = list(
        paginator.paginate(
            MetricDataQueries=PAGED,
            StartTime=start,
            EndTime=end,
            PaginationConfig={"PageSize": 3},
        )
    )
    assert len(pages) > 1
    points = sum(len(r["Values"]) for page in pages for r in page["MetricDataResults"])
    assert points == sum(len(r["Values"]) for r in whole["MetricDataResults"])


def test_bad_or_foreign_tokens_are_invalid_next_token(cloudwatch: Any) -> None:
    start, end = window()
    first = cloudwatch.get_metric_data(
        MetricDataQueries=PAGED, StartTime=start, EndTime=end, MaxDatapoints=1
    )
    token = first["NextToken"]
    other = [{"Id": "m", "MetricStat": stat("Invocations", "Sum")}]
    for queries, next_token in ((PAGED, "not-a-token"), (other, token)):
        with pytest.raises(ClientError) as caught:
            cloudwatch.get_metric_data(
                MetricDataQueries=queries, StartTime=start, EndTime=end, NextToken=next_token
            )
        assert caught.value.response["Error"]["Code"] == "InvalidNextToken"
        assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    # the token still works for its own request, with another page size
    again = cloudwatch.get_metric_data(
        MetricDataQueries=PAGED, StartTime=start, EndTime=end, NextToken=token, MaxDatapoints=5
    )
    assert sum(len(r["Values"]) for r in again["MetricDataResults"]) >= 1


def test_units_are_not_converted(aws_server: AwsServer, cloudwatch: Any) -> None:
    start, end = window()
    kept = stat("InvocationLatency", "Average", ModelId="sim/tiny")
    asked = [
        {"Id": "plain", "MetricStat": kept},
        {"Id": "ms", "MetricStat": {**kept, "Unit": "Milliseconds"}},
        {"Id": "seconds", "MetricStat": {**kept, "Unit": "Seconds"}},
    ]
    answer = cloudwatch.get_metric_data(MetricDataQueries=asked, StartTime=start, EndTime=end)
    plain, ms, seconds = answer["MetricDataResults"]
    assert plain["Values"] and ms["Values"] == plain["Values"]
    assert seconds["Values"] == [] and seconds["Timestamps"] == []
    assert seconds["Messages"][0]["Code"] == "UnitMismatch"
    assert "Milliseconds" in seconds["Messages"][0]["Value"]
    [api] = api_results(aws_server, api_body(asked[:1], start, end))
    assert plain["Values"] == api["Values"]


# (queries, the parameter CloudWatch would name, does /api/metrics refuse it too)
REFUSED: list[tuple[list[dict[str, Any]], str, bool]] = [
    (
        [{"Id": "m", "MetricStat": stat("InvocationLatency", "p101")}],
        "MetricDataQueries.member.1.MetricStat.Stat",
        True,
    ),
    (
        [
            {"Id": "a", "MetricStat": stat("Invocations", "Sum")},
            {"Id": "b", "MetricStat": stat("InputTokenCount", "Minimum")},
        ],
        "MetricDataQueries.member.2.MetricStat.Stat",
        True,
    ),
    (
        [{"Id": "m", "MetricStat": stat("Invocations", "Sum", 45)}],
        "MetricDataQueries.member.1.MetricStat.Period",
        True,
    ),
    (
        [{"Id": "m", "MetricStat": stat("Invocations", "Sum", Team="a", Operation="Converse")}],
        "MetricDataQueries.member.1.MetricStat.Metric.Dimensions",
        True,
    ),
    (
        [{"Id": "m", "MetricStat": stat("Invocations", "Sum", InstanceId="i-1")}],
        "MetricDataQueries.member.1.MetricStat.Metric.Dimensions.member.1.Name",
        True,
    ),
    (
        [
            {
                "Id": "m",
                "MetricStat": {
                    **stat("Invocations", "Sum"),
                    "Metric": {"Namespace": "AWS/EC2", "MetricName": "Invocations"},
                },
            }
        ],
        "MetricDataQueries.member.1.MetricStat.Metric.Namespace",
        True,
    ),
    (
        [{"Id": "m", "MetricStat": stat("OutputImageCount", "Sum")}],
        "MetricDataQueries.member.1.MetricStat.Metric.MetricName",
        True,
    ),
    (
        [
            {"Id": "m", "MetricStat": stat("Invocations", "Sum")},
            {"Id": "e", "Expression": "ANOMALY_DETECTION_BAND(m, 2)"},
        ],
        "MetricDataQueries.member.2.Expression",
        True,
    ),
    (
        [
            {"Id": "m", "MetricStat": stat("Invocations", "Sum")},
            {"Id": "e", "Expression": "m9 * 2"},
        ],
        "MetricDataQueries.member.2.Expression",
        True,
    ),
    (
        [{"Id": "m", "MetricStat": stat("Invocations", "Sum"), "Expression": "1"}],
        "MetricDataQueries.member.1",
        True,
    ),
    ([{"Id": "m"}], "MetricDataQueries.member.1", True),
    (
        [
            {"Id": "m", "MetricStat": stat("Invocations", "Sum")},
            {"Id": "m", "MetricStat": stat("InputTokenCount", "Sum")},
        ],
        "MetricDataQueries",
        True,
    ),
    (
        [{"Id": "Upper", "MetricStat": stat("Invocations", "Sum")}],
        "MetricDataQueries.member.1.Id",
        True,
    ),
    (
        [{"Id": "q", "Expression": 'SELECT SUM(Invocations) FROM SCHEMA("AWS/Bedrock", ModelId)'}],
        "MetricDataQueries.member.1.Expression",
        False,
    ),
    (
        [{"Id": "m", "MetricStat": stat("Invocations", "Sum"), "AccountId": "999999999999"}],
        "MetricDataQueries.member.1.AccountId",
        False,
    ),
    (
        [
            {"Id": "m", "MetricStat": {**stat("Invocations", "Sum"), "Unit": "Bytes"}},
            {"Id": "e", "Expression": "m * 2"},
        ],
        "MetricDataQueries",
        False,
    ),
]


@pytest.mark.parametrize(("queries", "parameter", "api_refuses"), REFUSED)
def test_refusals_name_the_parameter(
    aws_server: AwsServer,
    cloudwatch: Any,
    queries: list[dict[str, Any]],
    parameter: str,
    api_refuses: bool,
) -> None:
    start, end = window()
    with pytest.raises(ClientError) as caught:
        cloudwatch.get_metric_data(MetricDataQueries=queries, StartTime=start, EndTime=end)
    error = caught.value.response["Error"]
    assert error["Code"] == "ValidationError"
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert f"The parameter {parameter} " in error["Message"]
    if api_refuses:
        status, answer = call(aws_server.url, "POST", "/api/metrics", api_body(queries, start, end))
        assert status == 400, answer


def test_end_before_start_and_max_datapoints(aws_server: AwsServer, cloudwatch: Any) -> None:
    start, end = window()
    queries = [{"Id": "m", "MetricStat": stat("Invocations", "Sum")}]
    for kwargs, parameter in (
        ({"StartTime": end, "EndTime": start}, "EndTime"),
        ({"StartTime": start, "EndTime": end, "MaxDatapoints": 0}, "MaxDatapoints"),
    ):
        with pytest.raises(ClientError) as caught:
            cloudwatch.get_metric_data(MetricDataQueries=queries, **kwargs)
        assert caught.value.response["Error"]["Code"] == "ValidationError"
        assert f"The parameter {parameter} " in caught.value.response["Error"]["Message"]
    status, _ = call(aws_server.url, "POST", "/api/metrics", api_body(queries, end, start))
    assert status == 400
