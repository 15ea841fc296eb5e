"""CloudWatch's alarm shapes over llmtrail's alarm fields, both ways, as pure functions:
what CloudWatch has no field for (a Logs Insights query, a budget) is said in CloudWatch's
terms and read back from them, and answers stay within the output shapes' limits."""

from __future__ import annotations

import json
from typing import Any

import pytest

from llmtrail.alerts.alarm import parse_alarm
from llmtrail.server.aws.cloudwatch_alarm_shapes import (
    MAX_HISTORY_DATA,
    MAX_REASON_DATA,
    alarm_document,
    history_item,
    metric_alarm,
    reason_data,
)
from llmtrail.server.aws.operations import AwsError

ACCOUNT = "123456789012"
BASE = {"EvaluationPeriods": 1, "Threshold": 80.0, "ComparisonOperator": "GreaterThanThreshold"}


def round_trip(params: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(llmtrail's stored fields, DescribeAlarms' MetricAlarm) for PutMetricAlarm's params."""
    doc = alarm_document({"AlarmName": "a", **params}, ACCOUNT)
    stored = parse_alarm(doc, "a").to_dict()
    return stored, metric_alarm(stored, "us-east-1", ACCOUNT, None)


def test_a_budget_alarm_is_a_metric_of_llmtrails_budget_namespace() -> None:
    params = {
        **BASE,
        "Namespace": "llmtrail/Budgets",
        "MetricName": "PercentUsed",
        "Dimensions": [{"Name": "BudgetName", "Value": "claims"}],
        "Statistic": "Maximum",
        "Period": 300,
    }
    stored, described = round_trip(params)
    assert stored["Budget"] == "claims" and "MetricName" not in stored
    assert {k: described[k] for k in params} == params


def test_a_query_alarm_reads_back_as_the_metrics_list_it_was_put_as() -> None:
    metrics = [
        {
            "Id": "q1",
            "Expression": 'filter status = "ERROR" | stats count(*)',
            "Label": "Logs Insights query",
            "Period": 300,
            "ReturnData": True,
        }
    ]
    stored, described = round_trip(
        {**BASE, "Metrics": metrics, "Tags": [{"Key": "k", "Value": "v"}]}
    )
    assert stored["Query"] == metrics[0]["Expression"] and stored["Period"] == 300
    assert described["Metrics"] == metrics
    assert "Tags" not in stored  # accepted, not kept


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"Namespace": "llmtrail/Budgets", "MetricName": "Spend", "Period": 60}, "ValidationError"),
        ({"Namespace": "AWS/Bedrock", "Period": 60}, "MissingParameter"),
        ({"MetricName": "Invocations", "Period": 60, "Statistic": "Sum"}, "MissingParameter"),
        ({"EvaluationCriteria": {}}, "InvalidParameterValue"),
        (
            {"Metrics": [{"Id": "m1", "MetricStat": {"Metric": {"MetricName": "Invocations",
             "Namespace": "AWS/Bedrock"}, "Period": 60, "Stat": "Sum"}, "AccountId": "999"}]},
            "InvalidParameterValue",
        ),
        ({"Metrics": [{"Id": "m1", "Expression": "stats count(*)", "Period": 60,
          "ReturnData": False}]}, "ValidationError"),
    ],
)  # fmt: skip
def test_refusals_name_cloudwatchs_codes(params: dict[str, Any], code: str) -> None:
    with pytest.raises(AwsError) as caught:
        alarm_document({"AlarmName": "a", **BASE, **params}, ACCOUNT)
    assert caught.value.code == code


def test_reason_data_keeps_the_newest_values_that_fit() -> None:
    values = [float(i) for i in range(5000)]
    text = reason_data({"values": values, "threshold": 1.0, "period": 60})
    assert text is not None and len(text) <= MAX_REASON_DATA
    kept = json.loads(text)
    assert kept["threshold"] == 1.0 and kept["values"] == values[-len(kept["values"]) :]
    assert reason_data({}) is None
    assert json.loads(reason_data({"a": [1, None]}) or "") == {"a": [1, None]}


def test_history_of_a_long_reason_stays_within_the_shape() -> None:
    item = {
        "AlarmName": "a",
        "Timestamp": "2026-12-06T10:00:00.123Z",
        "HistoryItemType": "StateUpdate",
        "HistorySummary": "Alarm updated from OK to ALARM",
        "OldState": "OK",
        "NewState": "ALARM",
        "Reason": "Threshold Crossed: " + "1.5, " * 3000,
        "Value": 1.5,
    }
    out = history_item(item)
    data = json.loads(out["HistoryData"])
    assert len(out["HistoryData"]) <= MAX_HISTORY_DATA
    assert data["oldState"] == {"stateValue": "OK"} and data["value"] == 1.5
    assert data["newState"]["stateReason"].startswith("Threshold Crossed: 1.5, ")
    assert out["Timestamp"].isoformat() == "2026-12-06T10:00:00.123000+00:00"
