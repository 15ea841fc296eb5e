"""CloudWatch alarms (signing name ``monitoring``) on llmtrail's own alarms.

``PutMetricAlarm``, ``DescribeAlarms``, ``DescribeAlarmHistory``, ``DeleteAlarms`` and
``SetAlarmState`` call the same `Alerting` the ``/api/alarms`` routes call (the app's
``AlarmsAPI``, ``call.services["alarms"]``), in the caller's workspace only: an alarm put
with boto3 is the alarm llmtrail's API, UI, evaluator and notifiers see, and the other way
round. The translation between CloudWatch's shapes and llmtrail's fields is pure
(`cloudwatch_alarm_shapes`); this module reads and writes, off the event loop.

Pages are ordered by alarm name (``DescribeAlarms``) and by time, then alarm name
(``DescribeAlarmHistory``); a ``NextToken`` carries the last item returned, so alarms added
or removed between pages neither repeat nor shift the rest.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from llmtrail.errors import NotFound, ValidationError
from llmtrail.record import parse_timestamp
from llmtrail.security.principal import Permission
from llmtrail.server.aws.cloudwatch_alarm_shapes import (
    COMBINATION,
    VALIDATION,
    alarm_document,
    history_item,
    metric_alarm,
)
from llmtrail.server.aws.operations import AwsCall, AwsError, operation
from llmtrail.server.aws.tokens import page_token, read_page_token

SERVICE = "monitoring"
DEFAULT_RECORDS = 50
NOT_FOUND = "ResourceNotFound"
INVALID_FORMAT = "InvalidFormat"
INVALID_TOKEN = "InvalidNextToken"
# llmtrail's field names in its messages, as a PutMetricAlarm caller named them
FIELD_NAMES = {"Query": "Metrics[0].Expression", "Budget": "Dimensions"}
FAMILY = ("ChildrenOfAlarmName", "ParentsOfAlarmName")


def _alerting(call: AwsCall) -> Any:
    """The app's `Alerting` (the one ``/api/alarms`` uses)."""
    return call.services["alarms"].alerting


@operation(SERVICE, "PutMetricAlarm", Permission.MANAGE)
async def put_metric_alarm(call: AwsCall) -> dict[str, Any]:
    doc = alarm_document(call.params, call.account)
    alerting, name = _alerting(call), call.params["AlarmName"]
    try:
        await asyncio.to_thread(alerting.put_alarm, name, doc, call.workspace)
    except ValidationError as exc:
        field = FIELD_NAMES.get(exc.field, exc.field)
        raise AwsError(VALIDATION, f"{field}: {exc.message}") from None
    return {}


@operation(SERVICE, "DescribeAlarms", Permission.READ)
async def describe_alarms(call: AwsCall) -> dict[str, Any]:
    params = call.params
    family = [key for key in FAMILY if key in params]
    if family:
        others = sorted(set(params) - {*FAMILY, "MaxRecords", "NextToken"})
        if len(family) > 1 or others:
            raise AwsError(
                VALIDATION,
                f"{family[0]} can be given only with MaxRecords and NextToken",
            )
        return {"MetricAlarms": [], "CompositeAlarms": []}  # llmtrail has no composite alarms
    if "AlarmNames" in params and "AlarmNamePrefix" in params:
        raise AwsError(COMBINATION, "AlarmNames and AlarmNamePrefix cannot both be given")
    types = params.get("AlarmTypes") or ["MetricAlarm"]
    out: dict[str, Any] = {}
    if "CompositeAlarm" in types:
        out["CompositeAlarms"] = []
    if "LogAlarm" in types:
        out["LogAlarms"] = []
    if "MetricAlarm" in types:
        after = _after(call, params["NextToken"]) if "NextToken" in params else None
        limit = params.get("MaxRecords", DEFAULT_RECORDS)
        alarms, more = await asyncio.to_thread(_alarm_page, call, after, limit)
        out["MetricAlarms"] = alarms
        if more:
            out["NextToken"] = page_token(call, {"after": alarms[-1]["AlarmName"]})
    return out


def _after(call: AwsCall, token: str) -> str:
    """The alarm name a ``DescribeAlarms`` token continues after."""
    state = read_page_token(call, token, INVALID_TOKEN)
    after = state.get("after") if isinstance(state, dict) else None
    if not isinstance(after, str):
        raise AwsError(INVALID_TOKEN, "The specified nextToken is not valid")
    return after


