"""`llmtrail.timerange`: every form an instant, a duration and a range are given in, every
refusal naming the caller's field and the limit; and, over HTTP, the APIs that take a time
range name the parameter they were given (a bad traces ``start`` was once reported as
``timestamp``)."""

from __future__ import annotations

import urllib.parse
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from llmtrail.errors import ValidationError
from llmtrail.timerange import (
    TimeRange,
    describe,
    optional_instant,
    parse_bounds,
    parse_duration,
    parse_instant,
    parse_range,
)
from tests.harness import ServerProcess, call
from tests.test_probe_issue11 import _query as metric_query

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


def refused(function: Any, *args: Any, **kwargs: Any) -> ValidationError:
    with pytest.raises(ValidationError) as raised:
        function(*args, **kwargs)
    return raised.value


# -- durations --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90s", 90),
        ("15m", 900),
        ("1h", 3600),
        ("7d", 7 * 86400),
        ("2w", 14 * 86400),
        (" 15m ", 900),
        ("PT15M", 900),
        ("P7D", 7 * 86400),
        ("P1W", 7 * 86400),
        ("P1DT12H", 36 * 3600),
        ("PT1H30M5S", 5405),
    ],
)
def test_every_duration_form(text: str, seconds: int) -> None:
    assert parse_duration(text, "since") == timedelta(seconds=seconds)


@pytest.mark.parametrize(
    "text", ["", "15", "1 h", "1H", "1y", "²h", "٣m", "P", "PT", "P1DT", "-1h", "1h ago"]
)
def test_a_bad_duration_names_its_field(text: str) -> None:
    error = refused(parse_duration, text, "window")
    assert error.field == "window" and "such as 15m" in error.message


def test_a_duration_out_of_bounds_names_the_bounds() -> None:
    error = refused(parse_duration, "500d", "since", longest=timedelta(days=455))
    assert error.field == "since" and "from 0s to 455d" in error.message
    error = refused(parse_duration, "0s", "since", shortest=timedelta(seconds=1))
    assert "from 1s to" in error.message
    error = refused(parse_duration, "999999999999w", "since")
    assert "longer than the limit of 999999999d" in error.message
    assert refused(parse_duration, 15, "since").field == "since"


def test_describe_uses_the_largest_whole_unit() -> None:
    assert [describe(timedelta(seconds=s)) for s in (0, 90, 120, 7200, 86400 * 455)] == [
        "0s",
        "90s",
        "2m",
        "2h",
        "455d",
    ]


# -- instants ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-11-23T10:30:15Z", datetime(2026, 11, 23, 10, 30, 15, tzinfo=UTC)),
        ("2026-11-23T10:30:15.123456789Z", datetime(2026, 11, 23, 10, 30, 15, 123456, UTC)),
        ("2026-11-23T12:30:15+02:00", datetime(2026, 11, 23, 10, 30, 15, tzinfo=UTC)),
        ("2026-11-23T10:30", datetime(2026, 11, 23, 10, 30, tzinfo=UTC)),  # no zone: UTC
        ("2026-11-23", datetime(2026, 11, 23, tzinfo=UTC)),
        (" 2026-11-23T10:30:15Z ", datetime(2026, 11, 23, 10, 30, 15, tzinfo=UTC)),
    ],
)
def test_every_absolute_instant_form(value: str, expected: datetime) -> None:
    assert parse_instant(value, "start") == expected


def test_a_date_is_midnight_in_the_zone_given() -> None:
    paris = parse_instant("2026-07-01", "start", tz=ZoneInfo("Europe/Paris"))
    assert paris == datetime(2026, 6, 30, 22, tzinfo=UTC)
    east = parse_instant("2026-07-01", "start", tz=timezone(timedelta(hours=9)))
    assert east == datetime(2026, 6, 30, 15, tzinfo=UTC)


def test_epoch_seconds_only_where_the_caller_takes_them() -> None:
    assert parse_instant(1_700_000_000, "startTime", epoch=True) == datetime(
        2023, 11, 14, 22, 13, 20, tzinfo=UTC
    )
    assert parse_instant(1.5, "startTime", epoch=True) == datetime(1970, 1, 1, 0, 0, 1, 500000, UTC)
    for value in (1e20, -1e20, 10**30, float("nan")):
        error = refused(parse_instant, value, "StartTime", epoch=True)
        assert error.field == "StartTime" and "years 2 to 9998" in error.message
    error = refused(parse_instant, 1_700_000_000, "start")
    assert error.field == "start" and "epoch" not in error.message
    assert refused(parse_instant, True, "startTime", epoch=True).field == "startTime"


