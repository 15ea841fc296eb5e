"""Bad parameters are 400s naming the parameter, on one running server, and the server answers
normally afterwards.

- time zones: names Python's zoneinfo accepts but the engine does not (``localtime``,
  ``posixrules``) are refused at the door, on every parameter and CLI option taking one;
- numbers no finite float holds (``1e308 * 10``, ``2 ^ 99999``, ``(-8) ^ 0.5``) come back as
  ``Infinity``, ``-Infinity`` and ``NaN``;
- every JSON body field of the management API given a value of the wrong JSON type;
- integer query parameters: Unicode digits (``²``, ``٣``), zero, negatives and huge values,
  with the same bounds on every route (one parser).
"""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import duckdb
import pytest

from llmtrail.analytics.time_zones import known_zones, time_zone
from llmtrail.errors import ValidationError
from llmtrail.record import format_timestamp
from tests.harness import ServerProcess, call

NOW = datetime.now(UTC).replace(microsecond=0)


def doc(request_id: str) -> dict[str, Any]:
    return {
        "schemaType": "ModelInvocationLog",
        "schemaVersion": "1.0",
        "timestamp": format_timestamp(NOW - timedelta(minutes=1)),
        "requestId": request_id,
        "operation": "Converse",
        "modelId": "amazon.nova-lite-v1:0",
        "input": {"inputTokenCount": 3},
        "trace": {"traceId": "0af7651916cd43dd8448eb211c80319c", "spanId": "b7ad6b7169203331"},
    }


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    root = tmp_path_factory.mktemp("bad-params")
    with ServerProcess(root / "data") as proc:
        status, answer = call(proc.url, "POST", "/api/records", [doc("p-1"), doc("p-2")])
        assert status == 200 and answer["stored"] == 2, answer
        proc.settle()
        yield proc


def assert_problem(status: int, answer: Any, field: str, *words: str) -> None:
    assert 400 <= status < 500, (status, answer)
    assert isinstance(answer, dict) and answer.get("field") == field, answer
    for word in words:
        assert word in answer["detail"], answer


def still_working(url: str) -> None:
    status, answer = call(url, "POST", "/api/records", [doc("after")])
    assert status == 200 and answer["stored"] + answer["duplicate"] == 1, answer
    status, answer = call(url, "POST", "/api/query", {"queryString": "stats count(*) as n"})
    assert status == 200 and answer["status"] == "Complete", answer
    for path in ("/api/cost?tz=Europe/Paris", "/api/traces?limit=5", "/readyz"):
        assert call(url, "GET", path)[0] == 200, path


# -- B1: time zones ---------------------------------------------------------------------------


def test_every_accepted_zone_is_one_the_engine_knows() -> None:
    with duckdb.connect() as con:
        engine = {row[0] for row in con.execute("SELECT name FROM pg_timezone_names()").fetchall()}
    assert "UTC" in known_zones() and "Europe/Paris" in known_zones()
    assert known_zones() <= engine, sorted(known_zones() - engine)


@pytest.mark.parametrize(
    "name", ["localtime", "posixrules", "posix/UTC", "right/UTC", "", "x" * 99]
)
def test_host_aliases_are_not_zones(name: str) -> None:
    with pytest.raises(ValidationError) as caught:
        time_zone(name, "timezone")
    assert caught.value.field == "timezone"


@pytest.mark.parametrize("name", ["localtime", "posixrules", "Mars/Olympus", "UTC\x00"])
@pytest.mark.parametrize(
    "path", ["/api/cost?tz={}", "/api/reports/cost?tz={}", "/api/cost?tz={}&start=2025-01-01"]
)
def test_a_zone_the_engine_does_not_know_is_a_400(
    server: ServerProcess, path: str, name: str
) -> None:
    status, answer = call(server.url, "GET", path.format(urllib.parse.quote(name)))
    assert_problem(status, answer, "tz", "IANA time zone")


