"""An alarm as CloudWatch's ``PutMetricAlarm`` describes one, validated field by field.

The value an alarm watches is one of three things: a metric of the rollups (``MetricName`` +
``Namespace`` + ``Dimensions`` + ``Statistic`` or ``ExtendedStatistic``), a Logs Insights
``Query`` ending in one ``stats`` value (``filter status = "ERROR" | stats count(*)``), or a
budget's percentage used (``Budget``, llmtrail's; the 80 % and 100 % alarms every budget
gets). The rest is CloudWatch's: ``Period`` (10, 30 or a multiple of 60 seconds),
``EvaluationPeriods``, ``DatapointsToAlarm``, ``Threshold``, ``ComparisonOperator``,
``TreatMissingData``, ``AlarmActions`` / ``OKActions`` / ``InsufficientDataActions`` and
``ActionsEnabled``. `to_dict` gives the same field names back, as ``DescribeAlarms`` does.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from llmtrail.errors import ValidationError
from llmtrail.metrics.model import METRIC_NAMES, NAMESPACE

STATISTICS = ("SampleCount", "Average", "Sum", "Minimum", "Maximum")
COMPARISONS: dict[str, str] = {
    "GreaterThanOrEqualToThreshold": ">=",
    "GreaterThanThreshold": ">",
    "LessThanThreshold": "<",
    "LessThanOrEqualToThreshold": "<=",
}
MISSING_DATA = ("missing", "notBreaching", "breaching", "ignore")
STATES = ("OK", "ALARM", "INSUFFICIENT_DATA")
HIGH_RESOLUTION_PERIODS = (10, 30)
MAX_WINDOW_S = 7 * 86400  # Period x EvaluationPeriods, as CloudWatch allows
MAX_QUERY_PERIODS = 10  # a Query alarm runs its query once per period evaluated
MAX_ACTIONS = 5  # per state, as CloudWatch
MAX_DIMENSIONS = 30
NAME = re.compile(r"^[^\x00-\x1f\x7f ][^\x00-\x1f\x7f]{0,254}$")  # printable, as CloudWatch
_PERCENTILE = re.compile(r"^p(100|[0-9]{1,2})(\.[0-9]{1,2})?$")
_FIELDS = frozenset(
    {
        "AlarmName",
        "AlarmDescription",
        "MetricName",
        "Namespace",
        "Dimensions",
        "Statistic",
        "ExtendedStatistic",
        "Query",
        "Budget",
        "Period",
        "EvaluationPeriods",
        "DatapointsToAlarm",
        "Threshold",
        "ComparisonOperator",
        "TreatMissingData",
        "AlarmActions",
        "OKActions",
        "InsufficientDataActions",
        "ActionsEnabled",
        "Unit",
        "Workspace",
    }
)


@dataclass(frozen=True)
class Alarm:
    """One alarm rule; the value it watches is ``metric``, ``query`` or ``budget``."""

    name: str
    threshold: float
    comparison: str
    period: int = 60
    evaluation_periods: int = 1
    datapoints_to_alarm: int = 1
    metric: str | None = None
    namespace: str = NAMESPACE
    dimensions: tuple[tuple[str, str], ...] = ()
    statistic: str | None = None  # Sum, … or a percentile pNN (ExtendedStatistic)
    query: str | None = None
    budget: str | None = None
    treat_missing_data: str = "missing"
    alarm_actions: tuple[str, ...] = ()
    ok_actions: tuple[str, ...] = ()
    insufficient_data_actions: tuple[str, ...] = ()
    actions_enabled: bool = True
    description: str = ""
    workspace: str = "default"
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def source(self) -> str:
        """What the alarm watches: ``metric``, ``query`` or ``budget``."""
        return "query" if self.query else "budget" if self.budget else "metric"

    def actions_for(self, state: str) -> tuple[str, ...]:
        """The actions a change into ``state`` triggers (none while actions are disabled)."""
        if not self.actions_enabled:
            return ()
        return {
            "ALARM": self.alarm_actions,
            "OK": self.ok_actions,
            "INSUFFICIENT_DATA": self.insufficient_data_actions,
        }[state]

    def describe_value(self) -> str:
        """The watched value in words: ``Sum of InvocationClientErrors (ModelId=x)``."""
        if self.query:
            return f"the query `{self.query}`"
        if self.budget:
            return f"the percentage used of budget {self.budget!r}"
        dims = ", ".join(f"{n}={v}" for n, v in self.dimensions)
        return f"{self.statistic} of {self.metric}" + (f" ({dims})" if dims else "")

    def to_dict(self) -> dict[str, Any]:
        """``PutMetricAlarm``'s fields (only those that apply); also the StateStore value."""
        out: dict[str, Any] = {"AlarmName": self.name, "AlarmDescription": self.description}
        if self.metric:
            out["MetricName"] = self.metric
            out["Namespace"] = self.namespace
            out["Dimensions"] = [{"Name": n, "Value": v} for n, v in self.dimensions]
            key = "Statistic" if self.statistic in STATISTICS else "ExtendedStatistic"
            out[key] = self.statistic
        if self.query:
            out["Query"] = self.query
        if self.budget:
            out["Budget"] = self.budget
        out.update(
            {
                "Period": self.period,
                "EvaluationPeriods": self.evaluation_periods,
                "DatapointsToAlarm": self.datapoints_to_alarm,
                "Threshold": self.threshold,
                "ComparisonOperator": self.comparison,
                "TreatMissingData": self.treat_missing_data,
                "AlarmActions": list(self.alarm_actions),
                "OKActions": list(self.ok_actions),
                "InsufficientDataActions": list(self.insufficient_data_actions),
                "ActionsEnabled": self.actions_enabled,
                "Workspace": self.workspace,
                **self.extra,
            }
        )
        return out


