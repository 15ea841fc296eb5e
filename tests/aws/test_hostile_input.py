"""Hostile and malformed bodies, targets, paths and query strings on the three AWS protocols,
against the shared open server (`aws_server`): each gets the exact AWS error it should — the
type in ``__type`` / ``x-amzn-ErrorType``, the field and the limit in the message — never a
500 or a plain-text answer, and the server answers a good request on every protocol right
after. Cases marked ``was:`` broke before (tests/aws/test_hostile_tokens.py has the tokens,
the refused changes, boto3's view and fifty requests at once)."""

from __future__ import annotations

import struct
from datetime import UTC, date, datetime, timedelta
from typing import Any

import cbor2
import pytest

from tests.aws.conftest import AwsServer
from tests.aws.hostile import (
    CE,
    COST,
    GROUP,
    LOGS,
    SERIALIZATION,
    Wire,
    metric_bytes,
    metric_data,
    metric_query,
    nested_not,
    now,
)


@pytest.fixture(scope="module")
def wire(aws_server: AwsServer) -> Wire:
    return Wire(aws_server.url)


def _tag(number: int, value: Any) -> cbor2.CBORTag:
    return cbor2.CBORTag(number, value)


# -- CBOR (cloudwatch GetMetricData) ---------------------------------------------------------
SELF_REFERENCE = b"\xa1" + cbor2.dumps("MetricDataQueries") + b"\xd8\x1c\x81\xd8\x1d\x00"
STAMP = "must be a timestamp"
CBOR_CASES: dict[str, tuple[bytes, str, str]] = {
    "truncated": (metric_bytes()[:25], SERIALIZATION, "the body is not CBOR"),
    "trailing bytes": (metric_bytes() + b"\x00", SERIALIZATION, "1 bytes follow"),
    "not a map": (cbor2.dumps([1, 2]), SERIALIZATION, "must be a CBOR map"),
    "deep arrays": (b"\x81" * 100_000 + b"\x00", SERIALIZATION, "nesting depth"),
    "not utf-8": (b"\xa1\x66ScanBy\x62\xff\xfe", SERIALIZATION, "the body is not CBOR"),
    "int key": (cbor2.dumps({1: 2, "StartTime": 0}), SERIALIZATION, "text string"),
    "duplicate key": (b"\xa2\x66ScanBy\x62ab\x66ScanBy\x62cd", SERIALIZATION, "Duplicate"),
    # was: "error decoding epoch-form datetime", naming no member
    "tag 1 text": (metric_bytes(StartTime=_tag(1, "soon")), SERIALIZATION, "'StartTime' " + STAMP),
    "tag 1 huge": (metric_bytes(StartTime=_tag(1, 10**30)), SERIALIZATION, "'StartTime' " + STAMP),
    "tag 1 NaN": (metric_bytes(EndTime=_tag(1, float("nan"))), SERIALIZATION, "'EndTime' " + STAMP),
    "tag 0": (metric_bytes(StartTime=_tag(0, "2026-12-01T00:00:00Z")), SERIALIZATION, STAMP),
    "untagged 2^70": (metric_bytes(StartTime=2**70), SERIALIZATION, "years 1 to 9999"),
    # was: 500 InternalFailure ("Integer exceeds 64-bit range" in the handler)
    "bignum Period": (
        metric_bytes(MetricDataQueries=[metric_query(period=2**80)]),
        SERIALIZATION,
        "'MetricDataQueries.1.MetricStat.Period' must be a 32-bit integer",
    ),
    "negative bignum": (metric_bytes(MaxDatapoints=-(2**80)), SERIALIZATION, "32-bit"),
    "NaN Period": (
        metric_bytes(MetricDataQueries=[metric_query(period=float("nan"))]),
        SERIALIZATION,
        "must be an integer",
    ),
    # was: decoded into a list holding itself
    "shared reference cycle": (SELF_REFERENCE, SERIALIZATION, "'MetricDataQueries' must be a list"),
    # was: compiled as a Python regex / parsed as MIME, then a second, spurious enum error
    "regex tag": (
        metric_bytes(ScanBy=_tag(35, "(a+)+$")),
        SERIALIZATION,
        "1 validation error detected: Value at 'ScanBy' must be a string",
    ),
    "mime tag": (metric_bytes(ScanBy=_tag(36, "Subject: x\n\nhi")), SERIALIZATION, "a string"),
    "set tag": (metric_bytes(MetricDataQueries=_tag(258, [1])), SERIALIZATION, "must be a list"),
    "null item": (metric_bytes(MetricDataQueries=[None]), SERIALIZATION, "'MetricDataQueries.1'"),
    "nulls": (
        cbor2.dumps(dict.fromkeys(metric_data())),
        "ValidationException",
        "'StartTime' failed to satisfy constraint: Member must not be null",
    ),
    "501 queries": (
        metric_bytes(MetricDataQueries=[metric_query(i) for i in range(501)]),
        "ValidationException",
        "at most 500 queries",
    ),
    "1 s period": (
        metric_bytes(MetricDataQueries=[metric_query(period=1)]),
        "ValidationException",
        "10, 30 or a multiple of 60",
    ),
    "400 days of minutes": (
        metric_bytes(StartTime=_tag(1, now() - 86400 * 400)),
        "ValidationException",
        "more than 100800 periods",
    ),
    "declared string past the body": (
        b"\xa1\x66ScanBy\x7b" + struct.pack(">Q", 2**62) + b"abc",
        SERIALIZATION,
        "premature end",
    ),
    "declared map past the body": (b"\xbb" + struct.pack(">Q", 2**62), SERIALIZATION, "premature"),
}


