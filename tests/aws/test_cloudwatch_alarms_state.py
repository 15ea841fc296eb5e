"""SetAlarmState, DescribeAlarmHistory and DeleteAlarms with the official boto3
``cloudwatch`` client against a running llmtrail, each answer compared with llmtrail's own
``/api/alarms`` and ``/api/deliveries``: a state set by hand is in the alarm, its history
and its notifications as an evaluated change would be; history pages and filters as
CloudWatch's do."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.aws.conftest import AwsServer
from tests.aws.test_cloudwatch_alarms import (
    SNS,
    TOKENS,
    api,
    assert_same_alarm,
    described,
    error_of,
    llmtrail_alarm,
    quiet,
    quoted,
    same_time,
    stamp,
)
from tests.harness import call


def test_set_alarm_state_changes_state_history_and_notifies(
    aws_server: AwsServer, cw: Any, unique: str
) -> None:
    """The alarm watches a model no call used, and ignores missing data: an evaluation in
    between leaves the state that was set by hand as it is."""
    cw.put_metric_alarm(AlarmName=unique, AlarmActions=["pager", SNS], **quiet(unique))
    data = {"source": "runbook", "values": [1, 2]}
    cw.set_alarm_state(
        AlarmName=unique,
        StateValue="ALARM",
        StateReason="testing the pager",
        StateReasonData=json.dumps(data),
    )
    ours = llmtrail_alarm(aws_server, unique)
    assert ours["StateValue"] == "ALARM" and ours["StateReason"] == "testing the pager"
    assert ours["StateReasonData"] == data
    boto = described(cw, unique)
    assert_same_alarm(boto, ours)
    assert boto["StateTransitionedTimestamp"] == boto["StateUpdatedTimestamp"]

    history = api(aws_server, "GET", f"/api/alarms/{quoted(unique)}/history?type=StateUpdate")
    change = history["AlarmHistoryItems"][0]
    assert (change["OldState"], change["NewState"]) == ("INSUFFICIENT_DATA", "ALARM")
    boto_history = cw.describe_alarm_history(AlarmName=unique, HistoryItemType="StateUpdate")
    item = boto_history["AlarmHistoryItems"][0]
    assert item["HistorySummary"] == change["HistorySummary"]
    assert json.loads(item["HistoryData"])["newState"] == {
        "stateValue": "ALARM",
        "stateReason": "testing the pager",
    }
    deliveries = api(aws_server, "GET", f"/api/deliveries?alarm={quoted(unique)}")["deliveries"]
    assert sorted(d["action"] for d in deliveries) == sorted(["pager", SNS])
    assert {d["state"] for d in deliveries} == {"ALARM"}

    # the same state again changes nothing; OK has no actions to notify
    cw.set_alarm_state(AlarmName=unique, StateValue="ALARM", StateReason="again")
    assert llmtrail_alarm(aws_server, unique)["StateReason"] == "testing the pager"
    cw.set_alarm_state(AlarmName=unique, StateValue="OK", StateReason="done")
    after = api(aws_server, "GET", f"/api/deliveries?alarm={quoted(unique)}")["deliveries"]
    assert len(after) == len(deliveries)
    assert described(cw, unique)["StateValue"] == "OK"

    with pytest.raises(ClientError) as caught:
        cw.set_alarm_state(AlarmName=f"{unique}-none", StateValue="OK", StateReason="x")
    assert error_of(caught)[0] == "ResourceNotFound"
    with pytest.raises(ClientError) as caught:
        cw.set_alarm_state(
            AlarmName=unique, StateValue="OK", StateReason="x", StateReasonData="{not json"
        )
    assert error_of(caught)[0] == "InvalidFormat"


def test_describe_alarm_history_filters_and_pages(
    aws_server: AwsServer, cw: Any, unique: str
) -> None:
    cw.put_metric_alarm(AlarmName=unique, **quiet(unique))
    cw.put_metric_alarm(AlarmName=unique, **{**quiet(unique), "Threshold": 2.0})
    for state in ("ALARM", "OK", "ALARM"):
        cw.set_alarm_state(AlarmName=unique, StateValue=state, StateReason=f"to {state}")
    ours = api(aws_server, "GET", f"/api/alarms/{quoted(unique)}/history")["AlarmHistoryItems"]
    assert len(ours) == 5  # two configuration updates, three state changes

    boto = cw.describe_alarm_history(AlarmName=unique)["AlarmHistoryItems"]
    assert [i["HistorySummary"] for i in boto] == [i["HistorySummary"] for i in ours]
    assert [i["HistoryItemType"] for i in boto] == [i["HistoryItemType"] for i in ours]
    for b, o in zip(boto, ours, strict=True):
        assert b["AlarmName"] == unique and b["AlarmType"] == "MetricAlarm"
        assert same_time(b["Timestamp"], o["Timestamp"])
    assert json.loads(boto[-1]["HistoryData"])["type"] == "Create"
    assert json.loads(boto[-2]["HistoryData"])["type"] == "Update"

    pages = list(
        cw.get_paginator("describe_alarm_history").paginate(
            AlarmName=unique, ScanBy="TimestampAscending", PaginationConfig={"PageSize": 2}
        )
    )
    assert [len(p["AlarmHistoryItems"]) for p in pages] == [2, 2, 1]
    ascending = [i["HistorySummary"] for p in pages for i in p["AlarmHistoryItems"]]
    assert ascending == [i["HistorySummary"] for i in reversed(ours)]

    changes = cw.describe_alarm_history(AlarmName=unique, HistoryItemType="StateUpdate")
    typed = api(aws_server, "GET", f"/api/alarms/{quoted(unique)}/history?type=StateUpdate")
    assert len(changes["AlarmHistoryItems"]) == len(typed["AlarmHistoryItems"]) == 3

    # boto3 sends milliseconds: a bound 2 ms wide of an item keeps it
    start = stamp(ours[3]["Timestamp"]) - timedelta(milliseconds=2)
    end = stamp(ours[1]["Timestamp"]) + timedelta(milliseconds=2)
    window = cw.describe_alarm_history(AlarmName=unique, StartDate=start, EndDate=end)
    assert [i["HistorySummary"] for i in window["AlarmHistoryItems"]] == [
        i["HistorySummary"] for i in ours if start <= stamp(i["Timestamp"]) <= end
    ]
    assert len(window["AlarmHistoryItems"]) >= 3
    later = cw.describe_alarm_history(AlarmName=unique, StartDate=end + timedelta(days=1))
    assert later["AlarmHistoryItems"] == []

    everyone = cw.get_paginator("describe_alarm_history").paginate(
        HistoryItemType="ConfigurationUpdate"
    )
    items = [i for page in everyone for i in page["AlarmHistoryItems"]]
    assert {i["HistoryItemType"] for i in items} == {"ConfigurationUpdate"}
    assert [i["AlarmName"] for i in items].count(unique) == 2
    unknown = cw.describe_alarm_history(AlarmName=f"{unique}-none")
    assert unknown["AlarmHistoryItems"] == []
    with pytest.raises(ClientError) as caught:
        cw.describe_alarm_history(AlarmName=unique, NextToken="bm90IGEgdG9rZW4")
    assert error_of(caught)[0] == "InvalidNextToken"


def test_delete_alarms_deletes_the_known_and_passes_over_the_unknown(
    aws_server: AwsServer, cw: Any, unique: str
) -> None:
    cw.put_metric_alarm(AlarmName=unique, **quiet(unique))
    api(aws_server, "PUT", f"/api/alarms/{unique}-api", {**TOKENS, "Threshold": 1})
    cw.delete_alarms(AlarmNames=[unique, f"{unique}-api", f"{unique}-never-was"])
    for name in (unique, f"{unique}-api"):
        status, _ = call(aws_server.url, "GET", f"/api/alarms/{name}")
        assert status == 404
    assert cw.describe_alarms(AlarmNamePrefix=unique)["MetricAlarms"] == []
