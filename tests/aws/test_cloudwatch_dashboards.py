"""CloudWatch dashboards with the official boto3 ``cloudwatch`` client against a running
llmtrail, each answer compared with llmtrail's own ``/api/dashboards`` on the same
dashboards: a body put with boto3 is llmtrail's dashboard and comes back unchanged, one put
with llmtrail's API is read by boto3, invalid bodies are refused with the same messages
llmtrail's API gives (as CloudWatch's JSON pointers). Pages of 1,000 are shown in
``test_cloudwatch_dashboards_pages`` (a thousand puts over HTTP would take seconds)."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.aws.conftest import ACCOUNT, AwsServer
from tests.harness import call

BODY: dict[str, Any] = {
    "start": "-PT6H",
    "periodOverride": "inherit",
    "widgets": [
        {
            "type": "metric",
            "x": 0,
            "y": 0,
            "width": 12,
            "height": 6,
            "properties": {
                "title": "Input tokens by model",
                "view": "timeSeries",
                "region": "us-east-1",
                "stat": "Sum",
                "period": 300,
                "metrics": [
                    ["AWS/Bedrock", "InputTokenCount", "ModelId", "sim/fast"],
                    ["...", "sim/smart", {"label": "smart"}],
                ],
            },
        },
        {
            "type": "text",
            "x": 12,
            "y": 0,
            "width": 12,
            "height": 3,
            "properties": {"markdown": "# Tokens — put by a script, do not edit"},
        },
        {
            "type": "log",
            "x": 0,
            "y": 6,
            "width": 24,
            "height": 6,
            "properties": {
                "query": "SOURCE '/aws/bedrock/modelinvocations' | stats count(*) by modelId",
                "title": "Calls by model",
                "view": "table",
            },
        },
    ],
}


def api(server: AwsServer, method: str, path: str, body: Any = None) -> Any:
    status, answer = call(server.url, method, path, body)
    assert status == 200, answer
    return answer


def pointer(path: str) -> str:
    """llmtrail's ``widgets[0].properties`` as CloudWatch's ``/widgets/0/properties``."""
    if path.startswith("Dashboard"):
        return path
    return "/" + "/".join(re.findall(r"[^.\[\]]+", path))


def pointed(messages: list[dict[str, str]]) -> list[dict[str, str]]:
    return [{"DataPath": pointer(m["DataPath"]), "Message": m["Message"]} for m in messages]


def error_of(caught: pytest.ExceptionInfo[ClientError]) -> tuple[str, str]:
    error = caught.value.response["Error"]
    return error["Code"], error["Message"]


def entry_of(server: AwsServer, name: str) -> dict[str, Any]:
    entries = api(server, "GET", "/api/dashboards")["DashboardEntries"]
    return next(e for e in entries if e["DashboardName"] == name)


def test_a_body_put_with_boto3_is_llmtrails_dashboard(
    aws_server: AwsServer, cw: Any, unique: str
) -> None:
    answer = cw.put_dashboard(DashboardName=unique, DashboardBody=json.dumps(BODY))
    assert answer["DashboardValidationMessages"] == []
    assert api(aws_server, "GET", f"/api/dashboards/{unique}") == BODY

    got = cw.get_dashboard(DashboardName=unique)
    assert json.loads(got["DashboardBody"]) == BODY
    assert got["DashboardName"] == unique
    assert got["DashboardArn"] == f"arn:aws:cloudwatch::{ACCOUNT}:dashboard/{unique}"

    ours = entry_of(aws_server, unique)
    listed = cw.list_dashboards(DashboardNamePrefix=unique)["DashboardEntries"]
    assert [e["DashboardName"] for e in listed] == [unique]
    assert listed[0]["Size"] == ours["Size"] > 0
    assert listed[0]["DashboardArn"] == got["DashboardArn"]
    modified = datetime.fromisoformat(ours["LastModified"].replace("Z", "+00:00"))
    assert abs(listed[0]["LastModified"] - modified) < timedelta(milliseconds=1)

    # what GetDashboard gives is a body PutDashboard takes back unchanged
    cw.put_dashboard(DashboardName=f"{unique}-copy", DashboardBody=got["DashboardBody"])
    assert api(aws_server, "GET", f"/api/dashboards/{unique}-copy") == BODY


def test_a_dashboard_put_with_llmtrails_api_is_read_by_boto3(
    aws_server: AwsServer, cw: Any, unique: str
) -> None:
    body = {"widgets": [{"type": "text", "properties": {"markdown": "ünïcode & <b>"}}]}
    api(aws_server, "PUT", f"/api/dashboards/{unique}", body)
    assert json.loads(cw.get_dashboard(DashboardName=unique)["DashboardBody"]) == body
    listed = cw.list_dashboards(DashboardNamePrefix=unique)["DashboardEntries"]
    assert [(e["DashboardName"], e["Size"]) for e in listed] == [
        (unique, entry_of(aws_server, unique)["Size"])
    ]


def test_the_default_dashboard_reads_as_llmtrails(aws_server: AwsServer, cw: Any) -> None:
    ours = api(aws_server, "GET", "/api/dashboards/llmtrail-overview")
    assert json.loads(cw.get_dashboard(DashboardName="llmtrail-overview")["DashboardBody"]) == ours
    listed = cw.list_dashboards(DashboardNamePrefix="llmtrail-")["DashboardEntries"]
    assert "llmtrail-overview" in [e["DashboardName"] for e in listed]


def test_warnings_are_the_validation_messages_llmtrails_api_gives(
    aws_server: AwsServer, cw: Any, unique: str
) -> None:
    body = {
        "widgets": [
            {"type": "explorer", "properties": {}},
            {
                "type": "metric",
                "properties": {"metrics": [["AWS/EC2", "CPUUtilization", "InstanceId", "i-1"]]},
            },
        ]
    }
    ours = api(aws_server, "PUT", f"/api/dashboards/{unique}-api", body)
    assert len(ours["DashboardValidationMessages"]) == 2
    answer = cw.put_dashboard(DashboardName=unique, DashboardBody=json.dumps(body))
    assert answer["DashboardValidationMessages"] == pointed(ours["DashboardValidationMessages"])
    assert [m["DataPath"] for m in answer["DashboardValidationMessages"]] == [
        "/widgets/0/type",
        "/widgets/1/properties/metrics/0",
    ]
    assert json.loads(cw.get_dashboard(DashboardName=unique)["DashboardBody"]) == body


@pytest.mark.parametrize(
    "body",
    [
        {"widgets": [{"type": "metric", "x": 30, "properties": {"title": 5}}]},
        {"widgets": [{"type": "text", "properties": {}}, {"type": "log", "properties": {}}]},
        {"widgets": "none"},
        {"start": "yesterday"},
    ],
)
def test_invalid_bodies_are_refused_with_llmtrails_messages(
    aws_server: AwsServer, cw: Any, unique: str, body: dict[str, Any]
) -> None:
    status, ours = call(aws_server.url, "PUT", f"/api/dashboards/{unique}", body)
    assert status == 400
    with pytest.raises(ClientError) as caught:
        cw.put_dashboard(DashboardName=unique, DashboardBody=json.dumps(body))
    code, message = error_of(caught)
    expected = pointed(ours["DashboardValidationMessages"])
    assert code == "InvalidParameterInput"
    head = f"The dashboard body is invalid, there are {len(expected)} validation errors:\n"
    assert message.startswith(head)
    assert json.loads(message[len(head) :]) == [
        {"dataPath": m["DataPath"], "message": m["Message"]} for m in expected
    ]
    # the error shape's own member, as CloudWatch sends it
    assert caught.value.response["dashboardValidationMessages"] == expected
    with pytest.raises(ClientError) as caught:
        cw.get_dashboard(DashboardName=unique)
    assert error_of(caught)[0] == "ResourceNotFound"  # nothing was stored


def test_a_body_that_is_not_json_or_a_bad_name_is_refused(cw: Any, unique: str) -> None:
    with pytest.raises(ClientError) as caught:
        cw.put_dashboard(DashboardName=unique, DashboardBody="{widgets: [")
    code, message = error_of(caught)
    assert code == "InvalidParameterInput" and '"dataPath": "DashboardBody"' in message
    with pytest.raises(ClientError) as caught:
        cw.put_dashboard(DashboardName=f"{unique} spaced", DashboardBody=json.dumps(BODY))
    code, message = error_of(caught)
    assert code == "InvalidParameterInput" and "DashboardName" in message
    with pytest.raises(ClientError) as caught:
        cw.get_dashboard(DashboardName=f"{unique}/slash")
    assert error_of(caught)[0] == "InvalidParameterValue"
    with pytest.raises(ClientError) as caught:
        cw.list_dashboards(DashboardNamePrefix="no spaces")
    assert error_of(caught)[0] == "InvalidParameterValue"
    with pytest.raises(ClientError) as caught:
        cw.list_dashboards(NextToken="bm90IGEgdG9rZW4")
    assert error_of(caught)[0] == "InvalidParameterValue"


def test_delete_dashboards_deletes_what_exists_and_names_what_does_not(
    aws_server: AwsServer, cw: Any, unique: str
) -> None:
    for suffix in ("a", "b"):
        cw.put_dashboard(DashboardName=f"{unique}-{suffix}", DashboardBody=json.dumps(BODY))
    cw.delete_dashboards(DashboardNames=[f"{unique}-a"])
    status, _ = call(aws_server.url, "GET", f"/api/dashboards/{unique}-a")
    assert status == 404
    with pytest.raises(ClientError) as caught:
        cw.delete_dashboards(DashboardNames=[f"{unique}-b", f"{unique}-never"])
    code, message = error_of(caught)
    assert code == "ResourceNotFound" and f"{unique}-never" in message
    assert f"{unique}-b" not in message
    status, _ = call(aws_server.url, "GET", f"/api/dashboards/{unique}-b")
    assert status == 404  # deleted all the same, as CloudWatch deletes what it can
    assert cw.list_dashboards(DashboardNamePrefix=unique)["DashboardEntries"] == []
    with pytest.raises(ClientError) as caught:
        cw.get_dashboard(DashboardName=f"{unique}-a")
    assert error_of(caught) == ("ResourceNotFound", f"Dashboard {unique}-a does not exist")
