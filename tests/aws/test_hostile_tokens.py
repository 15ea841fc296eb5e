"""Hostile pagination tokens, refused changes, boto3's view of the refusals and fifty
hostile and good requests at once, against the shared open server (`aws_server`; the bodies,
targets and paths are in tests/aws/test_hostile_input.py).

Tokens are signed with the server secret: a token written by hand (as anyone could before:
base64 JSON), altered, truncated or made for another operation is refused with the service's
own error; one the server itself signed whose state is out of range (made here with the
secret from the server's data directory) is refused too, not a 500."""

from __future__ import annotations

import concurrent.futures
import urllib.parse
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from tests.aws.conftest import REGION, AwsServer
from tests.aws.hostile import (
    CE,
    COST,
    GROUP,
    LOGS,
    SERIALIZATION,
    STREAM,
    Reply,
    Wire,
    metric_data,
    metric_query,
    nested_not,
    now,
    signed_token,
    unsigned_token,
)


@pytest.fixture(scope="module")
def wire(aws_server: AwsServer) -> Wire:
    return Wire(aws_server.url)


def _definitions(wire: Wire, prefix: str, **params: Any) -> Reply:
    body = {"queryDefinitionNamePrefix": prefix, **params}
    return wire.json(LOGS + "DescribeQueryDefinitions", body)


def test_forged_altered_and_foreign_tokens_are_refused(wire: Wire, unique: str) -> None:
    for name in (f"{unique}-a", f"{unique}-b"):
        body = {"name": name, "queryString": "fields @message", "logGroupNames": [GROUP]}
        assert wire.json(LOGS + "PutQueryDefinition", body).status == 200
    real = _definitions(wire, unique, maxResults=1).data["nextToken"]
    flipped = real[:-2] + ("A" if real[-2] != "A" else "B") + real[-1]
    forged = unsigned_token("DescribeQueryDefinitions", "")  # was: accepted, read from the start
    for token in (flipped, forged, real + "!", "!!!", "a.b.c", real.split(".")[0], "é"):
        reply = _definitions(wire, unique, nextToken=token)
        assert (reply.status, reply.error) == (400, "InvalidParameterException"), (token, reply)
    # a token of another operation, in each service's words
    for reply, code in (
        (wire.json(LOGS + "DescribeLogGroups", {"nextToken": real}), "InvalidParameterException"),
        (
            wire.json(CE + "GetCostAndUsage", {**COST, "NextPageToken": real}),
            "InvalidNextTokenException",
        ),
        (wire.cbor("GetMetricData", metric_data(NextToken=real)), "InvalidNextToken"),
        (wire.cbor("DescribeAlarms", {"NextToken": real}), "InvalidNextToken"),
        (wire.cbor("ListMetrics", {"NextToken": forged}), "InvalidParameterValueException"),
        (
            wire.rest("GET", "/inference-profiles?nextToken=" + urllib.parse.quote(real)),
            "ValidationException",
        ),
    ):
        assert (reply.status, reply.error) == (400, code), reply
    second = _definitions(wire, unique, nextToken=real)
    assert [d["name"] for d in second.data["queryDefinitions"]] == [f"{unique}-b"]


@pytest.mark.parametrize(
    "position", [[2**63 + 5, "r"], [2**62, "r"], [-(2**62), "r"], ["0", "r"], [0], "x"]
)
def test_a_signed_token_with_an_impossible_position_is_refused(
    wire: Wire, aws_server: AwsServer, position: Any
) -> None:
    token = signed_token(aws_server.proc.data_dir, "GetLogEvents", {"f": True, "a": position})
    body = {"logGroupName": GROUP, "logStreamName": STREAM, "nextToken": "f/" + token}
    reply = wire.json(LOGS + "GetLogEvents", body)  # was: 500 (date value out of range)
    assert (reply.status, reply.error) == (400, "InvalidParameterException"), reply
    wire.alive()


def test_a_signed_token_from_the_start_reads_the_stream(wire: Wire, aws_server: AwsServer) -> None:
    """The secret read from the data directory is the one the server signs with: a token
    made with it (no position: the head) is accepted and reads the first events."""
    token = signed_token(aws_server.proc.data_dir, "GetLogEvents", {"f": True, "a": None})
    head = {"logGroupName": GROUP, "logStreamName": STREAM, "startFromHead": True, "limit": 2}
    reply = wire.json(LOGS + "GetLogEvents", {**head, "nextToken": "f/" + token})
    plain = wire.json(LOGS + "GetLogEvents", head)
    assert reply.status == plain.status == 200, reply
    assert reply.data["events"] == plain.data["events"] and len(plain.data["events"]) == 2


