"""Dashboard bodies: AWS's documented examples are accepted as they are, bad ones are refused
with the field path of each problem, and ``.``/``...`` rows expand against the row above."""

from __future__ import annotations

import json
from typing import Any

import pytest

from llmtrail.dashboards.body import check_name, load_body, validate_body
from llmtrail.dashboards.default import default_dashboard
from llmtrail.dashboards.rows import expand_rows
from llmtrail.errors import ValidationError

# the Dashboard Body Structure page's first example, as the console writes it
AWS_EXAMPLE = """{
   "start": "-PT6H",
   "periodOverride": "inherit",
   "widgets": [
      {"type":"metric", "x":0, "y":0, "width":12, "height":6,
       "properties":{"metrics":[["AWS/EC2", "CPUUtilization", "InstanceId", "i-012345"]],
         "period":300, "stat":"Average", "region":"us-east-1", "title":"EC2 Instance CPU",
         "liveData": false, "legend": {"position": "right"}}},
      {"type":"text", "x":0, "y":7, "width":3, "height":3,
       "properties":{"markdown":"Hello world"}}
   ]
}"""

BEDROCK = {
    "widgets": [
        {
            "type": "metric",
            "properties": {
                "view": "timeSeries",
                "stacked": False,
                "region": "us-east-1",
                "metrics": [
                    [
                        "AWS/Bedrock",
                        "InputTokenCount",
                        "ModelId",
                        "anthropic.claude-3-haiku",
                        {"id": "m1"},
                    ],
                    ["...", "anthropic.claude-3-sonnet", {"id": "m2"}],
                    [".", "OutputTokenCount", ".", ".", {"id": "m3", "visible": False}],
                    [{"expression": "SUM(METRICS())", "label": "all", "id": "e1"}],
                ],
            },
        },
        {
            "type": "log",
            "x": 0,
            "y": 6,
            "width": 24,
            "height": 6,
            "properties": {
                "query": "SOURCE '/aws/bedrock/modelinvocations' | fields @timestamp, @message"
                " | sort @timestamp desc | limit 20",
                "region": "us-east-1",
                "title": "Log group: /aws/bedrock/modelinvocations",
                "view": "table",
            },
        },
        {
            "type": "alarm",
            "properties": {"alarms": ["arn:aws:cloudwatch:us-east-1:123456789012:alarm:tokens"]},
        },
        {"type": "explorer", "properties": {"metrics": []}},
    ]
}


def test_documented_examples_and_the_default_dashboard_are_valid() -> None:
    assert load_body(AWS_EXAMPLE)["widgets"][1]["properties"]["markdown"] == "Hello world"
    errors, warnings = validate_body(json.loads(AWS_EXAMPLE))
    assert errors == []
    assert warnings == [
        {
            "DataPath": "widgets[0].properties.metrics[0]",
            "Message": "namespace AWS/EC2 is not held by llmtrail (only AWS/Bedrock)",
        }
    ]
    assert validate_body(BEDROCK)[0] == []
    assert validate_body(default_dashboard()) == ([], [])


def test_dot_and_ellipsis_rows_repeat_the_row_above() -> None:
    rows = expand_rows(BEDROCK["widgets"][0]["properties"]["metrics"])  # type: ignore[index]
    assert [(r.namespace, r.metric, r.dimensions) for r in rows[:3]] == [
        ("AWS/Bedrock", "InputTokenCount", (("ModelId", "anthropic.claude-3-haiku"),)),
        ("AWS/Bedrock", "InputTokenCount", (("ModelId", "anthropic.claude-3-sonnet"),)),
        ("AWS/Bedrock", "OutputTokenCount", (("ModelId", "anthropic.claude-3-sonnet"),)),
    ]
    assert rows[2].options == {"id": "m3", "visible": False}
    assert rows[3].expression == "SUM(METRICS())" and rows[3].namespace is None
    middle = expand_rows(
        [
            ["AWS/Bedrock", "Invocations", "ModelId", "a", "Status", "OK"],
            ["AWS/Bedrock", "...", "ERROR"],
        ]
    )
    assert middle[1].dimensions == (("ModelId", "a"), ("Status", "ERROR"))


def body_with(widget: dict[str, Any]) -> dict[str, Any]:
    return {
        "widgets": [
            {"type": "text", "properties": {"markdown": "x"}},
            {"type": "text", "properties": {"markdown": "y"}},
            widget,
        ]
    }


