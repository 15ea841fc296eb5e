"""``cloudwatch.get_metric_statistics`` with the official boto3 client against a real server:
every statistic of every data point equals ``POST /api/metrics`` asked for that statistic on
the same data; CloudWatch's own rules answer with its codes (InvalidParameterCombination,
InvalidParameterValue)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.aws.conftest import AwsServer
from tests.harness import call


def window() -> tuple[datetime, datetime]:
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    return now - timedelta(hours=2), now + timedelta(minutes=2)


def api_series(
    server: AwsServer,
    metric: str,
    stats: list[str],
    period: int,
    dims: list[dict[str, str]],
    start: datetime,
    end: datetime,
) -> dict[str, dict[datetime, float]]:
    """/api/metrics' answer per statistic: {stat: {timestamp: value}}."""
    queries = [
        {
            "Id": f"q{i}",
            "MetricStat": {
                "Metric": {"Namespace": "AWS/Bedrock", "MetricName": metric, "Dimensions": dims},
                "Period": period,
                "Stat": s,
            },
        }
        for i, s in enumerate(stats)
    ]
    body = {
        "MetricDataQueries": queries,
        "StartTime": int(start.timestamp()),
        "EndTime": int(end.timestamp()),
    }
    status, answer = call(server.url, "POST", "/api/metrics", body)
    assert status == 200, answer
    return {
        s: {
            datetime.fromisoformat(t).astimezone(UTC): v
            for t, v in zip(r["Timestamps"], r["Values"], strict=True)
        }
        for s, r in zip(stats, answer["MetricDataResults"], strict=True)
    }


@pytest.fixture(scope="module")
def cloudwatch(aws_server: AwsServer) -> Iterator[Any]:
    client = aws_server.client("cloudwatch")
    yield client
    client.close()


@pytest.mark.parametrize(
    ("metric", "statistics", "extended", "dims"),
    [
        ("InvocationLatency", ["SampleCount", "Average", "Sum", "Minimum", "Maximum"], [], {}),
        ("InvocationLatency", [], ["p50", "p95", "p99.5", "p100.0"], {"ModelId": "sim/smart"}),
        ("InputTokenCount", ["Sum", "SampleCount", "Average"], [], {"ModelId": "sim/fast"}),
        ("Invocations", ["Sum"], [], {"Operation": "Converse"}),
    ],
)
def test_datapoints_equal_the_metrics_api(
    aws_server: AwsServer,
    cloudwatch: Any,
    metric: str,
    statistics: list[str],
    extended: list[str],
    dims: dict[str, str],
) -> None:
    start, end = window()
    dimensions = [{"Name": k, "Value": v} for k, v in dims.items()]
    asked: dict[str, Any] = {"Statistics": statistics} if statistics else {}
    if extended:
        asked["ExtendedStatistics"] = extended
    answer = cloudwatch.get_metric_statistics(
        Namespace="AWS/Bedrock",
        MetricName=metric,
        Dimensions=dimensions,
        StartTime=start,
        EndTime=end,
        Period=60,
        **asked,
    )
    assert answer["Label"] == metric
    points = answer["Datapoints"]
    assert points, "the shared server's traffic has data for this metric"
    unit = "Milliseconds" if metric == "InvocationLatency" else "Count"
    api_stats = statistics + [("p100" if p == "p100.0" else p) for p in extended]
    api = api_series(aws_server, metric, api_stats, 60, dimensions, start, end)
    for stat in api_stats:
        assert len(api[stat]) == len(points)
    for point in points:
        moment = point["Timestamp"].astimezone(UTC)
        assert point["Unit"] == unit
        for stat in statistics:
            assert point[stat] == api[stat][moment]
        for stat in extended:
            assert point["ExtendedStatistics"][stat] == api[stat.replace(".0", "")][moment]


def test_units_other_than_the_metrics_answer_no_datapoints(cloudwatch: Any) -> None:
    start, end = window()
    common = {
        "Namespace": "AWS/Bedrock",
        "MetricName": "Invocations",
        "StartTime": start,
        "EndTime": end,
        "Period": 3600,
        "Statistics": ["Sum"],
    }
    counted = cloudwatch.get_metric_statistics(Unit="Count", **common)["Datapoints"]
    plain = cloudwatch.get_metric_statistics(**common)["Datapoints"]
    assert counted == plain and sum(p["Sum"] for p in plain) > 0
    assert cloudwatch.get_metric_statistics(Unit="Seconds", **common)["Datapoints"] == []


def _refused(cloudwatch: Any, **kwargs: Any) -> dict[str, Any]:
    start, end = window()
    request = {
        "Namespace": "AWS/Bedrock",
        "MetricName": "InputTokenCount",
        "StartTime": start,
        "EndTime": end,
        "Period": 300,
        **kwargs,
    }
    with pytest.raises(ClientError) as caught:
        cloudwatch.get_metric_statistics(**{k: v for k, v in request.items() if v is not None})
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    return caught.value.response["Error"]


def test_statistics_or_extended_statistics_not_both(cloudwatch: Any) -> None:
    for asked in ({}, {"Statistics": ["Sum"], "ExtendedStatistics": ["p90"]}):
        error = _refused(cloudwatch, **asked)
        assert error["Code"] == "InvalidParameterCombination", error
        assert "Statistics or ExtendedStatistics" in error["Message"]


def test_more_than_1440_datapoints_is_refused(cloudwatch: Any) -> None:
    start, _ = window()
    error = _refused(cloudwatch, Statistics=["Sum"], Period=60, EndTime=start + timedelta(days=2))
    assert error["Code"] == "InvalidParameterCombination"
    assert "2880 datapoints" in error["Message"] and "1440" in error["Message"]


def test_invalid_parameter_values(aws_server: AwsServer, cloudwatch: Any) -> None:
    start, end = window()
    error = _refused(cloudwatch, Statistics=["Sum"], StartTime=end, EndTime=start)
    assert error["Code"] == "InvalidParameterValue"
    assert "StartTime must be less than the parameter EndTime" in error["Message"]
    error = _refused(cloudwatch, ExtendedStatistics=["p50", "p101"])
    assert (
        error["Code"] == "InvalidParameterValue"
        and "ExtendedStatistics.member.2" in (error["Message"])
    )
    # what the metrics library refuses, named as GetMetricStatistics' own parameter
    for asked, parameter in (
        ({"Statistics": ["Sum", "Minimum"]}, "Statistics.member.2"),
        ({"ExtendedStatistics": ["p90"]}, "ExtendedStatistics.member.1"),
        ({"Statistics": ["Sum"], "Period": 90}, "Period"),
        ({"Statistics": ["Sum"], "Dimensions": [{"Name": "Pod", "Value": "x"}]}, "Dimensions"),
        ({"Statistics": ["Sum"], "Namespace": "AWS/EC2"}, "Namespace"),
    ):
        error = _refused(cloudwatch, **asked)
        assert error["Code"] == "InvalidParameterValue", (asked, error)
        assert f"The parameter {parameter}" in error["Message"], (asked, error)
    # /api/metrics refuses the same statistic
    body = {
        "MetricDataQueries": [
            {
                "Id": "m",
                "MetricStat": {
                    "Metric": {"Namespace": "AWS/Bedrock", "MetricName": "InputTokenCount"},
                    "Period": 300,
                    "Stat": "Minimum",
                },
            }
        ],
        "StartTime": int(start.timestamp()),
        "EndTime": int(end.timestamp()),
    }
    status, _ = call(aws_server.url, "POST", "/api/metrics", body)
    assert status == 400