@pytest.mark.parametrize(("body", "code", "says"), CBOR_CASES.values(), ids=CBOR_CASES.keys())
def test_cbor_bodies_are_refused_naming_the_member(
    wire: Wire, body: bytes, code: str, says: str
) -> None:
    reply = wire.cbor("GetMetricData", body)
    assert (reply.status, reply.error) == (400, code), reply
    assert says in reply.message, reply.message
    wire.alive()


def test_cbor_indefinite_lengths_and_bignums_are_read(wire: Wire) -> None:
    plain = wire.cbor("GetMetricData", metric_data())
    assert plain.status == 200, plain
    # the same request as an indefinite-length map, with a bignum-tagged MaxDatapoints
    items = b"".join(cbor2.dumps(k) + cbor2.dumps(v) for k, v in metric_data().items())
    bignum = cbor2.dumps("MaxDatapoints") + b"\xc2\x42\x01\x00"  # tag 2 over b"\x01\x00": 256
    reply = wire.cbor("GetMetricData", b"\xbf" + items + bignum + b"\xff")
    assert reply.status == 200, reply
    values = [r["Values"] for r in reply.data["MetricDataResults"]]
    assert values == [r["Values"] for r in plain.data["MetricDataResults"]]


def test_many_metric_queries_answer_as_one_does(wire: Wire) -> None:
    one = wire.cbor("GetMetricData", metric_data())
    queries = [metric_query(i) for i in range(200)]
    many = wire.cbor("GetMetricData", metric_data(MetricDataQueries=queries))
    assert one.status == many.status == 200, many
    assert len(many.data["MetricDataResults"]) == 200
    values = {tuple(r["Values"]) for r in many.data["MetricDataResults"]}
    assert values == {tuple(one.data["MetricDataResults"][0]["Values"])}


# -- JSON 1.1 (logs, ce) ---------------------------------------------------------------------
def _query(text: str) -> dict[str, Any]:
    return {"logGroupName": GROUP, "startTime": 0, "endTime": 1, "queryString": text}


def _events(**params: Any) -> dict[str, Any]:
    return {"logGroupName": GROUP, **params}


