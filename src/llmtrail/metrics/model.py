"""The shapes metrics are asked for and answered in: CloudWatch's ``GetMetricData``."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

NAMESPACE = "AWS/Bedrock"

# CloudWatch's AWS/Bedrock runtime metrics, plus llmtrail's CostUsd
METRIC_NAMES: tuple[str, ...] = (
    "Invocations",
    "InvocationLatency",
    "TimeToFirstToken",
    "InputTokenCount",
    "OutputTokenCount",
    "CacheReadInputTokenCount",
    "CacheWriteInputTokenCount",
    "InvocationClientErrors",
    "InvocationServerErrors",
    "InvocationThrottles",
    "CostUsd",
)


@dataclass(frozen=True)
class MetricStat:
    """One metric, one statistic, one period: ``Metric`` + ``Stat`` + ``Period`` of a
    ``MetricDataQuery``. ``stat`` is ``Sum``, ``Average``, ``Minimum``, ``Maximum``,
    ``SampleCount`` or a percentile ``pNN`` / ``pNN.N``; ``dimensions`` are CloudWatch
    ``(Name, Value)`` pairs (``ModelId`` and llmtrail's, see `dimensions.DIMENSIONS`)."""

    metric: str
    stat: str
    period: int
    dimensions: tuple[tuple[str, str], ...] = ()
    namespace: str = NAMESPACE


@dataclass(frozen=True)
class MetricDataQuery:
    """One entry of ``MetricDataQueries``: a metric (``stat``) or a metric math
    ``expression`` over other entries' ids; ``label`` names the series."""

    id: str
    stat: MetricStat | None = None
    expression: str | None = None
    label: str | None = None
    return_data: bool = True
    period: int | None = None  # an expression's period (CloudWatch's Period on expressions)


@dataclass
class MetricDataResult:
    """One series of ``MetricDataResults``: only periods with data appear."""

    id: str
    label: str
    timestamps: list[datetime] = field(default_factory=list)
    values: list[float] = field(default_factory=list)
    status_code: str = "Complete"
    messages: list[dict[str, str]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "Id": self.id,
            "Label": self.label,
            "Timestamps": [t.isoformat().replace("+00:00", "Z") for t in self.timestamps],
            "Values": self.values,
            "StatusCode": self.status_code,
            "Messages": self.messages,
        }
