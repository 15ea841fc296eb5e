"""``logs.describe_log_groups`` and ``logs.describe_log_streams`` with the official boto3 client
against a real server: the workspace's one log group, named as ``/api/logging-configuration``
says, with one stream, ``aws/bedrock/modelinvocations``, whose figures (first and last event,
first and last ingestion, stored bytes) equal what ``POST /api/query`` answers for the same
records; the filters, pages and refusals AWS documents."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.aws.conftest import ACCOUNT, REGION, AwsServer
from tests.aws.test_logs_support import (
    GROUP,
    STREAM,
    api_query,
    code,
    logs_client,
    ms_of_text,
    unchecked_logs,
)
from tests.harness import call

ARN = f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{GROUP}"
FIGURES = (
    "stats min(@timestamp) as first, max(@timestamp) as last,"
    " min(@ingestionTime) as created, max(@ingestionTime) as ingested"
)


@pytest.fixture
def logs(aws_server: AwsServer) -> Iterator[Any]:
    yield from logs_client(aws_server)


@pytest.fixture
def unchecked(aws_server: AwsServer) -> Iterator[Any]:
    yield from unchecked_logs(aws_server)


def figures(url: str) -> tuple[dict[str, int], float]:
    """The stream's figures as llmtrail's query API answers them (ms), and bytes scanned."""
    answer = api_query(url, FIGURES)
    row = {f["field"]: ms_of_text(f["value"]) for f in answer["results"][0]}
    return row, answer["statistics"]["bytesScanned"]


def test_the_workspace_has_its_invocation_log_group(aws_server: AwsServer, logs: Any) -> None:
    status, config = call(aws_server.url, "GET", "/api/logging-configuration")
    assert status == 200, config
    status, retention = call(aws_server.url, "GET", "/api/retention")
    assert status == 200, retention
    groups = logs.describe_log_groups()["logGroups"]
    row, stored = figures(aws_server.url)
    assert groups == [
        {
            "logGroupName": config["llmtrail"]["logGroupName"],
            "creationTime": row["created"],
            "arn": ARN + ":*",
            "logGroupArn": ARN,
            "storedBytes": stored,
            "metricFilterCount": 0,
            "logGroupClass": "STANDARD",
            "deletionProtectionEnabled": False,
            **(
                {"retentionInDays": retention["recordsDays"]}
                if retention.get("recordsDays")
                else {}
            ),
        }
    ]
    assert groups[0]["logGroupName"] == GROUP  # the default configuration's name


@pytest.mark.parametrize(
    ("params", "found"),
    [
        ({"logGroupNamePrefix": "/aws/bedrock"}, True),
        ({"logGroupNamePrefix": "/aws/lambda"}, False),
        ({"logGroupNamePattern": "bedrock/model"}, True),
        ({"logGroupNamePattern": "Bedrock"}, False),  # case-sensitive, as AWS's
        ({"logGroupIdentifiers": [ARN]}, True),
        ({"logGroupIdentifiers": [GROUP, "/other"]}, True),
        ({"logGroupIdentifiers": ["/other"]}, False),
        ({"logGroupClass": "STANDARD"}, True),
        ({"logGroupClass": "INFREQUENT_ACCESS"}, False),
        ({"limit": 1}, True),
    ],
)
def test_filters_of_describe_log_groups(logs: Any, params: dict[str, Any], found: bool) -> None:
    groups = logs.describe_log_groups(**params)["logGroups"]
    assert [g["logGroupName"] for g in groups] == ([GROUP] if found else [])
    if found and "logGroupNamePattern" in params:  # AWS answers a pattern with three members
        assert set(groups[0]) == {"logGroupName", "creationTime", "arn"}


def test_the_paginator_lists_the_group_once(logs: Any) -> None:
    pages = list(logs.get_paginator("describe_log_groups").paginate())
    assert len(pages) == 1 and "nextToken" not in pages[0]
    assert [g["logGroupName"] for g in pages[0]["logGroups"]] == [GROUP]


def test_the_group_has_one_stream_with_the_query_apis_figures(
    aws_server: AwsServer, logs: Any
) -> None:
    streams = logs.describe_log_streams(logGroupName=GROUP)["logStreams"]
    row, stored = figures(aws_server.url)
    assert streams == [
        {
            "logStreamName": STREAM,
            "creationTime": row["created"],
            "firstEventTimestamp": row["first"],
            "lastEventTimestamp": row["last"],
            "lastIngestionTime": row["ingested"],
            "arn": f"{ARN}:log-stream:{STREAM}",
            "storedBytes": stored,
        }
    ]
    assert row["first"] <= row["last"] <= row["ingested"]
    by_arn = logs.describe_log_streams(logGroupIdentifier=ARN, orderBy="LastEventTime")
    assert by_arn["logStreams"] == streams
    assert (
        logs.describe_log_streams(logGroupName=GROUP, logStreamNamePrefix="aws/b")["logStreams"]
        == streams
    )
    assert (
        logs.describe_log_streams(logGroupName=GROUP, logStreamNamePrefix="x")["logStreams"] == []
    )


@pytest.mark.parametrize(
    ("operation", "params", "expected"),
    [
        (
            "describe_log_groups",
            {"logGroupNamePrefix": "/aws", "logGroupNamePattern": "bedrock"},
            "InvalidParameterException",
        ),
        (
            "describe_log_groups",
            {"logGroupIdentifiers": [GROUP], "logGroupNamePrefix": "/aws"},
            "InvalidParameterException",
        ),
        ("describe_log_groups", {"nextToken": "not-a-token"}, "InvalidParameterException"),
        ("describe_log_streams", {"logGroupName": "/no/such"}, "ResourceNotFoundException"),
        (
            "describe_log_streams",
            {"logGroupIdentifier": ARN.replace(REGION, "eu-west-1")},
            "ResourceNotFoundException",
        ),
        ("describe_log_streams", {}, "InvalidParameterException"),
        (
            "describe_log_streams",
            {"logGroupName": GROUP, "orderBy": "LastEventTime", "logStreamNamePrefix": "aws"},
            "InvalidParameterException",
        ),
    ],
)
def test_refusals_in_aws_shape(
    logs: Any, operation: str, params: dict[str, Any], expected: str
) -> None:
    with pytest.raises(ClientError) as caught:
        getattr(logs, operation)(**params)
    assert code(caught) == expected


@pytest.mark.parametrize(
    ("operation", "params"),
    [
        ("describe_log_groups", {"limit": 0}),
        ("describe_log_groups", {"limit": 51}),
        ("describe_log_groups", {"logGroupClass": "COLD"}),
        ("describe_log_streams", {"logGroupName": GROUP, "limit": 51}),
    ],
)
def test_input_breaking_the_model_is_refused_by_the_server(
    unchecked: Any, operation: str, params: dict[str, Any]
) -> None:
    with pytest.raises(ClientError) as caught:
        getattr(unchecked, operation)(**params)
    assert code(caught) == "InvalidParameterException"
    assert "validation error" in caught.value.response["Error"]["Message"]
