"""ListDashboards' pages of 1,000 and DeleteDashboards' workspace, on llmtrail's in-memory
state store: the handlers run as the router runs them, over the same `DashboardStore` the
``/api/dashboards`` routes use (1,001 puts over HTTP would take seconds; the wire's
``NextToken`` is shown end to end by the alarms' pages and the dashboards' refusals)."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest

from llmtrail.dashboards.store import DashboardStore
from llmtrail.security.principal import OPEN, Principal
from llmtrail.server.aws.cloudwatch_dashboards import (
    data_path,
    delete_dashboards,
    get_dashboard,
    list_dashboards,
)
from llmtrail.server.aws.operations import AwsCall, AwsError
from llmtrail.server.aws.tokens import page_token
from llmtrail.store.memory import MemoryStateStore


def run(handler: Any, state: MemoryStateStore, params: dict[str, Any], **who: Any) -> Any:
    principal: Principal = who.get("principal", OPEN)
    call = AwsCall(
        service="monitoring",
        operation=handler.__name__.title().replace("_", ""),
        params=params,
        principal=principal,
        runtime=SimpleNamespace(state=state),
        region="us-east-1",
        account="123456789012",
        request_id="r",
    )
    return asyncio.run(handler(call))


def test_a_thousand_a_page_in_name_order() -> None:
    state = MemoryStateStore()
    store = DashboardStore(state)
    names = [f"team-{i:04d}" for i in range(1001)]
    for name in reversed(names):
        store.put(name, {"widgets": []})
    store.put("other", {"widgets": []})
    first = run(list_dashboards, state, {"DashboardNamePrefix": "team-"})
    assert len(first["DashboardEntries"]) == 1000 and "NextToken" in first
    second = run(
        list_dashboards, state, {"DashboardNamePrefix": "team-", "NextToken": first["NextToken"]}
    )
    assert "NextToken" not in second
    listed = [e["DashboardName"] for p in (first, second) for e in p["DashboardEntries"]]
    assert listed == names
    ours = [e for e in store.list() if e["DashboardName"].startswith("team-")]
    assert [e["Size"] for p in (first, second) for e in p["DashboardEntries"]] == [
        e["Size"] for e in ours
    ]
    everything = run(list_dashboards, state, {})
    assert len(everything["DashboardEntries"]) == 1000
    rest = run(list_dashboards, state, {"NextToken": everything["NextToken"]})
    assert [e["DashboardName"] for e in rest["DashboardEntries"]] == [
        e["DashboardName"] for e in store.list()
    ][1000:]
    elsewhere = AwsCall("monitoring", "DescribeAlarms", {}, OPEN, None, "", "", "")
    with pytest.raises(AwsError) as caught:  # a token of another operation is refused
        run(list_dashboards, state, {"NextToken": page_token(elsewhere, {"after": "team-"})})
    assert caught.value.code == "InvalidParameterValueException"


def test_another_workspace_neither_sees_nor_deletes() -> None:
    state = MemoryStateStore()
    DashboardStore(state).put("shared-name", {"widgets": []})
    other = Principal(role="admin", workspace="w2", permissions=OPEN.permissions)
    listed = run(list_dashboards, state, {"DashboardNamePrefix": "shared"}, principal=other)
    assert listed["DashboardEntries"] == []
    with pytest.raises(AwsError) as caught:
        run(get_dashboard, state, {"DashboardName": "shared-name"}, principal=other)
    assert caught.value.code == "DashboardNotFoundError"
    with pytest.raises(AwsError):
        run(delete_dashboards, state, {"DashboardNames": ["shared-name"]}, principal=other)
    assert DashboardStore(state).get("shared-name") == {"widgets": []}


@pytest.mark.parametrize(
    ("ours", "theirs"),
    [
        ("widgets[2].properties.metrics[0]", "/widgets/2/properties/metrics/0"),
        ("widgets", "/widgets"),
        ("start", "/start"),
        ("DashboardBody", "DashboardBody"),
    ],
)
def test_data_paths_are_json_pointers(ours: str, theirs: str) -> None:
    assert data_path(ours) == theirs