def parse_alarm(doc: Any, name: str | None = None) -> Alarm:
    """An `Alarm` from ``PutMetricAlarm``'s JSON; ``name`` (from the URL) wins over
    ``AlarmName``, and they must agree when both are given. Raises `ValidationError` naming
    the field and the rule."""
    if not isinstance(doc, Mapping):
        raise ValidationError("body", "must be a JSON object of PutMetricAlarm's fields")
    unknown = sorted(set(doc) - _FIELDS)
    if unknown:
        raise ValidationError(
            unknown[0], f"is not an alarm field; known fields: {', '.join(sorted(_FIELDS))}"
        )
    given = doc.get("AlarmName")
    if name is not None and given is not None and given != name:
        raise ValidationError("AlarmName", f"is {given!r} but the URL names {name!r}")
    alarm_name = _name(name if name is not None else given)
    sources = [key for key in ("MetricName", "Query", "Budget") if doc.get(key) is not None]
    if len(sources) != 1:
        raise ValidationError(
            "MetricName",
            "give exactly one of MetricName (a metric), Query (a Logs Insights query ending in "
            "one stats value) or Budget (a budget's percentage used)",
        )
    period = _period(doc.get("Period", 60))
    evaluation = _int(doc, "EvaluationPeriods", 1, 1, 10_000)
    if period * evaluation > MAX_WINDOW_S:
        raise ValidationError(
            "EvaluationPeriods",
            f"Period x EvaluationPeriods is {period * evaluation} s; the limit is "
            f"{MAX_WINDOW_S} s (7 days)",
        )
    datapoints = _int(doc, "DatapointsToAlarm", evaluation, 1, evaluation)
    metric = statistic = query = budget = None
    dimensions: tuple[tuple[str, str], ...] = ()
    namespace = doc.get("Namespace", NAMESPACE)
    if doc.get("MetricName") is not None:
        metric, statistic, dimensions = _metric(doc)
    elif doc.get("Query") is not None:
        query = _query(doc["Query"])
        if evaluation > MAX_QUERY_PERIODS:
            raise ValidationError(
                "EvaluationPeriods",
                f"is {evaluation}; a Query alarm evaluates at most {MAX_QUERY_PERIODS} periods",
            )
    else:
        budget = _text(doc, "Budget", 256, required=True)
    comparison = doc.get("ComparisonOperator")
    if comparison not in COMPARISONS:
        raise ValidationError("ComparisonOperator", f"must be one of {', '.join(COMPARISONS)}")
    missing = doc.get("TreatMissingData", "missing")
    if missing not in MISSING_DATA:
        raise ValidationError("TreatMissingData", f"must be one of {', '.join(MISSING_DATA)}")
    enabled = doc.get("ActionsEnabled", True)
    if not isinstance(enabled, bool):
        raise ValidationError("ActionsEnabled", "must be true or false")
    workspace = _text(doc, "Workspace", 128) or "default"
    return Alarm(
        name=alarm_name,
        threshold=_threshold(doc.get("Threshold")),
        comparison=comparison,
        period=period,
        evaluation_periods=evaluation,
        datapoints_to_alarm=datapoints,
        metric=metric,
        namespace=str(namespace),
        dimensions=dimensions,
        statistic=statistic,
        query=query,
        budget=budget,
        treat_missing_data=missing,
        alarm_actions=_actions(doc, "AlarmActions"),
        ok_actions=_actions(doc, "OKActions"),
        insufficient_data_actions=_actions(doc, "InsufficientDataActions"),
        actions_enabled=enabled,
        description=_text(doc, "AlarmDescription", 1024),
        workspace=workspace,
        extra={"Unit": doc["Unit"]} if isinstance(doc.get("Unit"), str) else {},
    )


