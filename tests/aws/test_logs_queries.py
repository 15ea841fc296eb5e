"""Logs Insights through boto3's ``logs`` client against a real server: ``start_query`` and
``get_query_results`` answer the rows and statistics ``POST /api/query`` answers for the same
query and range (StartQuery's ``endTime`` is inclusive, in seconds), whichever way the log
group is named (``logGroupName``, ``logGroupNames``, an ARN, ``SOURCE``); results page by
``maxItems``; ``describe_queries`` lists what ran; ``stop_query`` refuses a query that has
ended; and what AWS refuses is refused with AWS's codes."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.aws.conftest import ACCOUNT, REGION, AwsServer
from tests.aws.test_logs_support import (
    GROUP,
    api_query,
    code,
    finished,
    logs_client,
    rows_of,
    unchecked_logs,
)
from tests.harness import call

ARN = f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{GROUP}"
QUERIES = [
    "stats avg(latencyMs) as avgLatency, pct(latencyMs, 95) as p95, count(*) as calls"
    " by modelId | sort modelId",
    "fields @timestamp, @requestId, modelId, operation, input.inputTokenCount"
    " | sort @timestamp desc | limit 7",
    'filter modelId = "sim/tiny" | fields @timestamp, @message',
    "stats sum(input.inputTokenCount) as tokens by bin(1h), requestMetadata.team",
    'filter status = "ERROR" | stats count(*) by error.type',
]


@pytest.fixture
def logs(aws_server: AwsServer) -> Iterator[Any]:
    yield from logs_client(aws_server)


@pytest.fixture
def unchecked(aws_server: AwsServer) -> Iterator[Any]:
    yield from unchecked_logs(aws_server)


def window() -> tuple[int, int]:
    """The last day, in StartQuery's epoch seconds."""
    now = int(time.time())
    return now - 86_400, now + 60


@pytest.mark.parametrize("text", QUERIES)
def test_results_are_the_query_apis(aws_server: AwsServer, logs: Any, text: str) -> None:
    start, end = window()
    query_id = logs.start_query(logGroupName=GROUP, startTime=start, endTime=end, queryString=text)[
        "queryId"
    ]
    answer = finished(logs, query_id)
    expected = api_query(aws_server.url, text, start, end + 1)  # AWS's end is inclusive
    assert answer["status"] == "Complete"
    assert rows_of(answer) == rows_of(expected)
    assert answer["statistics"] == expected["statistics"]
    assert answer["statistics"]["recordsScanned"] >= len(aws_server.request_ids)


@pytest.mark.parametrize(
    "where",
    [
        {"logGroupNames": [GROUP]},
        {"logGroupIdentifiers": [ARN]},
        {"logGroupIdentifiers": [GROUP]},
        {},  # the query's own SOURCE
    ],
)
def test_each_way_of_naming_the_group(aws_server: AwsServer, logs: Any, where: Any) -> None:
    start, end = window()
    text = "stats count(*) as calls by operation | sort operation"
    if not where:
        text = f"SOURCE '{GROUP}' | {text}"
    query_id = logs.start_query(startTime=start, endTime=end, queryString=text, **where)
    answer = finished(logs, query_id["queryId"])
    assert rows_of(answer) == rows_of(api_query(aws_server.url, text, start, end + 1))
    assert {r["operation"] for r in rows_of(answer)} >= {"ChatCompletions", "Converse"}


def test_results_page_by_max_items(aws_server: AwsServer, logs: Any) -> None:
    start, end = window()
    text = "fields @timestamp, @requestId | sort @timestamp asc"
    query_id = logs.start_query(logGroupName=GROUP, startTime=start, endTime=end, queryString=text)[
        "queryId"
    ]
    whole = finished(logs, query_id)
    assert "nextToken" not in whole
    pages, token = [], None
    while True:
        extra = {"nextToken": token} if token else {}
        page = logs.get_query_results(queryId=query_id, maxItems=4, **extra)
        assert len(page["results"]) <= 4
        pages += rows_of(page)
        token = page.get("nextToken")
        if token is None:
            break
    assert pages == rows_of(whole) == rows_of(api_query(aws_server.url, text, start, end + 1))
    ids = [r["@requestId"] for r in pages]
    assert len(ids) == len(set(ids)) >= len(aws_server.request_ids)


def test_describe_queries_lists_what_ran(logs: Any, unique: str) -> None:
    start, end = window()
    text = f'filter modelId = "{unique}" | stats count(*)'
    started = [
        logs.start_query(logGroupName=GROUP, startTime=start, endTime=end, queryString=text)[
            "queryId"
        ]
        for _ in range(3)
    ]
    for query_id in started:
        finished(logs, query_id)
    listed = logs.describe_queries(logGroupName=GROUP, status="Complete")["queries"]
    mine = [q for q in listed if q["queryString"] == text]
    assert {q["queryId"] for q in mine} == set(started)
    for info in mine:
        assert info["status"] == "Complete"
        assert info["logGroupName"] == GROUP
        assert info["queryLanguage"] == "CWLI"
        assert info["createTime"] <= int(time.time() * 1000)
    # newest first, and pages of one continue with no query twice
    assert [q["queryId"] for q in mine] == started[::-1]
    walked, token = [], None
    while True:
        extra = {"nextToken": token} if token else {}
        page = logs.describe_queries(maxResults=1, **extra)
        walked += [q["queryId"] for q in page["queries"]]
        token = page.get("nextToken")
        if token is None:
            break
    assert walked == [q["queryId"] for q in logs.describe_queries()["queries"]]
    assert len(walked) == len(set(walked))
    cancelled = logs.describe_queries(status="Cancelled")["queries"]
    assert all(q["status"] == "Cancelled" for q in cancelled)
    assert not {q["queryId"] for q in cancelled} & set(started)