def test_a_budget_in_a_zone_the_engine_does_not_know_is_a_400(server: ServerProcess) -> None:
    body = {"dimension": "modelId", "value": "m", "limitUsd": "5", "timezone": "localtime"}
    status, answer = call(server.url, "PUT", "/api/budgets", body)
    assert_problem(status, answer, "timezone", "IANA time zone")
    assert call(server.url, "GET", "/api/budgets")[1]["budgets"] == []
    still_working(server.url)


@pytest.mark.parametrize(
    "args",
    [
        ("cost", "--tz", "localtime"),
        ("report", "cost", "--tz", "posixrules"),
        (
            "budgets",
            "set",
            "--dimension",
            "modelId",
            "--value",
            "m",
            "--limit",
            "5",
            "--timezone",
            "localtime",
        ),
    ],
)
def test_cli_time_zone_options_are_checked_by_the_same_function(
    server: ServerProcess, args: tuple[str, ...]
) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "llmtrail", *args, "--url", server.url],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, done
    assert "IANA time zone" in done.stderr, done.stderr


# -- B2: numbers no float holds -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "text"),
    [
        ("1e308 * 10", "Infinity"),
        ("-1e308 * 10", "-Infinity"),
        ("2 ^ 99999", "Infinity"),
        ("(-8) ^ 0.5", "NaN"),
        ("1.5 * 2", "3"),
    ],
)
def test_non_finite_numbers_are_text(server: ServerProcess, expression: str, text: str) -> None:
    body = {"queryString": f"fields {expression} as x | limit 1", "since": "1d"}
    status, answer = call(server.url, "POST", "/api/query", body)
    assert status == 200, answer
    assert [[cell["value"] for cell in row] for row in answer["results"]] == [[text]]
    still_working(server.url)


# -- B3: JSON body fields of the wrong type ---------------------------------------------------

WRONG = {
    "str": [123, 1.5, True, [1], {"a": 1}],
    "number-or-str": [True, [1], {"a": 1}],
    "int": [1.5, True, "10", [1], {"a": 1}],
    "bool": [1, "true", [1], {"a": 1}],
    "object": [123, "x", True, [1]],
    "list": [123, "x", True, {"a": 1}],
}
BODIES: list[tuple[str, str, dict[str, Any], dict[str, str]]] = [
    (
        "POST",
        "/api/query",
        {"queryString": "fields @timestamp", "since": "1h", "queryId": "q-ok"},
        {
            "queryString": "str",
            "name": "str",
            "nextToken": "str",
            "queryId": "str",
            "since": "str",
            "startTime": "number-or-str",
            "endTime": "number-or-str",
            "limit": "int",
        },
    ),
    (
        "PUT",
        "/api/saved-queries/typed",
        {"queryString": "fields @timestamp", "description": "d"},
        {"queryString": "str", "description": "str"},
    ),
    (
        "PUT",
        "/api/prices",
        {
            "provider": "sim",
            "model": "typed-model",
            "prices": {"input_mtok": "1"},
            "effective_from": "2025-01-01",
            "note": "n",
            "id": "typed-price",
        },
        {
            "provider": "str",
            "model": "str",
            "prices": "object",
            "effective_from": "str",
            "note": "str",
            "id": "str",
            "created_at": "str",
        },
    ),
    (
        "PUT",
        "/api/budgets",
        {"dimension": "modelId", "value": "m", "limitUsd": "5", "name": "typed-budget"},
        {
            "dimension": "str",
            "value": "str",
            "limitUsd": "number-or-str",
            "action": "str",
            "timezone": "str",
            "name": "str",
        },
    ),
    (
        "POST",
        "/api/cost/recompute",
        {"start": "2025-01-01", "dryRun": True},
        {"start": "str", "end": "str", "dryRun": "bool"},
    ),
    (
        "POST",
        "/api/profiles",
        {"inferenceProfileName": "typed", "modelSource": {"copyFrom": "sim/typed"}},
        {
            "inferenceProfileName": "str",
            "modelSource": "object",
            "description": "str",
            "tags": "list",
            "clientRequestToken": "str",
        },
    ),
]
CASES = [
    pytest.param(method, path, valid, name, value, id=f"{path}-{name}-{json.dumps(value)}")
    for method, path, valid, fields in BODIES
    for name, kind in fields.items()
    for value in WRONG[kind]
]


