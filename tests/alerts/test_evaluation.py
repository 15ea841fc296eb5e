"""CloudWatch's M-out-of-N rule and missing data, as pure functions of the datapoints."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from llmtrail.alerts.alarm import parse_alarm
from llmtrail.alerts.evaluation import breaches, decide, slot, windows

NOW = datetime(2026, 12, 6, 7, 0, 15, tzinfo=UTC)


def alarm(**fields: object):  # type: ignore[no-untyped-def]
    doc = {
        "MetricName": "InvocationClientErrors",
        "Statistic": "Sum",
        "Threshold": 5,
        "ComparisonOperator": "GreaterThanOrEqualToThreshold",
        "Period": 60,
        **fields,
    }
    return parse_alarm(doc, "a")


def test_one_of_one_breaching_is_alarm_and_the_reason_says_so() -> None:
    out = decide(alarm(), [6.0], "OK")
    assert out.state == "ALARM" and out.value == 6.0
    assert "1 out of the last 1 datapoints [6]" in out.reason
    assert "greater than or equal to the threshold (5)" in out.reason


def test_below_threshold_is_ok() -> None:
    assert decide(alarm(), [4.0], "ALARM").state == "OK"


def test_m_out_of_n() -> None:
    a = alarm(EvaluationPeriods=3, DatapointsToAlarm=2)
    assert decide(a, [6.0, 1.0, 6.0], "OK").state == "ALARM"
    assert decide(a, [6.0, 1.0, 1.0], "OK").state == "OK"


@pytest.mark.parametrize(
    ("treat", "state"),
    [
        ("missing", "INSUFFICIENT_DATA"),
        ("notBreaching", "OK"),
        ("breaching", "ALARM"),
        ("ignore", "ALARM"),  # keeps the current state
    ],
)
def test_all_missing(treat: str, state: str) -> None:
    assert decide(alarm(TreatMissingData=treat), [None], "ALARM").state == state


def test_some_missing_counted_as_breaching_with_breaching() -> None:
    a = alarm(EvaluationPeriods=3, DatapointsToAlarm=3, TreatMissingData="breaching")
    assert decide(a, [6.0, None, 7.0], "OK").state == "ALARM"
    assert (
        decide(alarm(EvaluationPeriods=3, DatapointsToAlarm=3), [6.0, None, 7.0], "OK").state
        == "OK"
    )


@pytest.mark.parametrize(
    ("op", "value", "expected"),
    [
        ("GreaterThanThreshold", 5.0, False),
        ("GreaterThanThreshold", 5.1, True),
        ("LessThanThreshold", 4.9, True),
        ("LessThanOrEqualToThreshold", 5.0, True),
        ("GreaterThanOrEqualToThreshold", 5.0, True),
    ],
)
def test_comparisons(op: str, value: float, expected: bool) -> None:
    assert breaches(alarm(ComparisonOperator=op), value) is expected


def test_metric_windows_end_at_the_next_rollup_boundary() -> None:
    periods = windows(alarm(Period=300, EvaluationPeriods=2), NOW)
    assert periods[-1][1] == datetime(2026, 12, 6, 7, 1, tzinfo=UTC)
    assert periods[0][0] == datetime(2026, 12, 6, 6, 51, tzinfo=UTC)
    assert windows(alarm(Period=10), NOW)[-1][1] == datetime(2026, 12, 6, 7, 0, 20, tzinfo=UTC)


def test_query_windows_slide_with_now() -> None:
    a = parse_alarm(
        {
            "Query": 'filter status = "ERROR" | stats count(*)',
            "Threshold": 5,
            "ComparisonOperator": "GreaterThanOrEqualToThreshold",
            "Period": 300,
        },
        "q",
    )
    assert windows(a, NOW) == [(NOW - timedelta(seconds=300), NOW)]


@given(st.lists(st.one_of(st.none(), st.floats(0, 100)), min_size=1, max_size=10))
def test_sums_per_minute_add_up_to_the_period(values: list[float | None]) -> None:
    a = alarm(Period=600)
    period = windows(a, NOW)
    start = period[0][0]
    points = [(start + timedelta(minutes=i), v) for i, v in enumerate(values) if v is not None]
    total = slot(a, period, points)[0]
    present = [v for v in values if v is not None]
    assert total == (pytest.approx(sum(present)) if present else None)
