"""``logs.filter_log_events`` and ``logs.get_log_events`` with the official boto3 client
against a real server: each event is a record exactly as ``GET /api/records`` answers it,
the same records a filter pattern selects there, in the stream's order (timestamp, then
recordId); pages continue with no event twice and none skipped, ``nextToken`` is absent on
the last page, and GetLogEvents' forward and backward tokens walk the whole stream and
repeat at its ends, as AWS's do."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.aws.conftest import REGION, AwsServer
from tests.aws.test_logs_support import (
    EPOCH,
    GROUP,
    STREAM,
    api_records,
    code,
    iso,
    logs_client,
    unchecked_logs,
)


@pytest.fixture
def logs(aws_server: AwsServer) -> Iterator[Any]:
    yield from logs_client(aws_server)


@pytest.fixture
def unchecked(aws_server: AwsServer) -> Iterator[Any]:
    yield from unchecked_logs(aws_server)


def all_pages(logs: Any, **params: Any) -> tuple[list[dict[str, Any]], int]:
    """Every event of FilterLogEvents, page by page by hand, and the number of pages."""
    events: list[dict[str, Any]] = []
    pages = 0
    while True:
        answer = logs.filter_log_events(**params)
        pages += 1
        events += answer["events"]
        if "nextToken" not in answer:
            return events, pages
        params = {**params, "nextToken": answer["nextToken"]}


def test_every_event_is_a_record_as_the_records_api_answers_it(
    aws_server: AwsServer, logs: Any
) -> None:
    end = datetime.now(UTC)
    end_ms = (end - EPOCH) // timedelta(milliseconds=1)
    events, pages = all_pages(logs, logGroupName=GROUP, endTime=end_ms)
    expected = api_records(aws_server.url, end=iso(end_ms + 1))
    assert pages == 1
    assert set(aws_server.request_ids) <= {r["requestId"] for r in expected}
    assert [json.loads(e["message"]) for e in events] == expected
    for event, record in zip(events, expected, strict=True):
        assert event["logStreamName"] == STREAM
        assert event["eventId"] == record["recordId"]
        stamp = datetime.fromisoformat(record["timestamp"].replace("Z", "+00:00"))
        assert event["timestamp"] == (stamp - EPOCH) // timedelta(milliseconds=1)
        assert event["timestamp"] <= event["ingestionTime"]
    # every wire format is there, as Bedrock-shaped records
    assert {r["operation"] for r in expected} >= {"ChatCompletions", "Messages", "Converse"}


@pytest.mark.parametrize(
    "pattern",
    [
        '{ $.modelId = "sim/tiny" }',
        '{ $.modelId = "sim/*" && $.operation != "Converse" }',
        "{ $.input.inputTokenCount > 5 || $.requestMetadata.team = search }",
        '{ $.output.outputBodyJson.choices[0].finish_reason = "stop" }',
    ],
)
def test_a_json_filter_pattern_selects_what_the_records_api_selects(
    aws_server: AwsServer, logs: Any, pattern: str
) -> None:
    events, _ = all_pages(logs, logGroupIdentifier=GROUP, filterPattern=pattern)
    expected = api_records(aws_server.url, filterPattern=pattern)
    assert expected, pattern  # the pattern selects something
    assert [json.loads(e["message"]) for e in events] == expected


def test_pages_continue_without_duplicates_or_gaps(aws_server: AwsServer, logs: Any) -> None:
    whole, _ = all_pages(logs, logGroupName=GROUP)
    paged, pages = all_pages(logs, logGroupName=GROUP, limit=4)
    assert pages == -(-len(whole) // 4)  # the last page carries no nextToken
    ids = [e["eventId"] for e in paged]
    assert len(ids) == len(set(ids)) and ids == [e["eventId"] for e in whole]
    # boto3's own paginator (result keys from botocore's model) agrees
    paginator = logs.get_paginator("filter_log_events")
    pager = paginator.paginate(logGroupName=GROUP, PaginationConfig={"PageSize": 5})
    assert [e["eventId"] for e in pager.build_full_result()["events"]] == ids
    # newest first, when asked, pages the same events the other way
    back, _ = all_pages(logs, logGroupName=GROUP, limit=3, startFromHead=False)
    assert [e["eventId"] for e in back] == ids[::-1]


def test_the_time_range_is_inclusive_in_milliseconds(aws_server: AwsServer, logs: Any) -> None:
    whole, _ = all_pages(logs, logGroupName=GROUP)
    middle = whole[len(whole) // 2]
    at = middle["timestamp"]
    same_ms, _ = all_pages(logs, logGroupName=GROUP, startTime=at, endTime=at)
    assert middle["eventId"] in [e["eventId"] for e in same_ms]
    assert {e["timestamp"] for e in same_ms} == {at}
    later, _ = all_pages(logs, logGroupName=GROUP, startTime=at + 1)
    expected = api_records(aws_server.url, start=iso(at + 1))
    assert [e["eventId"] for e in later] == [r["recordId"] for r in expected]
    assert middle["eventId"] not in [e["eventId"] for e in later]
    earlier, _ = all_pages(logs, logGroupName=GROUP, endTime=at - 1)
    expected = api_records(aws_server.url, end=iso(at))
    assert [e["eventId"] for e in earlier] == [r["recordId"] for r in expected]
    assert len(earlier) + len(same_ms) + len(later) == len(whole)


def test_stream_filters_keep_or_drop_the_one_stream(logs: Any) -> None:
    whole, _ = all_pages(logs, logGroupName=GROUP)
    assert all_pages(logs, logGroupName=GROUP, logStreamNames=[STREAM])[0] == whole
    assert all_pages(logs, logGroupName=GROUP, logStreamNamePrefix="aws/bed")[0] == whole
    assert all_pages(logs, logGroupName=GROUP, logStreamNames=["other"])[0] == []


def stream_messages(events: list[dict[str, Any]]) -> list[str]:
    return [json.loads(e["message"])["recordId"] for e in events]


def test_get_log_events_walks_the_stream_both_ways(aws_server: AwsServer, logs: Any) -> None:
    whole = api_records(aws_server.url)
    ids = [r["recordId"] for r in whole]
    # the default: the latest events, oldest first within the page
    tail = logs.get_log_events(logGroupName=GROUP, logStreamName=STREAM, limit=3)
    assert stream_messages(tail["events"]) == ids[-3:]
    assert [json.loads(e["message"]) for e in tail["events"]] == whole[-3:]
    # forward from the head until the token comes back unchanged
    seen: list[str] = []
    params: dict[str, Any] = {"startFromHead": True}
    while True:
        page = logs.get_log_events(logGroupName=GROUP, logStreamName=STREAM, limit=4, **params)
        seen += stream_messages(page["events"])
        if params.get("nextToken") == page["nextForwardToken"]:
            assert page["events"] == []
            break
        params = {"nextToken": page["nextForwardToken"], "startFromHead": True}
    assert seen == ids
    # backward from the tail the same way
    back: list[str] = []
    token = None
    while True:
        extra = {"nextToken": token} if token else {}
        page = logs.get_log_events(logGroupName=GROUP, logStreamName=STREAM, limit=4, **extra)
        back = stream_messages(page["events"]) + back
        if token == page["nextBackwardToken"]:
            break
        token = page["nextBackwardToken"]
    assert back == ids


def test_get_log_events_takes_a_time_range(aws_server: AwsServer, logs: Any) -> None:
    whole = api_records(aws_server.url)
    first = datetime.fromisoformat(whole[0]["timestamp"].replace("Z", "+00:00"))
    last = datetime.fromisoformat(whole[-1]["timestamp"].replace("Z", "+00:00"))
    start_ms = (first - EPOCH) // timedelta(milliseconds=1) + 1
    end_ms = (last - EPOCH) // timedelta(milliseconds=1)  # exclusive, as AWS's
    page = logs.get_log_events(
        logGroupName=GROUP,
        logStreamName=STREAM,
        startTime=start_ms,
        endTime=end_ms,
        startFromHead=True,
    )
    expected = api_records(aws_server.url, start=iso(start_ms), end=iso(end_ms))
    assert stream_messages(page["events"]) == [r["recordId"] for r in expected]
    assert len(expected) < len(whole)


@pytest.mark.parametrize(
    ("operation", "params", "expected"),
    [
        ("filter_log_events", {"logGroupName": "/no/such/group"}, "ResourceNotFoundException"),
        (
            "filter_log_events",
            {"logGroupIdentifier": f"arn:aws:logs:{REGION}:999999999999:log-group:{GROUP}"},
            "ResourceNotFoundException",
        ),
        ("filter_log_events", {}, "InvalidParameterException"),
        (
            "filter_log_events",
            {"logGroupName": GROUP, "logGroupIdentifier": GROUP},
            "InvalidParameterException",
        ),
        (
            "filter_log_events",
            {"logGroupName": GROUP, "filterPattern": '{ $.modelId = "x" '},
            "InvalidParameterException",
        ),
        (
            "filter_log_events",
            {"logGroupName": GROUP, "logStreamNames": [STREAM], "logStreamNamePrefix": "aws"},
            "InvalidParameterException",
        ),
        (
            "filter_log_events",
            {"logGroupName": GROUP, "nextToken": "bm90IGEgdG9rZW4"},
            "InvalidParameterException",
        ),
        (
            "get_log_events",
            {"logGroupName": GROUP, "logStreamName": "other"},
            "ResourceNotFoundException",
        ),
        (
            "get_log_events",
            {"logGroupName": GROUP, "logStreamName": STREAM, "nextToken": "f/garbage"},
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
    assert caught.value.response["Error"]["Message"]


def test_a_token_of_another_operation_is_refused(logs: Any) -> None:
    page = logs.get_log_events(logGroupName=GROUP, logStreamName=STREAM, limit=1)
    with pytest.raises(ClientError) as caught:
        logs.filter_log_events(logGroupName=GROUP, nextToken=page["nextForwardToken"][2:])
    assert code(caught) == "InvalidParameterException"


@pytest.mark.parametrize(
    ("operation", "params"),
    [
        ("filter_log_events", {"logGroupName": GROUP, "limit": 0}),
        ("filter_log_events", {"logGroupName": GROUP, "limit": 10_001}),
        ("get_log_events", {"logGroupName": GROUP}),  # logStreamName is required
        ("get_log_events", {"logGroupName": GROUP, "logStreamName": STREAM, "startTime": -1}),
    ],
)
def test_input_breaking_the_model_is_refused_by_the_server(
    unchecked: Any, operation: str, params: dict[str, Any]
) -> None:
    with pytest.raises(ClientError) as caught:
        getattr(unchecked, operation)(**params)
    assert code(caught) == "InvalidParameterException"
    assert "validation error" in caught.value.response["Error"]["Message"]
