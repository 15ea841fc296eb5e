"""Every alarm operation reads and changes the caller's workspace only: the handlers run as
the router runs them, over an `Alerting` on llmtrail's in-memory state store, for a caller
of workspace ``w2`` beside an alarm of the default workspace with the same name."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest

from llmtrail.alerts import Alerting
from llmtrail.alerts.sources import AlarmValues
from llmtrail.config import Settings
from llmtrail.security.principal import OPEN, Principal
from llmtrail.server.aws.cloudwatch_alarms import (
    delete_alarms,
    describe_alarm_history,
    describe_alarms,
    put_metric_alarm,
    set_alarm_state,
)
from llmtrail.server.aws.operations import AwsCall, AwsError
from llmtrail.store.memory import MemoryStateStore

W2 = Principal(role="admin", workspace="w2", permissions=OPEN.permissions)
FIELDS = {
    "MetricName": "Invocations",
    "Namespace": "AWS/Bedrock",
    "Statistic": "Sum",
    "Period": 60,
    "EvaluationPeriods": 1,
    "Threshold": 1.0,
    "ComparisonOperator": "GreaterThanThreshold",
}


@pytest.fixture
def alerting() -> Alerting:
    values = AlarmValues(lambda: None, lambda *_: None, lambda *_: None)
    return Alerting(MemoryStateStore(), Settings(), values)


def run(alerting: Alerting, handler: Any, params: dict[str, Any], who: Principal) -> Any:
    call = AwsCall(
        service="monitoring",
        operation="".join(part.title() for part in handler.__name__.split("_")),
        params=params,
        principal=who,
        runtime=None,
        region="us-east-1",
        account="123456789012",
        request_id="r",
        services={"alarms": SimpleNamespace(alerting=alerting)},
    )
    return asyncio.run(handler(call))


def test_another_workspaces_alarm_of_the_same_name_is_not_seen(alerting: Alerting) -> None:
    alerting.put_alarm("shared", FIELDS)  # the default workspace's
    assert run(alerting, describe_alarms, {}, W2)["MetricAlarms"] == []
    history = run(alerting, describe_alarm_history, {"AlarmName": "shared"}, W2)
    assert history["AlarmHistoryItems"] == []
    with pytest.raises(AwsError) as caught:
        run(alerting, set_alarm_state, {"AlarmName": "shared", "StateValue": "ALARM",
                                        "StateReason": "x"}, W2)  # fmt: skip
    assert caught.value.code == "ResourceNotFound"
    run(alerting, delete_alarms, {"AlarmNames": ["shared"]}, W2)
    assert alerting.alarms.get("shared").name == "shared"  # still there

    run(alerting, put_metric_alarm, {"AlarmName": "shared", **FIELDS, "Threshold": 9.0}, W2)
    mine = run(alerting, describe_alarms, {}, W2)["MetricAlarms"]
    assert [(a["AlarmName"], a["Threshold"]) for a in mine] == [("shared", 9.0)]
    assert alerting.alarms.get("shared").threshold == 1.0
    assert alerting.alarms.get("shared", workspace="w2").threshold == 9.0
    theirs = run(alerting, describe_alarms, {}, OPEN)["MetricAlarms"]
    assert [(a["AlarmName"], a["Threshold"]) for a in theirs] == [("shared", 1.0)]