NOT_FOUND = "names no operation"
BAD_PARAMETER = "InvalidParameterException"
JSON_CASES: dict[str, tuple[str, Any, str, str]] = {
    "not json": (LOGS + "FilterLogEvents", b"{not json", SERIALIZATION, "the body is not JSON"),
    "array": (LOGS + "FilterLogEvents", b"[1]", SERIALIZATION, "must be a JSON object"),
    "not utf-8": (LOGS + "FilterLogEvents", b'{"logGroupName":"\xff"}', SERIALIZATION, "UTF-8"),
    "NaN": (LOGS + "FilterLogEvents", b'{"startTime":NaN}', SERIALIZATION, "not JSON"),
    "1e400": (LOGS + "FilterLogEvents", b'{"startTime":1e400}', SERIALIZATION, "infinity"),
    "deep": (LOGS + "DescribeLogGroups", b"{" * 3000, SERIALIZATION, "not JSON"),
    "limit 2^40": (
        LOGS + "FilterLogEvents",
        _events(limit=2**40),
        SERIALIZATION,
        "'limit' must be a 32-bit integer",
    ),
    "limit text": (LOGS + "FilterLogEvents", _events(limit="5"), SERIALIZATION, "an integer"),
    "limit true": (LOGS + "FilterLogEvents", _events(limit=True), SERIALIZATION, "an integer"),
    "streams text": (
        LOGS + "FilterLogEvents",
        _events(logStreamNames="a"),
        SERIALIZATION,
        "'logStreamNames' must be a list",
    ),
    "negative time": (
        LOGS + "FilterLogEvents",
        _events(startTime=-1),
        BAD_PARAMETER,
        "greater than or equal to 0",
    ),
    "1 MB name": (
        LOGS + "FilterLogEvents",
        {"logGroupName": "a" * 1_000_000},
        BAD_PARAMETER,
        "at 'logGroupName' failed to satisfy constraint: Member must have length less than",
    ),
    "10,000 streams": (
        LOGS + "FilterLogEvents",
        _events(logStreamNames=["s"] * 10_000),
        BAD_PARAMETER,
        "less than or equal to 100",
    ),
    "long pattern": (
        LOGS + "FilterLogEvents",
        _events(filterPattern="{ " + "(" * 600 + "$.a = 1" + ")" * 600 + " }"),
        BAD_PARAMETER,
        "less than or equal to 1024",
    ),
    "deep pattern": (
        LOGS + "FilterLogEvents",
        _events(filterPattern="{ " + "(" * 40 + "$.a = 1" + ")" * 40 + " }"),
        BAD_PARAMETER,
        "nested too deeply",
    ),
    "deep query": (
        LOGS + "StartQuery",
        _query("fields a | filter " + "(" * 500 + "1=1" + ")" * 500),
        "MalformedQueryException",
        "nested too deeply",
    ),
    "bad regex": (
        LOGS + "StartQuery",
        _query("fields @message | filter @message like /(/"),
        "MalformedQueryException",
        "invalid regex",
    ),
    "long query": (
        LOGS + "StartQuery",
        _query("fields a" + " | limit 5" * 2000),
        BAD_PARAMETER,
        "less than or equal to 10000",
    ),
    # was: RecursionError in the shape reader, answered "Internal Server Error" as plain text
    "500 Nots": (
        CE + "GetCostAndUsage",
        {**COST, "Filter": nested_not(500)},
        "ValidationException",
        "'Filter.Not.Not.Not",
    ),
    "20 Nots": (
        CE + "GetCostAndUsage",
        {**COST, "Filter": nested_not(20)},
        "ValidationException",
        "nest at most 10 levels",
    ),
    "null period": (
        CE + "GetCostAndUsage",
        {**COST, "TimePeriod": None},
        "ValidationException",
        "'TimePeriod' failed to satisfy constraint: Member must not be null",
    ),
    "years 0 and 99999": (
        CE + "GetCostAndUsage",
        {**COST, "TimePeriod": {"Start": "0000-01-01", "End": "99999-01-01"}},
        "ValidationException",
        "not a date",
    ),
    # was: Starlette's plain-text 405 Method Not Allowed for each of these
    "no operation": (LOGS.rstrip("."), {}, "UnknownOperationException", NOT_FOUND),
    "empty operation": (LOGS, {}, "UnknownOperationException", NOT_FOUND),
    "lowercase prefix": (
        LOGS.lower() + "DescribeLogGroups",
        {},
        "UnknownOperationException",
        "Logs_20140328 (logs)",
    ),
    "extra dot": (LOGS + "DescribeLogGroups.x", {}, "UnknownOperationException", NOT_FOUND),
    "unknown prefix": ("Foo.Bar", {}, "UnknownOperationException", NOT_FOUND),
}


@pytest.mark.parametrize(
    ("target", "body", "code", "says"), JSON_CASES.values(), ids=JSON_CASES.keys()
)
def test_json_bodies_and_targets_are_refused_naming_the_field(
    wire: Wire, target: str, body: Any, code: str, says: str
) -> None:
    reply = wire.json(target, body)
    assert (reply.status, reply.error) == (400, code), reply
    assert says in reply.message, reply.message
    wire.alive()


def test_unknown_members_and_nulls_are_ignored(wire: Wire) -> None:
    plain = wire.json(LOGS + "FilterLogEvents", _events(limit=3))
    noisy = wire.json(
        LOGS + "FilterLogEvents", _events(limit=3, nextToken=None, zzz={"a": [1, {"b": None}]})
    )
    assert plain.status == noisy.status == 200
    assert noisy.data["events"] == plain.data["events"] and len(plain.data["events"]) == 3


def test_a_body_over_the_limit_is_413_in_the_protocol_shape(wire: Wire) -> None:
    body = b'{"logGroupName":"' + b"a" * (33 * 2**20) + b'"}'
    reply = wire.json(LOGS + "FilterLogEvents", body)
    assert (reply.status, reply.error) == (413, BAD_PARAMETER), reply
    assert "33554432 bytes" in reply.message
    wire.alive()