def test_relative_instants_before_and_after_now() -> None:
    assert parse_instant("1h", "since", now=NOW, relative="before") == NOW - HOUR
    assert parse_instant("PT3H", "since", now=NOW, relative="before") == NOW - 3 * HOUR
    assert parse_instant("90d", "expires", now=NOW, relative="after") == NOW + timedelta(90)
    absolute = parse_instant("2026-01-01T00:00:00Z", "since", now=NOW, relative="before")
    assert absolute == datetime(2026, 1, 1, tzinfo=UTC)
    error = refused(parse_instant, "1h", "until")  # relative only where the caller says
    assert error.field == "until" and "duration" not in error.message
    back = refused(parse_instant, "99999999999d", "--since", now=NOW, relative="before")
    assert back.field == "--since" and "too far back" in back.message
    ahead = refused(parse_instant, "9999999w", "expires", now=NOW, relative="after")
    assert ahead.field == "expires" and "past year 9998" in ahead.message


@pytest.mark.parametrize(
    "value", ["yesterday", "", "2026-13-01", "2026-02-30", "0001-01-01", "9999-12-31", None, [1]]
)
def test_a_bad_instant_names_its_field_and_the_forms(value: Any) -> None:
    error = refused(parse_instant, value, "endTime")
    assert error.field == "endTime"
    assert "RFC 3339" in error.message and "YYYY-MM-DD" in error.message
    assert "years 2 to 9998" in error.message


def test_a_long_value_is_refused_before_it_is_parsed_or_echoed() -> None:
    error = refused(parse_instant, "2026-01-01T00:00:00Z" + "0" * 1000, "until")
    assert error.field == "until" and "limit of 64 characters" in error.message
    assert len(str(error)) < 200


def test_an_absent_instant_is_none() -> None:
    assert optional_instant(None, "start") is None
    assert optional_instant("", "start") is None
    assert optional_instant("2026-01-01", "start") == datetime(2026, 1, 1, tzinfo=UTC)


# -- ranges -----------------------------------------------------------------------------------


def test_a_range_defaults_to_the_window_before_now() -> None:
    assert parse_range(None, None, now=NOW, default=3 * HOUR) == TimeRange(NOW - 3 * HOUR, NOW)
    assert parse_range("", "", now=NOW, default=HOUR).span == HOUR
    end = datetime(2026, 11, 1, tzinfo=UTC)
    assert parse_range(None, "2026-11-01", now=NOW, default=HOUR).start == end - HOUR


def test_since_counts_back_from_the_end() -> None:
    found = parse_range(None, "2026-11-01", since="1d", now=NOW, default=HOUR)
    assert found == TimeRange(datetime(2026, 10, 31, tzinfo=UTC), datetime(2026, 11, 1, tzinfo=UTC))


def test_a_range_in_a_zone_and_in_epoch_seconds() -> None:
    found = parse_range(
        "2026-07-01", "2026-07-02", now=NOW, default=HOUR, tz=ZoneInfo("Europe/Paris")
    )
    assert found.start == datetime(2026, 6, 30, 22, tzinfo=UTC) and found.span == 24 * HOUR
    numbers = parse_range(1_700_000_000, 1_700_003_600, now=NOW, default=HOUR, epoch=True)
    assert numbers.span == HOUR


def test_an_inclusive_end_takes_in_its_own_instant() -> None:
    same = "2026-11-01T10:00:00Z"
    found = parse_range(same, same, now=NOW, default=HOUR, end_inclusive=True)
    assert found.span == timedelta(microseconds=1)


NAMES = ("startTime", "endTime", "since")


