"""Report scopes: local wall-clock bounds, validation, and the curated public API."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

import llmtrail.reports
from llmtrail.errors import ValidationError
from llmtrail.reports import ReportScope, build_report, render

from .conftest import Dataset


def test_naive_bounds_are_wall_clock_time_in_the_zone() -> None:
    scope = ReportScope(datetime(2026, 2, 1), datetime(2026, 3, 15), tz="America/New_York")
    assert scope.params()["start"] == datetime(2026, 2, 1, 5, tzinfo=UTC)  # EST
    assert scope.params()["end"] == datetime(2026, 3, 15, 4, tzinfo=UTC)  # EDT since 8 March
    assert scope.describe() == {
        "start": "2026-02-01T05:00:00Z",
        "end": "2026-03-15T04:00:00Z",
        "workspace": "default",
        "tz": "America/New_York",
    }
    days = scope.local_days()
    assert (days[0], days[-1], len(days)) == (date(2026, 2, 1), date(2026, 3, 14), 42)


def test_aware_bounds_are_kept() -> None:
    start = datetime(2026, 1, 31, 23, tzinfo=UTC)
    scope = ReportScope(start, datetime(2026, 2, 1, 1, tzinfo=UTC), tz="Asia/Tokyo")
    assert scope.start == start
    assert scope.local_days() == [date(2026, 2, 1)]  # 08:00 to 10:00 in Tokyo


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"tz": "Mars/Olympus"}, "tz"),
        ({"tz": "../etc/passwd"}, "tz"),
        ({"end": datetime(2026, 1, 1)}, "end"),
        ({"workspace": ""}, "workspace"),
    ],
)
def test_bad_scopes_name_the_field(kwargs: dict[str, object], field: str) -> None:
    args: dict[str, object] = {"start": datetime(2026, 2, 1), "end": datetime(2026, 3, 1)}
    with pytest.raises(ValidationError) as caught:
        ReportScope(**(args | kwargs))  # type: ignore[arg-type]
    assert caught.value.field == field


def test_bad_names_formats_and_tables(dataset: Dataset) -> None:
    with pytest.raises(ValidationError, match="performance\\|cost\\|chargeback"):
        build_report(dataset.db, "latency", dataset.scope)
    with pytest.raises(ValidationError) as caught:
        build_report(dataset.db, "cost", dataset.scope, dimension="modelId")
    assert caught.value.field == "dimension"
    report = build_report(dataset.db, "cost", dataset.scope)
    with pytest.raises(ValidationError, match="json\\|csv\\|html\\|pdf"):
        render(report, "xlsx")
    with pytest.raises(ValidationError, match="models\\|usage\\|daily"):
        render(report, "csv", table="tenants")
    with pytest.raises(ValidationError):
        render(report, "json", table="usage")


def test_public_api_is_sorted_and_importable() -> None:
    names = llmtrail.reports.__all__
    # constants, then classes, then functions, each alphabetical (ruff's RUF022 order)
    assert names == sorted(names, key=lambda n: (not n.isupper(), not n[0].isupper(), n))
    assert all(hasattr(llmtrail.reports, name) for name in names)
