"""CloudWatch alarms with the official boto3 ``cloudwatch`` client against a running
llmtrail, each answer compared with llmtrail's own ``/api/alarms`` on the same alarms: an
alarm put with boto3 is llmtrail's alarm, one put with llmtrail's API is described by boto3,
a token alarm goes to ALARM on the stored traffic, and DescribeAlarms filters and pages as
llmtrail's list does (SetAlarmState, history and deletion: ``test_cloudwatch_alarms_state``)."""

from __future__ import annotations

import json
import urllib.parse
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.aws.conftest import ACCOUNT, REGION, AwsServer
from tests.harness import call

SNS = f"arn:aws:sns:{REGION}:{ACCOUNT}:ops"
TOKENS = {
    "MetricName": "InputTokenCount",
    "Namespace": "AWS/Bedrock",
    "Statistic": "Sum",
    "Period": 300,
    "EvaluationPeriods": 2,
    "DatapointsToAlarm": 1,
    "Threshold": 1000.0,
    "ComparisonOperator": "GreaterThanThreshold",
}


def quiet(name: str) -> dict[str, Any]:
    """`TOKENS` of a model no call used, ignoring missing data: the evaluation loop, which
    may tick during a test, leaves such an alarm in the state it is in."""
    return {
        **TOKENS,
        "Dimensions": [{"Name": "ModelId", "Value": f"{name}/no-such-model"}],
        "TreatMissingData": "ignore",
    }


# fields llmtrail's API and DescribeAlarms both answer, with the same meaning
SHARED = (
    "AlarmName",
    "ActionsEnabled",
    "OKActions",
    "AlarmActions",
    "InsufficientDataActions",
    "StateValue",
    "StateReason",
    "MetricName",
    "Namespace",
    "Statistic",
    "ExtendedStatistic",
    "Dimensions",
    "Period",
    "Unit",
    "EvaluationPeriods",
    "DatapointsToAlarm",
    "Threshold",
    "ComparisonOperator",
    "TreatMissingData",
)


def api(server: AwsServer, method: str, path: str, body: Any = None) -> Any:
    status, answer = call(server.url, method, path, body)
    assert status == 200, answer
    return answer


def quoted(name: str) -> str:
    return urllib.parse.quote(name, safe="")


def llmtrail_alarm(server: AwsServer, name: str) -> dict[str, Any]:
    return api(server, "GET", f"/api/alarms/{quoted(name)}")


def described(cw: Any, name: str) -> dict[str, Any]:
    alarms = cw.describe_alarms(AlarmNames=[name])["MetricAlarms"]
    assert [a["AlarmName"] for a in alarms] == [name]
    return alarms[0]