@pytest.mark.parametrize(
    ("kwargs", "field", "words"),
    [
        ({"start": "bad"}, "startTime", ("RFC 3339",)),
        ({"end": "bad"}, "endTime", ("RFC 3339",)),
        (
            {"start": "2026-11-02", "end": "2026-11-01"},
            "endTime",
            ("must be after startTime", "2026-11-02T00:00:00Z"),
        ),
        ({"start": "2026-11-01", "end": "2026-11-01"}, "endTime", ("must be after startTime",)),
        ({"since": "2w", "longest_since": timedelta(days=7)}, "since", ("from 1s to 7d",)),
        ({"since": "0s"}, "since", ("from 1s",)),
        ({"since": "soon"}, "since", ("such as 15m",)),
        ({"start": "2026-11-01", "since": "1h"}, "since", ("cannot be combined with startTime",)),
        ({"start": "2020-01-01", "max_span": timedelta(days=30)}, "startTime", ("30d",)),
        ({"default": timedelta(days=999_999)}, "startTime", ("too far back",)),
    ],
)
def test_every_range_refusal_names_its_field_and_limit(
    kwargs: dict[str, Any], field: str, words: tuple[str, ...]
) -> None:
    args = {"start": None, "end": None, "now": NOW, "default": HOUR, "names": NAMES, **kwargs}
    error = refused(parse_range, **args)
    assert error.field == field, error
    for word in words:
        assert word in error.message, error


def test_open_bounds_are_checked_only_when_both_are_given() -> None:
    assert parse_bounds(None, None) == (None, None)
    assert parse_bounds("2026-11-01", None) == (datetime(2026, 11, 1, tzinfo=UTC), None)
    assert parse_bounds(None, "", names=("since", "until")) == (None, None)
    since, until = parse_bounds("1h", None, names=("since", "until"), now=NOW, relative="before")
    assert since == NOW - HOUR and until is None
    error = refused(parse_bounds, "2026-11-02", "2026-11-01", names=("since", "until"))
    assert error.field == "until" and "must be after since" in error.message
    assert refused(parse_bounds, "x", None).field == "start"


# -- over HTTP: each API names the parameter it was given --------------------------------------


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with ServerProcess(tmp_path_factory.mktemp("timerange") / "data") as proc:
        yield proc


def _get(path: str, **params: str) -> tuple[str, str, None]:
    return "GET", f"{path}?{urllib.parse.urlencode(params)}", None


BAD_START = [
    _get("/api/traces", start="yesterday"),
    _get("/api/errors", start="yesterday"),
    _get("/api/timeline", start="yesterday"),
    _get("/api/records", start="yesterday"),
    _get("/api/cost", start="yesterday"),
    _get("/api/prices/missing", start="yesterday"),
    _get("/api/reports/cost", start="yesterday"),
    _get("/api/metrics", start="yesterday"),
    _get("/api/metrics/list", start="yesterday"),
    ("POST", "/api/cost/recompute", {"start": "yesterday", "dryRun": True}),
    ("POST", "/api/imports/known", {"requestIds": [], "start": "yesterday", "end": "2026-11-01"}),
]


@pytest.mark.parametrize(("method", "path", "body"), BAD_START, ids=[p for _, p, _ in BAD_START])
def test_a_bad_start_is_a_problem_naming_start(
    server: ServerProcess, method: str, path: str, body: Any
) -> None:
    status, answer = call(server.url, method, path, body)
    assert status == 400, answer
    assert answer["field"] == "start", answer
    assert "RFC 3339" in answer["detail"] and "'yesterday'" in answer["detail"], answer


def test_each_api_names_its_own_start_field(server: ServerProcess) -> None:
    status, answer = call(
        server.url, "POST", "/api/query", {"queryString": "stats count(*)", "startTime": "x"}
    )
    assert (status, answer["field"]) == (400, "startTime"), answer
    body = metric_query(StartTime="x", EndTime=1_700_000_000)
    status, answer = call(server.url, "POST", "/api/metrics", body)
    assert (status, answer["field"]) == (400, "StartTime"), answer


def test_a_range_ending_before_it_starts_names_end(server: ServerProcess) -> None:
    params = {"start": "2026-11-02T00:00:00Z", "end": "2026-11-01T00:00:00Z"}
    for path in ("/api/traces", "/api/records", "/api/cost", "/api/metrics", "/api/errors"):
        status, answer = call(server.url, *_get(path, **params)[:2])
        assert status == 400 and answer["field"] == "end", (path, answer)
        assert "must be after start (2026-11-02T00:00:00Z)" in answer["detail"], (path, answer)


def test_a_since_past_its_limit_names_since_and_the_limit(server: ServerProcess) -> None:
    status, answer = call(server.url, *_get("/api/metrics", since="456d")[:2])
    assert status == 400 and answer["field"] == "since", answer
    assert "from 1s to 455d" in answer["detail"], answer