def _name(value: Any) -> str:
    if not isinstance(value, str) or not NAME.match(value):
        raise ValidationError(
            "AlarmName",
            "must be 1 to 255 printable characters, not starting with a space",
        )
    return value


def _period(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError("Period", "must be an integer number of seconds")
    if value not in HIGH_RESOLUTION_PERIODS and (value < 60 or value % 60):
        raise ValidationError("Period", f"must be 10, 30 or a multiple of 60 seconds, got {value}")
    return value


def _int(doc: Mapping[str, Any], key: str, default: int, low: int, high: int) -> int:
    value = doc.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValidationError(key, f"must be an integer from {low} to {high}, got {value!r}")
    return value


def _threshold(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValidationError("Threshold", "is required: a finite number")
    return float(value)


def _text(doc: Mapping[str, Any], key: str, limit: int, required: bool = False) -> str:
    value = doc.get(key)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value) or len(value) > limit:
        raise ValidationError(key, f"must be a string of at most {limit} characters")
    return value


def _metric(doc: Mapping[str, Any]) -> tuple[str, str, tuple[tuple[str, str], ...]]:
    metric = doc["MetricName"]
    if metric not in METRIC_NAMES:
        raise ValidationError("MetricName", f"must be one of {', '.join(METRIC_NAMES)}")
    if doc.get("Namespace", NAMESPACE) != NAMESPACE:
        raise ValidationError("Namespace", f"must be {NAMESPACE}")
    statistic, extended = doc.get("Statistic"), doc.get("ExtendedStatistic")
    if (statistic is None) == (extended is None):
        raise ValidationError("Statistic", "give exactly one of Statistic or ExtendedStatistic")
    if statistic is not None and statistic not in STATISTICS:
        raise ValidationError("Statistic", f"must be one of {', '.join(STATISTICS)}")
    if extended is not None and (not isinstance(extended, str) or not _PERCENTILE.match(extended)):
        raise ValidationError("ExtendedStatistic", "must be a percentile such as p95 or p99.9")
    raw = doc.get("Dimensions", [])
    if not isinstance(raw, list) or len(raw) > MAX_DIMENSIONS:
        raise ValidationError("Dimensions", f"must be a list of at most {MAX_DIMENSIONS} objects")
    dims: list[tuple[str, str]] = []
    for i, item in enumerate(raw):
        if (
            not isinstance(item, Mapping)
            or set(item) != {"Name", "Value"}
            or not all(isinstance(item[k], str) and 0 < len(item[k]) <= 1024 for k in item)
        ):
            raise ValidationError(f"Dimensions[{i}]", 'must be {"Name": "…", "Value": "…"}')
        dims.append((item["Name"], item["Value"]))
    if len({n for n, _ in dims}) != len(dims):
        raise ValidationError("Dimensions", "names a dimension twice")
    return str(metric), str(statistic or extended), tuple(dims)


def _query(value: Any) -> str:
    """A Logs Insights query whose last command is ``stats`` of one value, with no ``by``."""
    from llmtrail.query import parse_query
    from llmtrail.query.ast import Stats
    from llmtrail.query.errors import QueryError

    if not isinstance(value, str) or not value.strip() or len(value) > 10_000:
        raise ValidationError("Query", "must be a Logs Insights query of 1 to 10000 characters")
    try:
        parsed = parse_query(value)
    except QueryError as exc:
        raise ValidationError("Query", exc.message) from None
    last = parsed.commands[-1] if parsed.commands else None
    if not isinstance(last, Stats) or len(last.aggregates) != 1 or last.by:
        raise ValidationError(
            "Query",
            'must end in a stats command of one value and no "by", such as '
            '"filter status = \\"ERROR\\" | stats count(*)"',
        )
    return value


def _actions(doc: Mapping[str, Any], key: str) -> tuple[str, ...]:
    value = doc.get(key, [])
    if (
        not isinstance(value, list)
        or len(value) > MAX_ACTIONS
        or not all(isinstance(a, str) and 0 < len(a) <= 1024 for a in value)
    ):
        raise ValidationError(key, f"must be a list of at most {MAX_ACTIONS} notifier names")
    return tuple(value)


def notifier_of(action: str) -> str:
    """The notifier an action names: the name itself, or an SNS-style ARN's last segment
    (``arn:aws:sns:us-east-1:123456789012:ops`` → ``ops``)."""
    if action.startswith("arn:"):
        return action.rsplit(":", 1)[-1]
    return action