def stamp(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def same_time(ours: datetime, theirs: str) -> bool:
    return abs(ours - stamp(theirs)) < timedelta(milliseconds=1)


def assert_same_alarm(boto: dict[str, Any], ours: dict[str, Any]) -> None:
    """DescribeAlarms' MetricAlarm says what llmtrail's API says of the same alarm (a query
    alarm's query and period are its Metrics list's one Expression)."""
    ours = dict(ours)
    if "Query" in ours:
        (query,) = boto["Metrics"]
        assert (query["Expression"], query["Period"]) == (ours.pop("Query"), ours.pop("Period"))
    for key in SHARED:
        if key in ours or key in boto:
            assert boto.get(key) == ours.get(key), key
    assert boto.get("AlarmDescription", "") == ours["AlarmDescription"]
    assert boto["AlarmArn"] == f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:{ours['AlarmName']}"
    assert same_time(boto["StateUpdatedTimestamp"], ours["StateUpdatedTimestamp"])
    data = boto.get("StateReasonData")
    assert (json.loads(data) if data else {}) == ours["StateReasonData"]


def error_of(caught: pytest.ExceptionInfo[ClientError]) -> tuple[str, str]:
    error = caught.value.response["Error"]
    return error["Code"], error["Message"]


def test_an_alarm_put_with_boto3_is_llmtrails_alarm(
    aws_server: AwsServer, cw: Any, unique: str
) -> None:
    cw.put_metric_alarm(
        AlarmName=unique,
        AlarmDescription="input tokens of a model",
        AlarmActions=[SNS],
        OKActions=["ops"],
        Unit="Count",
        **quiet(unique),
    )
    ours = llmtrail_alarm(aws_server, unique)
    assert ours["MetricName"] == "InputTokenCount" and ours["AlarmActions"] == [SNS]
    assert ours["Dimensions"] == quiet(unique)["Dimensions"]
    assert ours["Unit"] == "Count" and ours["StateValue"] == "INSUFFICIENT_DATA"
    boto = described(cw, unique)
    assert_same_alarm(boto, ours)
    history = api(aws_server, "GET", f"/api/alarms/{quoted(unique)}/history")
    created = history["AlarmHistoryItems"][-1]
    assert created["HistoryItemType"] == "ConfigurationUpdate"
    assert same_time(boto["AlarmConfigurationUpdatedTimestamp"], created["Timestamp"])

    # an update is the alarm llmtrail's API shows next, its state left as it was
    cw.put_metric_alarm(
        AlarmName=unique, **{**quiet(unique), "Threshold": 5.0, "Statistic": "Maximum"}
    )
    ours = llmtrail_alarm(aws_server, unique)
    assert ours["Threshold"] == 5.0 and ours["Statistic"] == "Maximum"
    assert ours["AlarmActions"] == [] and "Unit" not in ours
    assert_same_alarm(described(cw, unique), ours)


def test_an_alarm_put_with_llmtrails_api_is_described_and_put_back(
    aws_server: AwsServer, cw: Any, unique: str
) -> None:
    """A Logs Insights query alarm is a Metrics list of one Expression; what DescribeAlarms
    answers can be put back with boto3 unchanged."""
    query = f'filter modelId = "{unique}/no-such-model" | stats sum(input.inputTokenCount)'
    api(
        aws_server,
        "PUT",
        f"/api/alarms/{unique}",
        {
            "Query": query,
            "Period": 600,
            "EvaluationPeriods": 3,
            "DatapointsToAlarm": 2,
            "Threshold": 5,
            "ComparisonOperator": "GreaterThanOrEqualToThreshold",
            "TreatMissingData": "ignore",
            "AlarmActions": ["oncall"],
        },
    )
    boto = described(cw, unique)
    assert boto["Metrics"] == [
        {
            "Id": "q1",
            "Expression": query,
            "Label": "Logs Insights query",
            "Period": 600,
            "ReturnData": True,
        }
    ]
    assert "MetricName" not in boto and "Period" not in boto
    ours = llmtrail_alarm(aws_server, unique)
    assert_same_alarm(boto, ours)

    writable = cw.meta.service_model.operation_model("PutMetricAlarm").input_shape.members
    cw.put_metric_alarm(**{k: v for k, v in boto.items() if k in writable})
    again = llmtrail_alarm(aws_server, unique)
    definition = ("Query", "Period", "EvaluationPeriods", "DatapointsToAlarm", "Threshold")
    assert {k: again[k] for k in definition} == {k: ours[k] for k in definition}
    assert again["AlarmActions"] == ["oncall"]


def test_a_metrics_list_of_one_metric_is_a_metric_alarm(
    aws_server: AwsServer, cw: Any, unique: str
) -> None:
    cw.put_metric_alarm(
        AlarmName=unique,
        Metrics=[
            {
                "Id": "m1",
                "MetricStat": {
                    "Metric": {
                        "Namespace": "AWS/Bedrock",
                        "MetricName": "InvocationLatency",
                        "Dimensions": quiet(unique)["Dimensions"],
                    },
                    "Period": 60,
                    "Stat": "p95",
                },
                "ReturnData": True,
            }
        ],
        EvaluationPeriods=1,
        Threshold=2000,
        ComparisonOperator="GreaterThanThreshold",
        TreatMissingData="ignore",
    )
    ours = llmtrail_alarm(aws_server, unique)
    assert ours["MetricName"] == "InvocationLatency" and ours["ExtendedStatistic"] == "p95"
    assert ours["Period"] == 60 and "Statistic" not in ours
    boto = described(cw, unique)
    assert boto["ExtendedStatistic"] == "p95" and "Metrics" not in boto
    assert_same_alarm(boto, ours)


def test_a_budget_alarm_is_llmtrails_budget_namespace(
    aws_server: AwsServer, cw: Any, unique: str
) -> None:
    """A budget's percentage used, which CloudWatch has no field for, is the metric
    PercentUsed of llmtrail/Budgets with the budget's name as dimension, both ways."""
    budget = {
        "Namespace": "llmtrail/Budgets",
        "MetricName": "PercentUsed",
        "Dimensions": [{"Name": "BudgetName", "Value": f"{unique}-team"}],
        "Statistic": "Maximum",
        "Period": 300,
        "EvaluationPeriods": 1,
        "Threshold": 80.0,
        "ComparisonOperator": "GreaterThanOrEqualToThreshold",
    }
    cw.put_metric_alarm(AlarmName=unique, AlarmActions=[SNS], **budget)
    ours = llmtrail_alarm(aws_server, unique)
    assert ours["Budget"] == f"{unique}-team" and "MetricName" not in ours
    boto = described(cw, unique)
    assert {k: boto[k] for k in budget} == budget
    assert boto["AlarmActions"] == ours["AlarmActions"] == [SNS]


@pytest.mark.parametrize(
    ("change", "code", "words"),
    [
        ({"Period": 45}, "ValidationError", "Period"),
        ({"Namespace": "AWS/EC2"}, "ValidationError", "Namespace"),
        ({"MetricName": "CPUUtilization"}, "ValidationError", "MetricName"),
        ({"DatapointsToAlarm": 3}, "ValidationError", "DatapointsToAlarm"),
        ({"Threshold": None}, "MissingParameter", "Threshold"),
        ({"Period": None}, "MissingParameter", "Period"),
        ({"ComparisonOperator": "GreaterThanUpperThreshold"}, "InvalidParameterValue", "anomaly"),
        ({"EvaluateLowSampleCountPercentile": "ignore"}, "InvalidParameterValue", "percentiles"),
        ({"ThresholdMetricId": "ad1"}, "InvalidParameterValue", "anomaly detection"),
        (
            {"Metrics": [{"Id": "e1", "Expression": "m1 * 2", "Period": 60}]},
            "InvalidParameterCombination",
            "Metrics",
        ),
    ],
)
def test_put_metric_alarm_refusals(
    aws_server: AwsServer, cw: Any, unique: str, change: dict[str, Any], code: str, words: str
) -> None:
    fields = {k: v for k, v in {**TOKENS, **change}.items() if v is not None}
    with pytest.raises(ClientError) as caught:
        cw.put_metric_alarm(AlarmName=unique, **fields)
    got, message = error_of(caught)
    assert got == code and words in message, message
    status, _ = call(aws_server.url, "GET", f"/api/alarms/{unique}")
    assert status == 404  # nothing was stored


@pytest.mark.parametrize(
    ("metrics", "words"),
    [
        (
            [
                {"Id": "e1", "Expression": "m1 / m2", "ReturnData": True, "Period": 60},
                {"Id": "m1", "MetricStat": {"Metric": {"Namespace": "AWS/Bedrock",
                 "MetricName": "Invocations"}, "Period": 60, "Stat": "Sum"}, "ReturnData": False},
            ],
            "metric math",
        ),
        ([{"Id": "e1", "Expression": "m1 * 2", "Period": 60}], "not a Logs Insights query"),
        ([{"Id": "q1", "Expression": "fields @message", "Period": 60}], "stats"),
        ([{"Id": "q1", "Expression": "stats count(*)"}], "Period"),
    ],
)  # fmt: skip
def test_metric_math_is_refused_clearly(
    cw: Any, unique: str, metrics: list[dict[str, Any]], words: str
) -> None:
    with pytest.raises(ClientError) as caught:
        cw.put_metric_alarm(
            AlarmName=unique,
            Metrics=metrics,
            EvaluationPeriods=1,
            Threshold=1,
            ComparisonOperator="GreaterThanThreshold",
        )
    _, message = error_of(caught)
    assert words in message, message


def test_describe_alarms_filters_and_pages_as_llmtrails_list(
    aws_server: AwsServer, cw: Any, unique: str
) -> None:
    names = [f"{unique}-{i}" for i in range(5)]
    for i, name in enumerate(reversed(names)):
        actions = [SNS] if i % 2 else ["arn:aws:sns:us-east-1:123456789012:other"]
        cw.put_metric_alarm(AlarmName=name, AlarmActions=actions, **quiet(unique))
    cw.set_alarm_state(AlarmName=names[1], StateValue="OK", StateReason="checked by hand")
    listed = api(aws_server, "GET", f"/api/alarms?prefix={unique}")["MetricAlarms"]
    assert [a["AlarmName"] for a in listed] == names

    pages = list(
        cw.get_paginator("describe_alarms").paginate(
            AlarmNamePrefix=unique, PaginationConfig={"PageSize": 2}
        )
    )
    assert [len(p["MetricAlarms"]) for p in pages] == [2, 2, 1]
    paged = [a for p in pages for a in p["MetricAlarms"]]
    for boto, ours in zip(paged, listed, strict=True):
        assert_same_alarm(boto, ours)

    ok = api(aws_server, "GET", f"/api/alarms?prefix={unique}&state=OK")["MetricAlarms"]
    by_state = cw.describe_alarms(AlarmNamePrefix=unique, StateValue="OK")["MetricAlarms"]
    assert [a["AlarmName"] for a in by_state] == [a["AlarmName"] for a in ok] == [names[1]]
    by_action = cw.describe_alarms(AlarmNamePrefix=unique, ActionPrefix=SNS)["MetricAlarms"]
    assert [a["AlarmName"] for a in by_action] == [
        a["AlarmName"] for a in listed if SNS in a["AlarmActions"]
    ]
    assert len(by_action) == 2
    picked = cw.describe_alarms(AlarmNames=[names[3], names[0], f"{unique}-none"])
    assert [a["AlarmName"] for a in picked["MetricAlarms"]] == [names[0], names[3]]

    composite = cw.describe_alarms(AlarmNamePrefix=unique, AlarmTypes=["CompositeAlarm"])
    assert composite["CompositeAlarms"] == [] and "MetricAlarms" not in composite
    both = cw.describe_alarms(AlarmNamePrefix=unique, AlarmTypes=["MetricAlarm", "LogAlarm"])
    assert len(both["MetricAlarms"]) == 5 and both["LogAlarms"] == []


def test_describe_alarms_refusals(cw: Any, unique: str) -> None:
    with pytest.raises(ClientError) as caught:
        cw.describe_alarms(AlarmNames=[unique], AlarmNamePrefix=unique)
    assert error_of(caught)[0] == "InvalidParameterCombination"
    with pytest.raises(ClientError) as caught:
        cw.describe_alarms(NextToken="not-a-token")
    assert error_of(caught)[0] == "InvalidNextToken"
    with pytest.raises(ClientError) as caught:
        cw.describe_alarms(ChildrenOfAlarmName=unique, StateValue="OK")
    assert error_of(caught)[0] == "ValidationError"
    assert cw.describe_alarms(ParentsOfAlarmName=unique)["MetricAlarms"] == []


def _summed_tokens(server: AwsServer, model: str) -> float:
    now = datetime.now(UTC)
    result = api(
        server,
        "POST",
        "/api/query",
        {
            "queryString": f'filter modelId = "{model}" | stats sum(input.inputTokenCount)',
            "startTime": (now - timedelta(days=1)).isoformat(),
            "endTime": (now + timedelta(minutes=1)).isoformat(),
        },
    )
    return float(result["results"][0][0]["value"])


def test_a_token_alarm_goes_to_alarm_on_the_stored_traffic(
    aws_server: AwsServer, cw: Any, unique: str
) -> None:
    """Sum of InputTokenCount of sim/fast over a day (the traffic the server stored), put
    with boto3 as a metric alarm and as a Logs Insights query alarm, evaluated now by
    llmtrail: at the total it alarms, one token above it stays OK, and the value it read is
    what llmtrail's query API sums over the same records."""
    total = _summed_tokens(aws_server, "sim/fast")
    assert total > 0
    day = {
        "EvaluationPeriods": 1,
        "ComparisonOperator": "GreaterThanOrEqualToThreshold",
    }
    metric = {
        "MetricName": "InputTokenCount",
        "Namespace": "AWS/Bedrock",
        "Dimensions": [{"Name": "ModelId", "Value": "sim/fast"}],
        "Statistic": "Sum",
        "Period": 86400,
    }
    query = [
        {
            "Id": "q1",
            "Expression": 'filter modelId = "sim/fast" | stats sum(input.inputTokenCount)',
            "Period": 86400,
        }
    ]
    cases = {
        f"{unique}-metric-at": ({**metric, "Threshold": total}, "ALARM"),
        f"{unique}-metric-above": ({**metric, "Threshold": total + 1}, "OK"),
        f"{unique}-query-at": ({"Metrics": query, "Threshold": total}, "ALARM"),
        f"{unique}-query-above": ({"Metrics": query, "Threshold": total + 1}, "OK"),
    }
    for name, (fields, _) in cases.items():
        cw.put_metric_alarm(AlarmName=name, **day, **fields)
        api(aws_server, "POST", f"/api/alarms/{quoted(name)}/evaluate")
    for name, (_, state) in cases.items():
        boto = described(cw, name)
        assert boto["StateValue"] == state, boto["StateReason"]
        assert json.loads(boto["StateReasonData"])["values"] == [total]
        assert_same_alarm(boto, llmtrail_alarm(aws_server, name))
        if state == "ALARM":
            assert boto["StateReason"].startswith("Threshold Crossed: 1 out of the last 1")
    alarming = cw.describe_alarms(AlarmNamePrefix=unique, StateValue="ALARM")["MetricAlarms"]
    assert sorted(a["AlarmName"] for a in alarming) == sorted(
        n for n, (_, s) in cases.items() if s == "ALARM"
    )