# -- nothing refused is stored ---------------------------------------------------------------
def test_refused_changes_store_nothing(wire: Wire, unique: str) -> None:
    alarm = {
        "AlarmName": unique,
        "MetricName": "Invocations",
        "Namespace": "AWS/Bedrock",
        "Statistic": "Sum",
        "Period": 60,
        "EvaluationPeriods": 1,
        "Threshold": float("nan"),
        "ComparisonOperator": "GreaterThanThreshold",
    }
    refusals = [
        wire.json(LOGS + "PutQueryDefinition", {"name": unique, "queryString": "fields | | ("}),
        wire.cbor("PutDashboard", {"DashboardName": unique, "DashboardBody": "[" * 100_000}),
        wire.cbor("PutDashboard", {"DashboardName": unique, "DashboardBody": '{"widgets":[NaN]}'}),
        wire.cbor("PutMetricAlarm", alarm),
        wire.cbor("PutMetricAlarm", {**alarm, "Threshold": 1.0, "Period": 2**40}),
    ]
    assert [r.status for r in refusals] == [400] * len(refusals), refusals
    assert _definitions(wire, unique).data["queryDefinitions"] == []
    dashboards = wire.cbor("ListDashboards", {"DashboardNamePrefix": unique})
    assert dashboards.data["DashboardEntries"] == []
    alarms = wire.cbor("DescribeAlarms", {"AlarmNamePrefix": unique})
    assert alarms.data.get("MetricAlarms", []) == []


# -- through boto3 -----------------------------------------------------------------------------
def loose_client(url: str, service: str) -> Any:
    """A boto3 client that sends what it is given (its own parameter checks off)."""
    return boto3.client(
        service,
        endpoint_url=url,
        region_name=REGION,
        aws_access_key_id="AKIAEXAMPLEOPENMODE",
        aws_secret_access_key="not-checked-in-open-mode",
        config=Config(parameter_validation=False, retries={"max_attempts": 1}),
    )


def test_boto3_sees_the_codes(aws_server: AwsServer) -> None:
    logs = loose_client(aws_server.url, "logs")
    with pytest.raises(ClientError) as caught:
        logs.filter_log_events(logGroupName=GROUP, limit=2**40)
    assert caught.value.response["Error"]["Code"] == SERIALIZATION
    ce = loose_client(aws_server.url, "ce")
    with pytest.raises(ClientError) as deep:
        ce.get_cost_and_usage(**COST, Filter=nested_not(100))
    assert deep.value.response["Error"]["Code"] == "ValidationException"
    assert "nest at most 32 levels" in deep.value.response["Error"]["Message"]
    cloudwatch = loose_client(aws_server.url, "cloudwatch")
    with pytest.raises(ClientError) as big:
        cloudwatch.get_metric_data(
            MetricDataQueries=[metric_query(period=2**40)],
            StartTime=datetime.now(UTC) - timedelta(hours=1),
            EndTime=datetime.now(UTC),
        )
    assert big.value.response["Error"]["Code"] == SERIALIZATION
    assert logs.describe_log_groups()["logGroups"]
    assert cloudwatch.list_dashboards()["DashboardEntries"]
    for client in (logs, ce, cloudwatch):
        client.close()


# -- all at once -------------------------------------------------------------------------------
def test_fifty_at_once_hostile_and_good(wire: Wire) -> None:
    start = now()
    query = {
        "logGroupName": GROUP,
        "startTime": start - 3600,
        "endTime": start + 60,
        "queryString": "stats count(*) by bin(1m)",
    }
    many = [metric_query(i) for i in range(50)]
    jobs: list[tuple[Callable[[], Reply], int]] = [
        (lambda: wire.json(LOGS + "FilterLogEvents", {"logGroupName": GROUP, "limit": 5}), 200),
        (lambda: wire.cbor("GetMetricData", b"\x81" * 100_000), 400),
        (lambda: wire.cbor("GetMetricData", metric_data(MetricDataQueries=many)), 200),
        (lambda: wire.json(CE + "GetCostAndUsage", {**COST, "Filter": nested_not(500)}), 400),
        (lambda: wire.json(CE + "GetCostAndUsage", {**COST, "Granularity": "DAILY"}), 200),
        (lambda: wire.json(LOGS + "StartQuery", query), 200),
        (lambda: wire.rest("GET", "/inference-profiles//x"), 404),
        (lambda: wire.json("Foo.Bar", {}), 400),
        (lambda: wire.cbor("ListMetrics", {"NextToken": unsigned_token("ListMetrics", {})}), 400),
        (lambda: wire.rest("GET", "/inference-profiles?maxResults=3"), 200),
    ]
    with concurrent.futures.ThreadPoolExecutor(50) as pool:
        sent = [(pool.submit(job), expected) for job, expected in jobs * 10]
        got = [(future.result().status, expected) for future, expected in sent]
    assert [status for status, _ in got] == [expected for _, expected in got]
    wire.alive()
