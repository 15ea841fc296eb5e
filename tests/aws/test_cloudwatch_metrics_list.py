"""``cloudwatch.list_metrics`` with the official boto3 client against a real server: the
metrics listed are those ``GET /api/metrics/list`` lists on the same data, filtered as
CloudWatch filters (a dimension filter matches every combination holding the dimension),
paged 500 at a time with a NextToken that continues exactly."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.aws.conftest import ACCOUNT, AwsServer
from tests.harness import call

Metric = tuple[str, tuple[tuple[str, str], ...]]


def listed(metrics: list[dict[str, Any]]) -> list[Metric]:
    return [
        (m["MetricName"], tuple((d["Name"], d["Value"]) for d in m["Dimensions"])) for m in metrics
    ]


def api_listed(server: AwsServer, since: str = "14d", **params: str) -> set[Metric]:
    """/api/metrics/list's metrics that CloudWatch can name (no empty dimension value)."""
    query = "&".join(f"{k}={v}" for k, v in {"since": since, **params}.items())
    status, answer = call(server.url, "GET", f"/api/metrics/list?{query}")
    assert status == 200, answer
    return {m for m in listed(answer["Metrics"]) if all(v for _, v in m[1])}


def every_page(cloudwatch: Any, **kwargs: Any) -> tuple[list[Metric], int]:
    pages = list(cloudwatch.get_paginator("list_metrics").paginate(**kwargs))
    found = [m for page in pages for m in listed(page["Metrics"])]
    return found, len(pages)


@pytest.fixture(scope="module")
def cloudwatch(aws_server: AwsServer) -> Iterator[Any]:
    client = aws_server.client("cloudwatch")
    yield client
    client.close()


def test_every_metric_equals_the_metrics_api(aws_server: AwsServer, cloudwatch: Any) -> None:
    found, pages = every_page(cloudwatch)
    expected = api_listed(aws_server)
    assert len(found) == len(set(found))  # pages never repeat a metric
    assert set(found) == expected
    assert pages == -(-len(expected) // 500)
    assert ("Invocations", ()) in expected and any(d for _, d in expected)
    scoped, _ = every_page(cloudwatch, Namespace="AWS/Bedrock", RecentlyActive="PT3H")
    assert set(scoped) == api_listed(aws_server, since="3h")


def test_dimension_filters_match_like_cloudwatch(aws_server: AwsServer, cloudwatch: Any) -> None:
    everything = api_listed(aws_server)
    found, _ = every_page(cloudwatch, MetricName="Invocations", Dimensions=[{"Name": "ModelId"}])
    expected = {m for m in everything if m[0] == "Invocations" and "ModelId" in dict(m[1])}
    assert set(found) == expected
    assert any(len(dims) > 1 for _, dims in expected)  # ModelId with other dimensions too
    assert {dims for _, dims in expected} >= {
        dims for _, dims in api_listed(aws_server, metric="Invocations", dimensions="ModelId")
    }
    model = next(dict(dims)["ModelId"] for _, dims in expected)
    found, _ = every_page(
        cloudwatch,
        Dimensions=[{"Name": "ModelId", "Value": model}, {"Name": "Operation"}],
    )
    assert found and set(found) == {
        m for m in everything if dict(m[1]).get("ModelId") == model and "Operation" in dict(m[1])
    }


def test_filters_that_match_nothing_answer_nothing(cloudwatch: Any) -> None:
    for kwargs in (
        {"Namespace": "AWS/EC2"},
        {"MetricName": "CPUUtilization"},
        {"Dimensions": [{"Name": "InstanceId"}]},
        {"Dimensions": [{"Name": "ModelId", "Value": "no-such-model"}]},
        {"IncludeLinkedAccounts": True, "OwningAccount": "999999999999"},
    ):
        answer = cloudwatch.list_metrics(**kwargs)
        assert answer["Metrics"] == [] and "NextToken" not in answer, kwargs


def test_linked_accounts_name_this_account(cloudwatch: Any) -> None:
    answer = cloudwatch.list_metrics(MetricName="Invocations", IncludeLinkedAccounts=True)
    assert answer["Metrics"]
    assert answer["OwningAccounts"] == [ACCOUNT] * len(answer["Metrics"])


def test_a_bad_next_token_is_an_invalid_parameter_value(cloudwatch: Any) -> None:
    with pytest.raises(ClientError) as caught:
        cloudwatch.list_metrics(NextToken="garbage")
    assert caught.value.response["Error"]["Code"] == "InvalidParameterValue"
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