def _alarm_page(call: AwsCall, after: str | None, limit: int) -> tuple[list[dict[str, Any]], bool]:
    """One page of ``MetricAlarms`` after alarm name ``after``; whether more follow."""
    params, store = call.params, _alerting(call).alarms
    names = set(params.get("AlarmNames", []))
    prefix = params.get("AlarmNamePrefix", "")
    state = params.get("StateValue")
    actions = params.get("ActionPrefix")
    docs = sorted(store.describe_all(workspace=call.workspace), key=lambda d: d["AlarmName"])
    chosen = [
        doc
        for doc in docs
        if (not names or doc["AlarmName"] in names)
        and doc["AlarmName"].startswith(prefix)
        and (after is None or doc["AlarmName"] > after)
        and state in (None, doc.get("StateValue"))
        and (actions is None or any(a.startswith(actions) for a in _actions(doc)))
    ]
    page = []
    for doc in chosen[:limit]:
        configured = None
        with contextlib.suppress(NotFound):  # removed since it was listed
            changes = store.history(
                doc["AlarmName"], "ConfigurationUpdate", workspace=call.workspace
            )
            configured = parse_timestamp(changes[0]["Timestamp"]) if changes else None
        page.append(metric_alarm(doc, call.region, call.account, configured))
    return page, len(chosen) > limit


def _actions(doc: Mapping[str, Any]) -> list[str]:
    keys = ("AlarmActions", "OKActions", "InsufficientDataActions")
    return [action for key in keys for action in doc.get(key, [])]


@operation(SERVICE, "DescribeAlarmHistory", Permission.READ)
async def describe_alarm_history(call: AwsCall) -> dict[str, Any]:
    params = call.params
    types = params.get("AlarmTypes")
    if (types and "MetricAlarm" not in types) or "AlarmContributorId" in params:
        return {"AlarmHistoryItems": []}  # llmtrail has only metric alarms, no contributors
    start, end = params.get("StartDate"), params.get("EndDate")
    if start is not None and end is not None and start > end:
        raise AwsError(VALIDATION, "StartDate must not be after EndDate")
    last = None
    if "NextToken" in params:
        state = read_page_token(call, params["NextToken"], INVALID_TOKEN)
        try:
            when, name, seq = state["last"]
            last = (datetime.fromisoformat(when), str(name), int(seq))
        except (KeyError, TypeError, ValueError):
            last = None
        if last is None or last[0].tzinfo is None:
            raise AwsError(INVALID_TOKEN, "The specified nextToken is not valid")
    limit = params.get("MaxRecords", DEFAULT_RECORDS)
    items, more = await asyncio.to_thread(_history_page, call, last, limit)
    out: dict[str, Any] = {"AlarmHistoryItems": [history_item(item) for _, item in items]}
    if more:
        when, name, seq = items[-1][0]
        out["NextToken"] = page_token(call, {"last": [when.isoformat(), name, seq]})
    return out


HistoryKey = tuple[datetime, str, int]


def _history_page(
    call: AwsCall, last: HistoryKey | None, limit: int
) -> tuple[list[tuple[HistoryKey, dict[str, Any]]], bool]:
    """One page of history items after ``last`` in the scan order, each with its key (time,
    alarm name, position counted from the alarm's oldest item); whether more follow."""
    params, store, ws = call.params, _alerting(call).alarms, call.workspace
    kind = params.get("HistoryItemType")
    start, end = params.get("StartDate"), params.get("EndDate")
    if "AlarmName" in params:
        names = [params["AlarmName"]]
    else:
        names = [doc["AlarmName"] for doc in store.describe_all(workspace=ws)]
    keyed: list[tuple[HistoryKey, dict[str, Any]]] = []
    for name in names:
        try:
            items = store.history(name, workspace=ws)  # newest first
        except NotFound:
            continue  # llmtrail forgets a deleted alarm's history
        for i, item in enumerate(items):
            when = parse_timestamp(item["Timestamp"])
            if (kind is None or item.get("HistoryItemType") == kind) and (
                (start is None or when >= start) and (end is None or when <= end)
            ):
                keyed.append(((when, name, len(items) - 1 - i), item))
    descending = params.get("ScanBy", "TimestampDescending") == "TimestampDescending"
    keyed.sort(key=lambda pair: pair[0], reverse=descending)
    if last is not None:
        keyed = [p for p in keyed if (p[0] < last if descending else p[0] > last)]
    return keyed[:limit], len(keyed) > limit


@operation(SERVICE, "DeleteAlarms", Permission.MANAGE)
async def delete_alarms(call: AwsCall) -> dict[str, Any]:
    """Unknown names are passed over, as CloudWatch does: the others are still deleted."""
    store, ws = _alerting(call).alarms, call.workspace

    def work() -> None:
        for name in call.params["AlarmNames"]:
            with contextlib.suppress(NotFound):
                store.delete(name, workspace=ws)

    await asyncio.to_thread(work)
    return {}


@operation(SERVICE, "SetAlarmState", Permission.MANAGE)
async def set_alarm_state(call: AwsCall) -> dict[str, Any]:
    params = call.params
    data: Any = {}
    if params.get("StateReasonData"):
        try:
            data = json.loads(params["StateReasonData"])
        except ValueError:
            data = None
        if not isinstance(data, dict):
            raise AwsError(INVALID_FORMAT, "StateReasonData must be a JSON object")
    name = params["AlarmName"]
    try:
        await asyncio.to_thread(
            _alerting(call).set_state,
            name,
            call.workspace,
            params["StateValue"],
            params["StateReason"],
            data,
        )
    except NotFound:
        raise AwsError(NOT_FOUND, f"Alarm {name} not found") from None
    return {}
