"""The time range a page's URL names, and the histogram query the Logs page derives."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs

import pytest

from llmtrail.errors import ValidationError
from llmtrail.web.logs import histogram_query
from llmtrail.web.time_range import period_for, time_range

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)


def test_relative_and_absolute_ranges_round_trip_through_the_url() -> None:
    last = time_range({"range": "3h"}, NOW)
    assert (last.start, last.end, last.label) == (NOW - timedelta(hours=3), NOW, "last 3h")
    assert parse_qs(last.query(q="x", by=["a", "b"], gone=None)) == {
        "range": ["3h"],
        "q": ["x"],
        "by": ["a", "b"],
    }
    fixed = time_range({"start": "2026-12-01T10:00", "end": "2026-12-02T10:00:00Z"}, NOW)
    assert fixed.start == datetime(2026, 12, 1, 10, tzinfo=UTC)
    assert time_range({k: v[0] for k, v in parse_qs(fixed.query()).items()}, NOW) == fixed
    assert time_range({}, NOW).relative == "1h"


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"range": "2y"}, "range"),
        ({"start": "2026-12-01T00:00Z"}, "end"),
        ({"end": "2026-12-01T00:00Z"}, "start"),
        ({"start": "yesterday", "end": "2026-12-01T00:00Z"}, "start"),
        ({"start": "2026-12-02T00:00Z", "end": "2026-12-01T00:00Z"}, "end"),
    ],
)
def test_bad_ranges_name_their_parameter(params: dict[str, str], field: str) -> None:
    with pytest.raises(ValidationError) as raised:
        time_range(params, NOW)
    assert raised.value.field == field


def test_chart_periods_are_minutes_with_bounded_points() -> None:
    for seconds in (900, 3600, 86400, 30 * 86400, 400 * 86400):
        period = period_for(seconds)
        assert period % 60 == 0 and seconds / period <= 121


def test_the_histogram_counts_what_the_query_filters_before_it_aggregates() -> None:
    text = 'filter status = "ERROR" | fields modelId | stats count(*) by modelId | limit 5'
    assert histogram_query(text, 300) == (
        'filter status = "ERROR" | fields modelId | stats count(*) as records by bin(5m) as t'
    )