def test_years_of_daily_cost_answer_every_day(wire: Wire) -> None:
    end = datetime.now(UTC).date() + timedelta(days=1)  # today's traffic included
    start = date(end.year - 10, end.month, 1)
    period = {"Start": start.isoformat(), "End": end.isoformat()}
    daily = wire.json(
        CE + "GetCostAndUsage", {**COST, "TimePeriod": period, "Granularity": "DAILY"}
    )
    assert daily.status == 200, daily
    assert len(daily.data["ResultsByTime"]) == (end - start).days
    monthly = wire.json(CE + "GetCostAndUsage", {**COST, "TimePeriod": period})

    def total(reply: Any) -> float:
        return sum(
            float(r["Total"]["UnblendedCost"]["Amount"]) for r in reply.data["ResultsByTime"]
        )

    assert total(daily) == pytest.approx(total(monthly)) and total(daily) > 0


# -- a body in the other protocol's format ---------------------------------------------------
def test_a_body_of_another_protocol_is_415(wire: Wire) -> None:
    # was: "premature end of stream (expected to read at least 65520 bytes ...)"
    on_cbor = wire.cbor("ListMetrics", b'{"Namespace":"AWS/Bedrock"}', "application/json")
    assert (on_cbor.status, on_cbor.error) == (415, "UnsupportedMediaTypeException"), on_cbor
    assert "application/cbor" in on_cbor.message
    on_json = wire.json(LOGS + "DescribeLogGroups", cbor2.dumps({"limit": 1}), "application/cbor")
    assert (on_json.status, on_json.error) == (415, "UnsupportedMediaTypeException"), on_json
    cbor_type = {"content-type": "application/cbor"}
    on_rest = wire.send("PUT", "/logging/modelinvocations", b"{}", **cbor_type)
    assert (on_rest.status, on_rest.error) == (415, "UnsupportedMediaTypeException"), on_rest
    wire.alive()


# -- rest-json (bedrock) ---------------------------------------------------------------------
UNKNOWN_PATH = (404, "UnknownOperationException", "method and path")
REST_CASES: dict[str, tuple[str, str, tuple[int, str, str]]] = {
    "double-encoded /": (
        "GET",
        "/inference-profiles/abc%252Fdef",
        (400, "ValidationException", "inferenceProfileIdentifier"),
    ),
    "NUL": ("GET", "/inference-profiles/a%00b", (400, "ValidationException", "Identifier")),
    "not utf-8": ("GET", "/inference-profiles/%ff%fe", (400, "ValidationException", "pattern")),
    "5000 chars": (
        "GET",
        "/inference-profiles/" + "a" * 5000,
        (400, "ValidationException", "less than or equal to 2048"),
    ),
    "..": ("GET", "/inference-profiles/..", (404, "ResourceNotFoundException", "'..'")),
    "blank maxResults": (
        "GET",
        "/inference-profiles?maxResults=",
        (400, SERIALIZATION, "'maxResults' must be an integer"),
    ),
    "1e3": ("GET", "/inference-profiles?maxResults=1e3", (400, SERIALIZATION, "an integer")),
    "40 digits": ("GET", "/inference-profiles?maxResults=" + "9" * 40, (400, SERIALIZATION, "32")),
    "zero": (
        "GET",
        "/inference-profiles?maxResults=0",
        (400, "ValidationException", "greater than or equal to 1"),
    ),
    "blank enum": ("GET", "/inference-profiles?type=", (400, "ValidationException", "enum")),
    # was: Starlette's plain-text 404
    "empty label": ("GET", "/inference-profiles//x", UNKNOWN_PATH),
    "empty segments": ("GET", "/inference-profiles//", UNKNOWN_PATH),
    "wrong method": ("POST", "/foundation-models", UNKNOWN_PATH),
}


@pytest.mark.parametrize(("method", "path", "expected"), REST_CASES.values(), ids=REST_CASES.keys())
def test_rest_paths_and_queries_are_refused_naming_the_label(
    wire: Wire, method: str, path: str, expected: tuple[int, str, str]
) -> None:
    reply = wire.rest(method, path)
    status, code, says = expected
    assert (reply.status, reply.error) == (status, code), reply
    assert says in reply.message, reply.message
    wire.alive()


def test_repeated_query_parameters_take_the_last(wire: Wire) -> None:
    twice = wire.rest("GET", "/inference-profiles?maxResults=5&maxResults=2")
    assert twice.status == 200 and len(twice.data["inferenceProfileSummaries"]) == 2


def test_a_json_body_value_is_not_read_from_text(wire: Wire) -> None:
    arn = "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/abc"
    # was: the string was taken for a one-item list (text parsing meant for query strings)
    reply = wire.rest("POST", "/untagResource", {"resourceARN": arn, "tagKeys": "a"})
    assert (reply.status, reply.error) == (400, SERIALIZATION), reply
    assert "'tagKeys' must be a list" in reply.message
    wire.alive()
