"""Metric math: parsing, alignment by timestamp, the functions, and errors naming the
expression."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from llmtrail.errors import ValidationError
from llmtrail.metrics.math import evaluate_expression
from llmtrail.metrics.model import MetricDataResult

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def at(*minutes: int) -> list[datetime]:
    return [T0 + timedelta(minutes=m) for m in minutes]


M1 = MetricDataResult("m1", "input", at(0, 1, 2), [1.0, 2.0, 3.0])
M2 = MetricDataResult("m2", "output", at(1, 2, 3), [10.0, 20.0, 30.0])
INPUTS = {"m1": M1, "m2": M2}


def run(expression: str, **options: object) -> list[MetricDataResult]:
    return evaluate_expression(expression, INPUTS, period=60, **options)  # type: ignore[arg-type]


def points(result: MetricDataResult) -> dict[int, float]:
    return {
        int((t - T0).total_seconds() // 60): v
        for t, v in zip(result.timestamps, result.values, strict=True)
    }


def test_series_arithmetic_aligns_by_timestamp() -> None:
    (total,) = run("m1 + m2")
    assert points(total) == {1: 12.0, 2: 23.0}
    (ratio,) = run("m2 / m1")
    assert points(ratio) == {1: 5.0, 2: 20 / 3}


def test_precedence_and_associativity() -> None:
    (value,) = run("-m1 * 2 + 1")
    assert points(value) == {0: -1.0, 1: -3.0, 2: -5.0}
    (power,) = run("2 ^ 3 ^ 2 + m1 * 0")
    assert set(points(power).values()) == {512.0}
    (grouped,) = run("(m1 + 1) * 2")
    assert points(grouped) == {0: 4.0, 1: 6.0, 2: 8.0}


def test_sum_of_metrics_is_per_timestamp_over_the_series_that_have_a_point() -> None:
    (total,) = run("SUM(METRICS())")
    assert points(total) == {0: 1.0, 1: 12.0, 2: 23.0, 3: 30.0}
    (highest,) = run("MAX(METRICS())")
    assert points(highest) == {0: 1.0, 1: 10.0, 2: 20.0, 3: 30.0}
    (mean,) = run("AVG(METRICS('m'))")
    assert points(mean)[1] == 6.0


def test_metric_ids_limit_what_metrics_stands_for() -> None:
    (only,) = evaluate_expression("SUM(METRICS())", INPUTS, period=60, metric_ids=["m1"])
    # one series: its SUM is a scalar, drawn over every input's timestamps
    assert only.values == [6.0] * 4


def test_period_and_per_second_rates() -> None:
    (per_second,) = run("m1 / PERIOD(m1)")
    assert per_second.values == pytest.approx([1 / 60, 2 / 60, 3 / 60])
    (rate,) = run("RATE(m2)")
    assert points(rate) == pytest.approx({2: 10 / 60, 3: 10 / 60})
    (diff,) = run("DIFF(m2)")
    assert points(diff) == {2: 10.0, 3: 10.0}


def test_fill_and_abs() -> None:
    (filled,) = run("FILL(m2, 0)")
    assert points(filled) == {0: 0.0, 1: 10.0, 2: 20.0, 3: 30.0}
    (ranged,) = run("FILL(m1, 7)", start=T0, end=T0 + timedelta(minutes=5))
    assert points(ranged) == {0: 1.0, 1: 2.0, 2: 3.0, 3: 7.0, 4: 7.0}
    (repeated,) = run("FILL(m1, REPEAT)", end=T0 + timedelta(minutes=4))
    assert points(repeated)[3] == 3.0
    (absolute,) = run("ABS(m1 - 2)")
    assert absolute.values == [1.0, 0.0, 1.0]


def test_division_by_zero_leaves_a_gap() -> None:
    (value,) = run("m1 / (m1 - 2)")
    assert points(value) == {0: -1.0, 2: 3.0}


def test_search_goes_through_the_callback() -> None:
    asked: list[tuple[str, str, int]] = []

    def search(expression: str, stat: str, period: int) -> list[MetricDataResult]:
        asked.append((expression, stat, period))
        return [
            MetricDataResult("", "app-a", at(0), [4.0]),
            MetricDataResult("", "app-b", at(0), [6.0]),
        ]

    text = "SEARCH('{AWS/Bedrock,ApplicationName} MetricName=\"InputTokenCount\"', 'Sum', 3600)"
    found = run(text, search=search)
    assert [r.label for r in found] == ["app-a", "app-b"]
    assert asked == [('{AWS/Bedrock,ApplicationName} MetricName="InputTokenCount"', "Sum", 3600)]
    (total,) = run(f"SUM({text})", search=search)
    assert total.values == [10.0]
    doubled = run(f"{text} * 2", search=search)
    assert [r.values for r in doubled] == [[8.0], [12.0]]


@pytest.mark.parametrize(
    ("expression", "says"),
    [
        ("m1 +", "expected a number, a metric id or a function"),
        ("(m1", "expected ')'"),
        ("m1 m2", "expected an operator"),
        ("m3 * 2", "unknown id 'm3'"),
        ("NOPE(m1)", "NOPE is not supported"),
        ("m1 $ 2", "unexpected character '$'"),
        ("PERIOD(2)", "PERIOD takes a metric id"),
        ("SEARCH('x', 'Sum')", "SEARCH is not available here"),
        ("METRICS() + METRICS()", "between two lists"),
        ("", "is required"),
    ],
)
def test_errors_name_the_expression(expression: str, says: str) -> None:
    with pytest.raises(ValidationError) as error:
        run(expression)
    assert error.value.field == "expression"
    assert says in error.value.message
    if expression:
        assert repr(expression) in error.value.message


def test_deep_nesting_is_refused_not_a_crash() -> None:
    with pytest.raises(ValidationError, match="nested too deeply"):
        run("(" * 500 + "m1" + ")" * 500)