def test_stop_query_refuses_a_query_that_has_ended(logs: Any) -> None:
    start, end = window()
    query_id = logs.start_query(
        logGroupName=GROUP, startTime=start, endTime=end, queryString="stats count(*)"
    )["queryId"]
    assert finished(logs, query_id)["status"] == "Complete"
    with pytest.raises(ClientError) as caught:
        logs.stop_query(queryId=query_id)
    assert code(caught) == "InvalidParameterException"
    assert logs.get_query_results(queryId=query_id)["status"] == "Complete"


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"logGroupName": GROUP, "queryString": "stats count( by"}, "MalformedQueryException"),
        ({"logGroupName": GROUP, "queryString": "fields nosuch("}, "MalformedQueryException"),
        (
            {"logGroupName": "/no/such", "queryString": "stats count(*)"},
            "ResourceNotFoundException",
        ),
        (
            {"logGroupIdentifiers": [ARN.replace(ACCOUNT, "999999999999")], "queryString": "x"},
            "ResourceNotFoundException",
        ),
        ({"queryString": "SOURCE '/no/such' | stats count(*)"}, "ResourceNotFoundException"),
        ({"queryString": "stats count(*)"}, "InvalidParameterException"),  # no group at all
        (
            {"logGroupName": GROUP, "logGroupNames": [GROUP], "queryString": "stats count(*)"},
            "InvalidParameterException",
        ),
        (
            {"logGroupName": GROUP, "queryString": "stats count(*)", "queryLanguage": "SQL"},
            "InvalidParameterException",
        ),
        (
            {"logGroupName": GROUP, "queryString": "stats count(*)", "startTime": 200},
            "InvalidParameterException",  # after endTime
        ),
    ],
)
def test_start_query_refusals(logs: Any, params: dict[str, Any], expected: str) -> None:
    times = {"startTime": 0, "endTime": 100}
    with pytest.raises(ClientError) as caught:
        logs.start_query(**{**times, **params})
    assert code(caught) == expected
    assert caught.value.response["Error"]["Message"]


def test_malformed_query_names_the_place_as_the_query_api_does(
    aws_server: AwsServer, logs: Any
) -> None:
    text = "fields @timestamp\n| stats count( by modelId"
    with pytest.raises(ClientError) as caught:
        logs.start_query(logGroupName=GROUP, startTime=0, endTime=100, queryString=text)
    message = caught.value.response["Error"]["Message"]
    body = {"queryString": text, "startTime": 0, "endTime": 100}
    status, answer = call(aws_server.url, "POST", "/api/query", body)
    assert status == 400
    assert "line 2" in message and answer["detail"].split(": ", 1)[1] in message


@pytest.mark.parametrize(
    ("operation", "params", "expected"),
    [
        ("get_query_results", {"queryId": "no-such-query"}, "ResourceNotFoundException"),
        ("stop_query", {"queryId": "no-such-query"}, "ResourceNotFoundException"),
        ("describe_queries", {"logGroupName": "/no/such"}, "ResourceNotFoundException"),
        ("describe_queries", {"nextToken": "garbage"}, "InvalidParameterException"),
    ],
)
def test_query_refusals(logs: Any, operation: str, params: dict[str, Any], expected: str) -> None:
    with pytest.raises(ClientError) as caught:
        getattr(logs, operation)(**params)
    assert code(caught) == expected


def test_a_results_token_of_another_query_is_refused(logs: Any) -> None:
    start, end = window()
    ids = [
        logs.start_query(
            logGroupName=GROUP, startTime=start, endTime=end, queryString="fields @requestId"
        )["queryId"]
        for _ in range(2)
    ]
    for query_id in ids:
        finished(logs, query_id)
    token = logs.get_query_results(queryId=ids[0], maxItems=1)["nextToken"]
    with pytest.raises(ClientError) as caught:
        logs.get_query_results(queryId=ids[1], maxItems=1, nextToken=token)
    assert code(caught) == "InvalidParameterException"


@pytest.mark.parametrize(
    ("operation", "params"),
    [
        ("start_query", {"logGroupName": GROUP, "startTime": 0, "endTime": 1}),  # no query
        (
            "start_query",
            {"logGroupName": GROUP, "startTime": 0, "endTime": 1, "queryString": "x"}
            | {"limit": 100_001},
        ),
        ("get_query_results", {"queryId": "x", "maxItems": 10_001}),
        ("describe_queries", {"status": "Sleeping"}),
        ("describe_queries", {"maxResults": 0}),
    ],
)
def test_input_breaking_the_model_is_refused_by_the_server(
    unchecked: Any, operation: str, params: dict[str, Any]
) -> None:
    with pytest.raises(ClientError) as caught:
        getattr(unchecked, operation)(**params)
    assert code(caught) == "InvalidParameterException"
    assert "validation error" in caught.value.response["Error"]["Message"]
