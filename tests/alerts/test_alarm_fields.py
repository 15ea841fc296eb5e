"""PutMetricAlarm's fields: what is accepted, and the field each refusal names."""

from __future__ import annotations

from typing import Any

import pytest

from llmtrail.alerts.alarm import notifier_of, parse_alarm
from llmtrail.errors import ValidationError

SEED = {  # the seed's token alarm, as put-metric-alarm takes it
    "AlarmName": "hourly-tokens",
    "MetricName": "InputTokenCount",
    "Namespace": "AWS/Bedrock",
    "Statistic": "Sum",
    "Dimensions": [{"Name": "ModelId", "Value": "sim/echo"}],
    "Period": 3600,
    "EvaluationPeriods": 1,
    "Threshold": 10000,
    "ComparisonOperator": "GreaterThanThreshold",
    "TreatMissingData": "notBreaching",
    "AlarmActions": ["arn:aws:sns:us-east-1:123456789012:ops"],
}


def test_round_trip_keeps_the_fields() -> None:
    alarm = parse_alarm(SEED)
    doc = alarm.to_dict()
    for key, value in SEED.items():
        assert doc[key] == value
    assert parse_alarm(doc) == alarm


def test_an_arn_action_names_its_last_segment() -> None:
    assert notifier_of("arn:aws:sns:us-east-1:123456789012:ops") == "ops"
    assert notifier_of("ops") == "ops"


def test_a_query_alarm() -> None:
    alarm = parse_alarm(
        {
            "Query": 'filter status = "ERROR" | stats count(*)',
            "Period": 10,
            "Threshold": 5,
            "ComparisonOperator": "GreaterThanOrEqualToThreshold",
        },
        "errors",
    )
    assert alarm.source == "query" and alarm.period == 10


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"Period": 45}, "Period"),
        ({"Period": 5}, "Period"),
        ({"Statistic": "Median"}, "Statistic"),
        ({"ExtendedStatistic": "p99"}, "Statistic"),  # both given
        ({"MetricName": "Nope"}, "MetricName"),
        ({"Namespace": "AWS/EC2"}, "Namespace"),
        ({"ComparisonOperator": "Bigger"}, "ComparisonOperator"),
        ({"TreatMissingData": "zero"}, "TreatMissingData"),
        ({"Threshold": "10"}, "Threshold"),
        ({"Threshold": float("inf")}, "Threshold"),
        ({"EvaluationPeriods": 0}, "EvaluationPeriods"),
        ({"DatapointsToAlarm": 2}, "DatapointsToAlarm"),
        ({"EvaluationPeriods": 200}, "EvaluationPeriods"),  # 200 hours > 7 days
        ({"AlarmActions": ["a"] * 6}, "AlarmActions"),
        ({"Dimensions": [{"Name": "ModelId"}]}, "Dimensions[0]"),
        ({"ActionsEnabled": "yes"}, "ActionsEnabled"),
        ({"Colour": "red"}, "Colour"),
        ({"AlarmName": ""}, "AlarmName"),
        ({"Query": "stats count(*)"}, "MetricName"),  # two sources
    ],
)
def test_refusals_name_the_field(change: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        parse_alarm({**SEED, **change})
    assert caught.value.field == field


@pytest.mark.parametrize(
    "query",
    ["fields @timestamp", "stats count(*) by modelId", "stats count(*), sum(latencyMs)", "stats ("],
)
def test_a_query_must_end_in_one_stats_value(query: str) -> None:
    doc = {k: v for k, v in SEED.items() if k not in ("MetricName", "Statistic", "Dimensions")}
    with pytest.raises(ValidationError) as caught:
        parse_alarm({**doc, "Query": query})
    assert caught.value.field == "Query"


def test_the_url_name_must_agree_with_alarm_name() -> None:
    with pytest.raises(ValidationError) as caught:
        parse_alarm(SEED, "other")
    assert caught.value.field == "AlarmName"