@pytest.mark.parametrize(
    ("widget", "path", "says"),
    [
        (
            {"type": "metric", "properties": {"metrics": [["AWS/Bedrock"]]}},
            "widgets[2].properties.metrics[0]",
            "namespace and a metric name",
        ),
        (
            {"type": "metric", "properties": {"metrics": [["...", "x"]]}},
            "widgets[2].properties.metrics[0][0]",
            "needs a metric row above",
        ),
        (
            {
                "type": "metric",
                "properties": {"metrics": [["AWS/Bedrock", "Invocations", "ModelId"]]},
            },
            "widgets[2].properties.metrics[0]",
            "pairs",
        ),
        (
            {"type": "metric", "properties": {"metrics": [["AWS/Bedrock", 5]]}},
            "widgets[2].properties.metrics[0][1]",
            "must be a string",
        ),
        (
            {
                "type": "metric",
                "properties": {"metrics": [["AWS/Bedrock", "Invocations", {"id": "M1"}]]},
            },
            "widgets[2].properties.metrics[0].id",
            "lowercase",
        ),
        (
            {
                "type": "metric",
                "properties": {"metrics": [["AWS/Bedrock", "Invocations"]], "view": "radar"},
            },
            "widgets[2].properties.view",
            "must be one of",
        ),
        (
            {
                "type": "metric",
                "properties": {"metrics": [["AWS/Bedrock", "Invocations"]], "period": 45},
            },
            "widgets[2].properties.period",
            "multiple of 60",
        ),
        ({"type": "metric", "properties": {}}, "widgets[2].properties.metrics", "is required"),
        (
            {"type": "log", "properties": {"view": "table"}},
            "widgets[2].properties.query",
            "is required",
        ),
        (
            {"type": "text", "properties": {"markdown": 3}},
            "widgets[2].properties.markdown",
            "must be a string",
        ),
        ({"type": "alarm", "properties": {}}, "widgets[2].properties.alarms", "is required"),
        (
            {"type": "text", "width": 25, "properties": {"markdown": "x"}},
            "widgets[2].width",
            "from 1 to 24",
        ),
        (
            {"type": "text", "x": -1, "properties": {"markdown": "x"}},
            "widgets[2].x",
            "from 0 to 23",
        ),
        ({"properties": {}}, "widgets[2].type", "is required"),
        ("text", "widgets[2]", "must be an object"),
    ],
)
def test_bad_widgets_name_their_path(widget: Any, path: str, says: str) -> None:
    with pytest.raises(ValidationError) as error:
        load_body(body_with(widget))
    assert error.value.field == path
    assert says in error.value.message
    assert error.value.messages[0] == {"DataPath": path, "Message": error.value.message}  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("body", "path"),
    [
        ("{", "DashboardBody"),
        ("[]", "DashboardBody"),
        ({}, "widgets"),
        ({"widgets": {}}, "widgets"),
        ({"widgets": [{"type": "text", "properties": {"markdown": ""}}] * 501}, "widgets"),
        ({"widgets": [], "start": "yesterday"}, "start"),
        ({"widgets": [], "end": "-PT1H"}, "start"),
        ({"widgets": [], "periodOverride": "always"}, "periodOverride"),
    ],
)
def test_bad_bodies(body: Any, path: str) -> None:
    with pytest.raises(ValidationError) as error:
        load_body(body if isinstance(body, str) else json.dumps(body))
    assert error.value.field == path


def test_every_problem_is_listed() -> None:
    body = body_with({"type": "metric", "width": 0, "properties": {"metrics": [["AWS/Bedrock"]]}})
    errors, _ = validate_body(body)
    assert [e["DataPath"] for e in errors] == [
        "widgets[2].width",
        "widgets[2].properties.metrics[0]",
    ]


@pytest.mark.parametrize("name", ["ok", "my-team_2", "a" * 255])
def test_names_putdashboard_allows(name: str) -> None:
    assert check_name(name) == name


@pytest.mark.parametrize("name", ["", "a b", "x/y", "é", "a" * 256])
def test_names_putdashboard_refuses(name: str) -> None:
    with pytest.raises(ValidationError, match="DashboardName"):
        check_name(name)