@pytest.mark.parametrize(("method", "path", "valid", "name", "value"), CASES)
def test_a_body_field_of_the_wrong_type_is_a_400_naming_it(
    server: ServerProcess, method: str, path: str, valid: dict[str, Any], name: str, value: Any
) -> None:
    status, answer = call(server.url, method, path, {**valid, name: value})
    assert 400 <= status < 500, (status, answer)
    assert answer.get("field", "").split(".")[0] == name, answer


@pytest.mark.parametrize(("method", "path", "valid"), [b[:3] for b in BODIES])
def test_the_valid_bodies_are_accepted(
    server: ServerProcess, method: str, path: str, valid: dict[str, Any]
) -> None:
    """The table above changes one field of a body that is otherwise right."""
    status, answer = call(server.url, method, path, valid)
    assert status in (200, 201), answer


# -- B4: integer parameters -------------------------------------------------------------------

INTEGERS = ["²", "٣", "0", "-1", "1.5", " 5", "5 ", "1_0", "", "99999999999999999999"]
PATTERN = urllib.parse.quote('{ $.operation = "Converse" }')
ROUTES = [  # path, parameter, largest value
    ("/api/records?limit={}", "limit", 1000),
    (f"/api/records?filterPattern={PATTERN}&cursor={{}}", "cursor", 999_999_999),
    (f"/api/records?filterPattern={PATTERN}&limit={{}}", "limit", 1000),
    ("/api/traces?limit={}", "limit", 1000),
    ("/api/traces?minDurationMs={}", "minDurationMs", 10**12),
    ("/api/timeline?limit={}", "limit", 1000),
    ("/api/errors?limit={}", "limit", 1000),
    ("/api/profiles?maxResults={}", "maxResults", 1000),
]


@pytest.mark.parametrize(("path", "field", "largest"), ROUTES)
@pytest.mark.parametrize("value", INTEGERS)
def test_an_integer_parameter_is_ascii_digits_within_bounds(
    server: ServerProcess, path: str, field: str, largest: int, value: str
) -> None:
    allowed_zero = field in ("cursor", "minDurationMs")  # an offset, a duration
    status, answer = call(server.url, "GET", path.format(urllib.parse.quote(value)))
    if (value == "0" and allowed_zero) or (value == "" and field == "cursor"):
        assert status == 200, answer
        return
    assert_problem(status, answer, field, "must be an integer from")


@pytest.mark.parametrize(("path", "field", "largest"), ROUTES)
def test_the_bounds_are_named_and_the_largest_is_accepted(
    server: ServerProcess, path: str, field: str, largest: int
) -> None:
    smallest = 0 if field in ("cursor", "minDurationMs") else 1
    status, answer = call(server.url, "GET", path.format(largest + 1))
    assert_problem(status, answer, field, f"from {smallest} to {largest}")
    status, answer = call(server.url, "GET", path.format(largest))
    assert status == 200, answer


@pytest.mark.parametrize("since", ["²h", "٣h", "1.5h", "-1h", "h", "1 h", "1H", "1hh"])
def test_since_is_ascii_digits_and_a_unit(server: ServerProcess, since: str) -> None:
    body = {"queryString": "fields @timestamp", "since": since}
    status, answer = call(server.url, "POST", "/api/query", body)
    assert_problem(status, answer, "since", "duration")


@pytest.mark.parametrize("path", ["/api/traces", "/api/timeline", "/api/errors"])
@pytest.mark.parametrize("field", ["start", "end"])
def test_a_bad_time_names_the_parameter_sent(server: ServerProcess, path: str, field: str) -> None:
    status, answer = call(server.url, "GET", f"{path}?{field}=yesterday")
    assert_problem(status, answer, field)


def test_the_server_answers_normally_afterwards(server: ServerProcess) -> None:
    still_working(server.url)
    assert "Traceback" not in server.log()
