"""CloudWatch's alarm shapes over llmtrail's alarms: pure functions from one to the other.

An llmtrail alarm already is ``PutMetricAlarm``'s fields (`llmtrail.alerts.alarm`), so a
metric alarm passes through as it is. What CloudWatch has no field for is said in
CloudWatch's own terms, both ways, so that what ``DescribeAlarms`` answers can be put back:

- a **Logs Insights query** alarm (llmtrail's ``Query``) is a ``Metrics`` list of one
  ``MetricDataQuery`` whose ``Expression`` is the query (CloudWatch's Expression holds a
  metric math expression or a Metrics Insights query; here it holds a Logs Insights query);
- a **budget** alarm (llmtrail's ``Budget``) is the metric ``PercentUsed`` of namespace
  ``llmtrail/Budgets`` with the dimension ``BudgetName``, statistic ``Maximum``;
- a ``Metrics`` list of one ``MetricStat`` is the same alarm as ``MetricName`` with its
  fields, and is stored (and described) that way.

Metric math over several metrics, anomaly detection, PromQL criteria, evaluation windows and
warm-up are not llmtrail's; each is refused naming the parameter. Output strings are kept
within the output shapes' limits (a reason listing thousands of datapoints is shortened).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from llmtrail.alerts.alarm import STATISTICS
from llmtrail.metrics.model import NAMESPACE
from llmtrail.record import parse_timestamp
from llmtrail.server.aws.operations import AwsError

__all__ = [
    "BUDGET_DIMENSION",
    "BUDGET_METRIC",
    "BUDGET_NAMESPACE",
    "alarm_arn",
    "alarm_document",
    "history_item",
    "metric_alarm",
]

BUDGET_NAMESPACE = "llmtrail/Budgets"
BUDGET_METRIC = "PercentUsed"
BUDGET_DIMENSION = "BudgetName"
QUERY_ID = "q1"
QUERY_LABEL = "Logs Insights query"

# CloudWatch's error codes (what boto3 shows as Error.Code)
VALIDATION = "ValidationError"
INVALID_VALUE = "InvalidParameterValue"
COMBINATION = "InvalidParameterCombination"
MISSING = "MissingParameter"

UNSUPPORTED = {
    "ThresholdMetricId": "anomaly detection alarms",
    "EvaluationCriteria": "PromQL alarms",
    "EvaluationInterval": "PromQL alarms",
    "EvaluationWindow": "evaluation windows (alarms slide with the evaluation time)",
    "WarmUpConfiguration": "warm-up periods",
    "ActionConfiguration": "action configurations",
}
ANOMALY_COMPARISONS = (
    "LessThanLowerOrGreaterThanUpperThreshold",
    "LessThanLowerThreshold",
    "GreaterThanUpperThreshold",
)
COPIED = (
    "AlarmDescription",
    "ActionsEnabled",
    "OKActions",
    "AlarmActions",
    "InsufficientDataActions",
    "EvaluationPeriods",
    "DatapointsToAlarm",
    "Threshold",
    "ComparisonOperator",
    "TreatMissingData",
)
SINGLE_METRIC = ("MetricName", "Namespace", "Dimensions", "Period", "Unit")
REQUIRED = ("EvaluationPeriods", "Threshold", "ComparisonOperator")
MAX_REASON = 1023
MAX_REASON_DATA = 4000
MAX_SUMMARY = 255
MAX_HISTORY_DATA = 4095


# -- PutMetricAlarm -> an llmtrail alarm --------------------------------------------------
def alarm_document(params: Mapping[str, Any], account: str) -> dict[str, Any]:
    """The llmtrail alarm fields (`parse_alarm`'s input) for ``PutMetricAlarm``'s
    ``params``; refusals are `AwsError` with CloudWatch's codes."""
    for key, what in UNSUPPORTED.items():
        if key in params:
            raise AwsError(INVALID_VALUE, f"{key}: llmtrail does not support {what}")
    if params.get("ComparisonOperator") in ANOMALY_COMPARISONS:
        raise AwsError(
            INVALID_VALUE,
            f"ComparisonOperator {params['ComparisonOperator']} is for anomaly detection "
            "alarms, which llmtrail does not support",
        )
    if params.get("EvaluateLowSampleCountPercentile", "evaluate") != "evaluate":
        raise AwsError(
            INVALID_VALUE,
            "EvaluateLowSampleCountPercentile: llmtrail always evaluates percentiles "
            "(only 'evaluate' is accepted)",
        )
    for key in REQUIRED:
        if params.get(key) is None:
            raise AwsError(MISSING, f"The parameter {key} is required.")
    doc = {key: params[key] for key in COPIED if key in params}
    if "Metrics" in params:
        given = [k for k in (*SINGLE_METRIC, "Statistic", "ExtendedStatistic") if k in params]
        if given:
            raise AwsError(
                COMBINATION,
                f"{given[0]} cannot be given with Metrics: the metric and its period go in "
                "the Metrics list",
            )
        doc.update(_from_metrics(params["Metrics"], account))
    elif "MetricName" in params:
        doc.update(_single_metric(params))
    else:
        raise AwsError(
            MISSING,
            "Give MetricName (with Namespace, Statistic or ExtendedStatistic, and Period) "
            "or Metrics",
        )
    return doc


def _single_metric(params: Mapping[str, Any]) -> dict[str, Any]:
    if params.get("Period") is None:
        raise AwsError(MISSING, "The parameter Period is required with MetricName.")
    namespace = params.get("Namespace")
    if namespace is None:
        raise AwsError(MISSING, "The parameter Namespace is required with MetricName.")
    if namespace == BUDGET_NAMESPACE:
        return _budget(params)
    if namespace != NAMESPACE:
        raise AwsError(
            VALIDATION,
            f"Namespace must be {NAMESPACE} (llmtrail's invocation metrics) or "
            f"{BUDGET_NAMESPACE} (a budget's {BUDGET_METRIC}), got {namespace!r}",
        )
    keys = (*SINGLE_METRIC, "Statistic", "ExtendedStatistic")
    return {key: params[key] for key in keys if key in params}


def _budget(params: Mapping[str, Any]) -> dict[str, Any]:
    dims = params.get("Dimensions") or []
    if (
        params.get("MetricName") != BUDGET_METRIC
        or len(dims) != 1
        or dims[0].get("Name") != BUDGET_DIMENSION
    ):
        raise AwsError(
            VALIDATION,
            f"A {BUDGET_NAMESPACE} alarm watches MetricName {BUDGET_METRIC} with one "
            f"dimension {BUDGET_DIMENSION} (the budget's name)",
        )
    if params.get("Statistic", "Maximum") != "Maximum" or "ExtendedStatistic" in params:
        raise AwsError(VALIDATION, f"A budget's {BUDGET_METRIC} has one statistic: Maximum")
    return {"Budget": dims[0]["Value"], "Period": params["Period"]}


def _from_metrics(metrics: list[dict[str, Any]], account: str) -> dict[str, Any]:
    if len(metrics) != 1:
        raise AwsError(
            INVALID_VALUE,
            f"Metrics has {len(metrics)} entries: llmtrail's alarms watch one metric (one "
            "MetricStat) or one Logs Insights query (one Expression); metric math over "
            "several metrics is not supported",
        )
    query = metrics[0]
    if query.get("ReturnData") is False:
        raise AwsError(VALIDATION, "Metrics: exactly one entry must have ReturnData true")
    if query.get("AccountId") not in (None, account):
        raise AwsError(
            INVALID_VALUE, f"Metrics[0].AccountId: only this account ({account}) is held here"
        )
    stat, expression = query.get("MetricStat"), query.get("Expression")
    if (stat is None) == (expression is None):
        raise AwsError(VALIDATION, "Metrics[0] must have either MetricStat or Expression")
    if stat is not None:
        if "Period" in query:
            raise AwsError(COMBINATION, "Metrics[0].Period: the period goes in MetricStat")
        metric = stat["Metric"]
        single = {
            "MetricName": metric.get("MetricName"),
            "Namespace": metric.get("Namespace"),
            "Dimensions": metric.get("Dimensions", []),
            "Period": stat["Period"],
        }
        key = "Statistic" if stat["Stat"] in STATISTICS else "ExtendedStatistic"
        single[key] = stat["Stat"]
        if "Unit" in stat:
            single["Unit"] = stat["Unit"]
        return _single_metric(single)
    if query.get("Period") is None:
        raise AwsError(MISSING, "Metrics[0].Period is required with an Expression")
    if not _is_logs_query(expression):
        raise AwsError(
            INVALID_VALUE,
            f"Metrics[0].Expression {expression!r} is not a Logs Insights query: llmtrail's "
            "alarms take a Logs Insights query ending in one stats value (such as "
            "'filter status = \"ERROR\" | stats count(*)'); metric math expressions and "
            "Metrics Insights queries are not supported",
        )
    return {"Query": expression, "Period": query["Period"]}


def _is_logs_query(text: Any) -> bool:
    """Whether ``text`` parses as a Logs Insights query (whether it ends in one ``stats``
    value is `parse_alarm`'s to say, with its own message)."""
    from llmtrail.query import parse_query
    from llmtrail.query.errors import QueryError

    try:
        parse_query(str(text))
    except QueryError:
        return False
    return True


# -- an llmtrail alarm -> MetricAlarm -----------------------------------------------------
def alarm_arn(region: str, account: str, name: str) -> str:
    return f"arn:aws:cloudwatch:{region}:{account}:alarm:{name}"


def metric_alarm(
    doc: Mapping[str, Any], region: str, account: str, configured: datetime | None
) -> dict[str, Any]:
    """``DescribeAlarms``' ``MetricAlarm`` for an alarm as `AlarmStore.describe` gives it
    (its definition and state); ``configured`` is when its configuration last changed."""
    name = doc["AlarmName"]
    out: dict[str, Any] = {
        "AlarmName": name,
        "AlarmArn": alarm_arn(region, account, name),
        "AlarmDescription": doc.get("AlarmDescription") or None,
        "AlarmConfigurationUpdatedTimestamp": configured,
        "ActionsEnabled": doc.get("ActionsEnabled", True),
        "OKActions": list(doc.get("OKActions", [])),
        "AlarmActions": list(doc.get("AlarmActions", [])),
        "InsufficientDataActions": list(doc.get("InsufficientDataActions", [])),
        "StateValue": doc.get("StateValue", "INSUFFICIENT_DATA"),
        "StateReason": _shorten(doc.get("StateReason") or "", MAX_REASON),
        "StateReasonData": reason_data(doc.get("StateReasonData")),
        "StateUpdatedTimestamp": _time(doc.get("StateUpdatedTimestamp")),
        "StateTransitionedTimestamp": _time(doc.get("StateUpdatedTimestamp")),
        "EvaluationPeriods": doc.get("EvaluationPeriods"),
        "DatapointsToAlarm": doc.get("DatapointsToAlarm"),
        "Threshold": doc.get("Threshold"),
        "ComparisonOperator": doc.get("ComparisonOperator"),
        "TreatMissingData": doc.get("TreatMissingData"),
        "EvaluationState": "EVALUATION_ERROR" if doc.get("EvaluationError") else None,
    }
    if doc.get("Query"):
        out["Metrics"] = [
            {
                "Id": QUERY_ID,
                "Expression": doc["Query"],
                "Label": QUERY_LABEL,
                "Period": doc.get("Period"),
                "ReturnData": True,
            }
        ]
    elif doc.get("Budget"):
        out.update(
            MetricName=BUDGET_METRIC,
            Namespace=BUDGET_NAMESPACE,
            Dimensions=[{"Name": BUDGET_DIMENSION, "Value": doc["Budget"]}],
            Statistic="Maximum",
            Period=doc.get("Period"),
        )
    else:
        for key in (*SINGLE_METRIC, "Statistic", "ExtendedStatistic"):
            out[key] = doc.get(key)
    return out


def reason_data(data: Any) -> str | None:
    """``StateReasonData`` as JSON within CloudWatch's 4,000 characters: the stored data as
    it is, or with its oldest ``values`` left out when there are too many to fit."""
    if not data:
        return None
    text = json.dumps(data, separators=(",", ":"))
    if len(text) <= MAX_REASON_DATA:
        return text
    if isinstance(data, dict) and isinstance(data.get("values"), list):
        values = list(data["values"])
        while values and len(text) > MAX_REASON_DATA:
            values = values[len(values) // 2 + 1 :] if len(values) > 1 else []
            text = json.dumps({**data, "values": values}, separators=(",", ":"))
    return text if len(text) <= MAX_REASON_DATA else None


# -- an llmtrail history item -> AlarmHistoryItem -------------------------------------------
def history_item(item: Mapping[str, Any]) -> dict[str, Any]:
    """``DescribeAlarmHistory``'s ``AlarmHistoryItem``; ``HistoryData`` is CloudWatch's JSON
    (``oldState`` / ``newState`` for a state change, ``type`` for a configuration change)."""
    kind = item.get("HistoryItemType")
    summary = str(item.get("HistorySummary") or kind or "")
    if kind == "StateUpdate":
        data: dict[str, Any] = {
            "version": "1.0",
            "oldState": {"stateValue": item.get("OldState")},
            "newState": {"stateValue": item.get("NewState"), "stateReason": item.get("Reason")},
        }
        if item.get("Value") is not None:
            data["value"] = item["Value"]
    elif kind == "ConfigurationUpdate":
        data = {"version": "1.0", "type": "Create" if summary.endswith("created") else "Update"}
    else:
        skip = ("AlarmName", "Timestamp", "HistoryItemType", "HistorySummary")
        data = {"version": "1.0", **{k: v for k, v in item.items() if k not in skip}}
    text = json.dumps(data, separators=(",", ":"))
    if len(text) > MAX_HISTORY_DATA and kind == "StateUpdate":
        reason = str(item.get("Reason") or "")
        data["newState"]["stateReason"] = _shorten(reason, len(reason) - len(text) + 4000)
        text = json.dumps(data, separators=(",", ":"))
    return {
        "AlarmName": item.get("AlarmName"),
        "AlarmType": "MetricAlarm",
        "Timestamp": _time(item.get("Timestamp")),
        "HistoryItemType": kind,
        "HistorySummary": _shorten(summary, MAX_SUMMARY),
        "HistoryData": text if len(text) <= MAX_HISTORY_DATA else None,
    }


def _time(value: Any) -> datetime | None:
    return parse_timestamp(value) if isinstance(value, str) and value else None


def _shorten(text: str, limit: int) -> str:
    limit = max(limit, 3)
    return text if len(text) <= limit else text[: limit - 3] + "..."
