"""The default dashboard: the seed's five widgets as a CloudWatch dashboard body, so that it
can be exported with ``llmtrail dashboards get``, edited and put back like any other."""

from __future__ import annotations

import copy
from typing import Any

DEFAULT_NAME = "llmtrail-overview"
SOURCE = "SOURCE '/aws/bedrock/modelinvocations'"

DEFAULT_DASHBOARD: dict[str, Any] = {
    "start": "-PT24H",
    "periodOverride": "inherit",
    "widgets": [
        {
            "type": "metric",
            "x": 0,
            "y": 0,
            "width": 6,
            "height": 6,
            "properties": {
                "title": "Total tokens",
                "view": "singleValue",
                "region": "us-east-1",
                "stat": "Sum",
                "period": 3600,
                "setPeriodToTimeRange": True,
                "metrics": [
                    ["AWS/Bedrock", "InputTokenCount", {"id": "m1", "visible": False}],
                    [".", "OutputTokenCount", {"id": "m2", "visible": False}],
                    [{"expression": "m1 + m2", "label": "Total tokens", "id": "e1"}],
                ],
            },
        },
        {
            "type": "log",
            "x": 6,
            "y": 0,
            "width": 6,
            "height": 6,
            "properties": {
                "title": "Tokens by application",
                "view": "pie",
                "region": "us-east-1",
                "query": f"{SOURCE} | stats sum(input.inputTokenCount + output.outputTokenCount)"
                " as tokens by requestMetadata.application_name",
            },
        },
        {
            "type": "metric",
            "x": 12,
            "y": 0,
            "width": 12,
            "height": 6,
            "properties": {
                "title": "Tokens per hour",
                "view": "timeSeries",
                "region": "us-east-1",
                "stat": "Sum",
                "period": 3600,
                "metrics": [
                    ["AWS/Bedrock", "InputTokenCount", {"label": "Input tokens"}],
                    ["...", "OutputTokenCount"],
                ],
            },
        },
        {
            "type": "log",
            "x": 0,
            "y": 6,
            "width": 12,
            "height": 6,
            "properties": {
                "title": "Cost by cost center (USD)",
                "view": "bar",
                "region": "us-east-1",
                "query": f"{SOURCE} | stats sum(cost.totalUsd) as cost"
                " by requestMetadata.cost_center",
            },
        },
        {
            "type": "log",
            "x": 12,
            "y": 6,
            "width": 12,
            "height": 6,
            "properties": {
                "title": "Latest requests",
                "view": "table",
                "region": "us-east-1",
                "query": f"{SOURCE} | fields @timestamp, modelId,"
                " requestMetadata.application_name, input.inputTokenCount,"
                " output.outputTokenCount, latencyMs, status"
                " | sort @timestamp desc | limit 20",
            },
        },
    ],
}


def default_dashboard() -> dict[str, Any]:
    """A copy of the default body (callers may change theirs)."""
    return copy.deepcopy(DEFAULT_DASHBOARD)
