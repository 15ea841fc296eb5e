"""The web UI, dashboards, alarms, notifiers and inference profiles obey the caller's
principal: two workspaces with their own records, traces, dashboards, alarms, notifiers and
profiles, and every page and API answer shows only the caller's; another workspace's names
and ids answer 404 like unknown ones; bodies need the ``bodies`` permission; a reader gets
403 for every change.

The server is the real app (`create_app` over a real runtime and DuckDB file) served by
uvicorn on 127.0.0.1, without the lead's access middleware (``access=False``). In its place a
test double, `PrincipalFromHeader`, puts ``Principal(...)`` in the scope from the
``x-test-principal`` header (``WORKSPACE/ROLE``) and, for session principals, a CSRF token in
``llmtrail.csrf`` — what the access middleware does after it checked a key or a session.
Expected numbers come from the query API, never from this file.
"""

from __future__ import annotations

import json
import re
import secrets
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from starlette.types import ASGIApp, Receive, Scope, Send

from llmtrail.config import AlertSettings, Settings
from llmtrail.security.principal import ROLES, SCOPE_KEY, Permission, Principal
from llmtrail.server.app import create_app
from llmtrail.server.runtime import Runtime
from tests.harness import free_port

WORKSPACES = ("team-a", "team-b")
HEADER = "x-test-principal"
CSRF = "csrf-token-of-the-test-session"
PAGES = (
    "/",
    "/logs",
    "/traces",
    "/sessions",
    "/applications",
    "/errors",
    "/cost?by=requestMetadata.application_name",
    "/profiles",
    "/alarms",
    "/dashboards",
    "/settings",
)


def principal(workspace: str, role: str) -> Principal:
    """``admin``, ``reader`` (no bodies) or ``bodies`` (a reader with the bodies permission)."""
    permissions = ROLES["admin" if role == "admin" else "reader"]
    if role == "bodies":
        permissions = permissions | {Permission.BODIES}
    key_id = f"{workspace}-{role}-key"
    return Principal(role, workspace, key_id, permissions, via="session")


class PrincipalFromHeader:
    """Test double of the access middleware: the principal named by ``x-test-principal``;
    a request without the header is refused, so no request here runs as the open admin."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            named = dict(scope["headers"]).get(HEADER.encode(), b"").decode()
            if "/" not in named:
                await send({"type": "http.response.start", "status": 401, "headers": []})
                await send({"type": "http.response.body", "body": b"no test principal"})
                return
            workspace, role = named.split("/", 1)
            scope[SCOPE_KEY] = principal(workspace, role)
            scope["llmtrail.csrf"] = CSRF
        await self.app(scope, receive, send)


@dataclass
class Answer:
    status: int
    text: str

    def json(self) -> Any:
        return json.loads(self.text)


@dataclass
class Served:
    url: str
    runtime: Runtime
    data: dict[str, dict[str, str]] = field(default_factory=dict)  # workspace -> names

    def ask(self, who: str, method: str, path: str, body: Any = None) -> Answer:
        data = None if body is None else json.dumps(body).encode()
        headers = {HEADER: who, "content-type": "application/json"}
        request = urllib.request.Request(self.url + path, data, headers, method=method)
        try:
            with urllib.request.urlopen(request, timeout=120) as response:
                return Answer(response.status, response.read().decode())
        except urllib.error.HTTPError as error:
            with error:
                return Answer(error.code, error.read().decode())

    def ok(self, who: str, method: str, path: str, body: Any = None) -> Any:
        answer = self.ask(who, method, path, body)
        assert answer.status in (200, 201), (method, path, answer)
        return answer.json()

    def count(self, who: str, query: str) -> str:
        """The query API's one value for ``query`` over the last day, as text."""
        now = time.time()
        body = {"queryString": query, "startTime": int(now - 86400), "endTime": int(now + 60)}
        result = self.ok(who, "POST", "/api/query", body)
        return str(result["results"][0][0]["value"])


def record(workspace: str, index: int, trace_id: str, now: datetime) -> dict[str, Any]:
    return {
        "schemaType": "ModelInvocationLog",
        "schemaVersion": "1.0",
        "timestamp": (now - timedelta(minutes=5, seconds=index)).isoformat(),
        "requestId": f"{workspace}-request-{index}",
        "operation": "Converse",
        "modelId": "anthropic.claude-3-haiku-20240307-v1:0",
        "requestMetadata": {"application_name": f"{workspace}-app"},
        "input": {
            "inputContentType": "application/json",
            "inputBodyJson": {
                "messages": [{"role": "user", "content": [{"text": f"{workspace}-PROMPT"}]}]
            },
            "inputTokenCount": 10 + index,
        },
        "output": {
            "outputContentType": "application/json",
            "outputBodyJson": {
                "output": {
                    "message": {"role": "assistant", "content": [{"text": f"{workspace}-ANSWER"}]}
                }
            },
            "outputTokenCount": 5,
        },
        "trace": {
            "traceId": trace_id,
            "spanId": secrets.token_hex(8),
            "sessionId": f"{workspace}-session",
        },
    }


def fill(server: Served, workspace: str) -> dict[str, str]:
    """Records (one trace), a dashboard, an alarm, a notifier and a profile in ``workspace``,
    through the API as that workspace's keys."""
    admin, ingester = f"{workspace}/admin", f"{workspace}/admin"
    now = datetime.now(UTC)
    trace_id = secrets.token_hex(16)
    records = [
        record(workspace, i, trace_id, now) for i in range(3 if workspace == "team-a" else 2)
    ]
    server.ok(ingester, "POST", "/api/records", records)
    board = {
        "widgets": [
            {"type": "text", "properties": {"markdown": f"# {workspace} board"}},
            {"type": "log", "properties": {"query": "stats count(*) as n", "view": "table"}},
            {"type": "alarm", "properties": {"alarms": [f"{workspace}-errors"]}},
        ]
    }
    server.ok(admin, "PUT", f"/api/dashboards/{workspace}-board", board)
    alarm = {
        "Query": "stats count(*)",
        "Threshold": 1,
        "ComparisonOperator": "GreaterThanOrEqualToThreshold",
        "Period": 86400,
        "EvaluationPeriods": 1,
    }
    server.ok(admin, "PUT", f"/api/alarms/{workspace}-errors", alarm)
    hook = {"type": "webhook", "url": f"http://127.0.0.1:9/{workspace}"}
    server.ok(admin, "PUT", f"/api/notifiers/{workspace}-hook", hook)
    created = server.ok(
        admin,
        "POST",
        "/api/profiles",
        {"inferenceProfileName": f"{workspace}-profile", "modelSource": {"copyFrom": "sim/echo"}},
    )
    return {
        "request": f"{workspace}-request-0",
        "trace": trace_id,
        "app": f"{workspace}-app",
        "board": f"{workspace}-board",
        "alarm": f"{workspace}-errors",
        "notifier": f"{workspace}-hook",
        "profile": f"{workspace}-profile",
        "arn": created["inferenceProfileArn"],
        "prompt": f"{workspace}-PROMPT",
    }


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    data_dir: Path = tmp_path_factory.mktemp("ui-principal") / "data"
    alerts = AlertSettings(allow_private_webhooks=True)  # the notifiers point at loopback
    runtime = Runtime(Settings(data_dir=data_dir, alerts=alerts))
    app = PrincipalFromHeader(create_app(runtime, access=False))
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="on", log_level="warning")
    uvicorn_server = uvicorn.Server(config)
    thread = threading.Thread(target=uvicorn_server.run, name="ui-principal-server")
    thread.start()
    try:
        deadline = time.monotonic() + 60
        while not uvicorn_server.started:
            assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
            time.sleep(0.05)
        served = Served(f"http://127.0.0.1:{port}", runtime)
        while served.ask("team-a/reader", "GET", "/readyz").status != 200:
            assert time.monotonic() < deadline, "the server did not become ready"
            time.sleep(0.05)
        for workspace in WORKSPACES:
            served.data[workspace] = fill(served, workspace)
        for workspace in WORKSPACES:  # every record stored before the tests read them
            expected = 3 if workspace == "team-a" else 2
            while served.count(f"{workspace}/reader", "stats count(*)") != str(expected):
                assert time.monotonic() < deadline, "the records were not stored"
                time.sleep(0.1)
        yield served
    finally:
        uvicorn_server.should_exit = True
        thread.join(60)
        runtime.close()
    assert not thread.is_alive()


def other(workspace: str) -> str:
    return WORKSPACES[1 - WORKSPACES.index(workspace)]


def foreign_names(server: Served, workspace: str) -> list[str]:
    theirs = server.data[other(workspace)]
    return [theirs[k] for k in ("request", "trace", "app", "board", "alarm", "profile", "prompt")]


@pytest.mark.parametrize("workspace", WORKSPACES)
def test_every_page_shows_only_the_principals_workspace(server: Served, workspace: str) -> None:
    mine = server.data[workspace]
    shown: dict[str, str] = {}
    for page in PAGES:
        answer = server.ask(f"{workspace}/admin", "GET", page)
        assert answer.status == 200, (page, answer.text[:500])
        shown[page] = answer.text
        for name in foreign_names(server, workspace):
            assert name not in answer.text, (page, name)
    assert mine["request"] in shown["/logs"]
    assert mine["app"] in shown["/applications"]
    assert mine["app"] in shown["/cost?by=requestMetadata.application_name"]
    assert mine["board"] in shown["/dashboards"]
    assert mine["alarm"] in shown["/alarms"]
    assert mine["profile"] in shown["/profiles"]
    assert mine["trace"] in shown["/traces"]


@pytest.mark.parametrize("workspace", WORKSPACES)
def test_another_workspaces_objects_are_not_found(server: Served, workspace: str) -> None:
    theirs = server.data[other(workspace)]
    admin = f"{workspace}/admin"
    quoted_arn = urllib.parse.quote(theirs["arn"], safe="")
    not_found = [
        ("GET", f"/logs/{theirs['request']}"),
        ("GET", f"/traces/{theirs['trace']}"),
        ("GET", f"/alarms/{theirs['alarm']}"),
        ("GET", f"/dashboards/{theirs['board']}"),
        ("GET", f"/api/dashboards/{theirs['board']}"),
        ("GET", f"/api/dashboards/{theirs['board']}/view"),
        ("DELETE", f"/api/dashboards/{theirs['board']}"),
        ("GET", f"/api/alarms/{theirs['alarm']}"),
        ("GET", f"/api/alarms/{theirs['alarm']}/history"),
        ("POST", f"/api/alarms/{theirs['alarm']}/evaluate"),
        ("POST", f"/api/alarms/{theirs['alarm']}/test"),
        ("DELETE", f"/api/alarms/{theirs['alarm']}"),
        ("GET", f"/api/notifiers/{theirs['notifier']}"),
        ("POST", f"/api/notifiers/{theirs['notifier']}/test"),
        ("DELETE", f"/api/notifiers/{theirs['notifier']}"),
        ("GET", f"/api/profiles/{quoted_arn}"),
        ("GET", f"/api/profiles/{quoted_arn}/tags"),
        ("DELETE", f"/api/profiles/{quoted_arn}"),
    ]
    for method, path in not_found:
        answer = server.ask(admin, method, path)
        assert answer.status == 404, (method, path, answer)
    # and the API lists only the caller's
    mine = server.data[workspace]
    boards = server.ok(admin, "GET", "/api/dashboards")["DashboardEntries"]
    assert mine["board"] in [b["DashboardName"] for b in boards]
    assert theirs["board"] not in [b["DashboardName"] for b in boards]
    alarms = server.ok(admin, "GET", "/api/alarms")["MetricAlarms"]
    assert [a["AlarmName"] for a in alarms] == [mine["alarm"]]
    assert {a["Workspace"] for a in alarms} == {workspace}
    notifiers = server.ok(admin, "GET", "/api/notifiers")["notifiers"]
    assert [n["name"] for n in notifiers] == [mine["notifier"]]
    profiles = server.ok(admin, "GET", "/api/profiles?typeEquals=APPLICATION")
    arns = [p["inferenceProfileArn"] for p in profiles["inferenceProfileSummaries"]]
    assert arns == [mine["arn"]]
    # the gateway's resolve: a profile ARN of another workspace does not resolve
    assert server.runtime.profiles.resolve(mine["arn"], workspace=workspace) is not None
    assert server.runtime.profiles.resolve(theirs["arn"], workspace=workspace) is None
    # a body cannot put an alarm in another workspace
    alarm = {
        **server.ok(admin, "GET", f"/api/alarms/{mine['alarm']}"),
        "Workspace": other(workspace),
    }
    for state_field in ("StateValue", "StateReason", "StateReasonData", "Value"):
        alarm.pop(state_field, None)
    for extra in ("StateUpdatedTimestamp", "EvaluatedAt", "EvaluationError"):
        alarm.pop(extra, None)
    refused = server.ask(admin, "PUT", f"/api/alarms/{mine['alarm']}", alarm)
    assert refused.status == 400 and "Workspace" in refused.text


@pytest.mark.parametrize("workspace", WORKSPACES)
def test_alarms_and_dashboards_read_their_own_workspace(server: Served, workspace: str) -> None:
    admin = f"{workspace}/admin"
    expected = server.count(admin, "stats count(*)")  # what the query API says
    evaluated = server.ok(admin, "POST", f"/api/alarms/{server.data[workspace]['alarm']}/evaluate")
    assert evaluated["Value"] is not None and str(int(evaluated["Value"])) == expected
    view = server.ok(
        admin, "GET", f"/api/dashboards/{server.data[workspace]['board']}/view?since=1d"
    )
    text, log, alarm = view["widgets"]
    assert f"{workspace} board" in (text["html"] or "")
    assert log["rows"] == [[expected]]
    assert [a["AlarmName"] for a in alarm["alarms"]] == [server.data[workspace]["alarm"]]


def test_a_budgets_alarms_are_in_its_workspace(server: Served) -> None:
    budget = {
        "name": "b-team-b",
        "dimension": "requestMetadata.application_name",
        "value": "team-b-app",
        "limitUsd": "100",
    }
    server.ok("team-b/admin", "PUT", "/api/budgets", budget)
    try:
        assert server.runtime.alarms.tick()  # syncs the budgets' alarms, then evaluates
        names = {
            a["AlarmName"] for a in server.ok("team-b/admin", "GET", "/api/alarms")["MetricAlarms"]
        }
        assert {"budget b-team-b 80%", "budget b-team-b 100%"} <= names
        theirs = server.ok("team-a/admin", "GET", "/api/alarms")["MetricAlarms"]
        assert not any("b-team-b" in a["AlarmName"] for a in theirs)
        assert "budget b-team-b 80%" not in server.ask("team-a/admin", "GET", "/alarms").text
        quoted = urllib.parse.quote("budget b-team-b 80%")
        assert server.ask("team-a/admin", "GET", f"/api/alarms/{quoted}").status == 404
        shown = server.ok("team-b/admin", "GET", f"/api/alarms/{quoted}")
        assert shown["Workspace"] == "team-b" and shown["StateValue"] in ("OK", "ALARM")
    finally:
        server.ok("team-b/admin", "DELETE", "/api/budgets/b-team-b")
    assert server.runtime.alarms.tick()
    names = {
        a["AlarmName"] for a in server.ok("team-b/admin", "GET", "/api/alarms")["MetricAlarms"]
    }
    assert not any("b-team-b" in name for name in names)


@pytest.mark.parametrize("workspace", WORKSPACES)
def test_the_overview_counts_only_the_workspaces_calls(server: Served, workspace: str) -> None:
    who = f"{workspace}/reader"
    expected = server.count(who, "stats count(*)")
    deadline = time.monotonic() + 30
    while True:  # the rollups are folded behind the records
        page = server.ask(who, "GET", "/?range=1d").text
        tile = re.search(r'data-metric="Invocations" data-value="([0-9.]+)"', page)
        assert tile is not None
        if str(int(float(tile[1]))) == expected or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert str(int(float(tile[1]))) == expected


def test_bodies_need_the_bodies_permission(server: Served) -> None:
    mine = server.data["team-a"]
    record_page = f"/logs/{mine['request']}"
    trace_page = f"/traces/{mine['trace']}"
    for page in (record_page, trace_page):
        hidden = server.ask("team-a/reader", "GET", page)
        assert hidden.status == 200
        assert mine["prompt"] not in hidden.text and "team-a-ANSWER" not in hidden.text
        assert "bodies need the bodies permission" in hidden.text
        shown = server.ask("team-a/bodies", "GET", page)
        assert shown.status == 200 and mine["prompt"] in shown.text
        assert "bodies need the bodies permission" not in shown.text
    assert mine["request"] in server.ask("team-a/reader", "GET", record_page).text  # metadata
    query = urllib.parse.urlencode({"q": "fields input.inputBodyJson | limit 5"})
    refused = server.ask("team-a/reader", "GET", f"/logs?{query}")
    assert refused.status == 403 and mine["prompt"] not in refused.text
    allowed = server.ask("team-a/bodies", "GET", f"/logs?{query}")
    assert allowed.status == 200 and mine["prompt"] in allowed.text


def test_a_reader_gets_403_for_every_change(server: Served) -> None:
    mine = server.data["team-a"]
    reader = "team-a/reader"
    arn = urllib.parse.quote(mine["arn"], safe="")
    changes: list[tuple[str, str, Any]] = [
        ("PUT", f"/api/dashboards/{mine['board']}", {"widgets": []}),
        ("DELETE", f"/api/dashboards/{mine['board']}", None),
        ("PUT", f"/api/alarms/{mine['alarm']}", {"Query": "stats count(*)", "Threshold": 1}),
        ("DELETE", f"/api/alarms/{mine['alarm']}", None),
        ("POST", f"/api/alarms/{mine['alarm']}/evaluate", None),
        ("POST", f"/api/alarms/{mine['alarm']}/test", None),
        ("PUT", f"/api/notifiers/{mine['notifier']}", {"type": "webhook", "url": "http://x"}),
        ("DELETE", f"/api/notifiers/{mine['notifier']}", None),
        ("POST", f"/api/notifiers/{mine['notifier']}/test", None),
        ("POST", "/api/profiles", {"inferenceProfileName": "x", "modelSource": {"copyFrom": "m"}}),
        ("DELETE", f"/api/profiles/{arn}", None),
        ("POST", f"/api/profiles/{arn}/tags", {"tags": [{"key": "a", "value": "b"}]}),
        ("DELETE", f"/api/profiles/{arn}/tags?tagKeys=a", None),
        ("POST", "/logs", None),
    ]
    for method, path, body in changes:
        answer = server.ask(reader, method, path, body)
        assert answer.status == 403, (method, path, answer)
        assert answer.json()["permission"] == "manage"
    # nothing changed
    assert server.ask(reader, "GET", f"/api/dashboards/{mine['board']}").status == 200
    assert server.ask(reader, "GET", f"/api/alarms/{mine['alarm']}").status == 200
    assert server.ask(reader, "GET", f"/api/profiles/{arn}").status == 200
    # and the reader's pages offer no control it may not use
    assert 'action="/logs" class="save"' not in server.ask(reader, "GET", "/logs").text


def test_the_header_names_the_session_and_forms_carry_the_csrf_token(server: Served) -> None:
    page = server.ask("team-b/admin", "GET", "/logs").text
    assert f'<meta name="csrf-token" content="{CSRF}">' in page
    signed_in = re.search(r'<span class="signed-in" id="signed-in">(.*?)</span>', page, re.S)
    assert signed_in is not None
    assert "team-b-admin-key" in signed_in[1] and "team-b" in signed_in[1]
    assert "admin" in signed_in[1] and 'href="/logout"' in signed_in[1]
    save_form = re.search(
        r'<form method="post" action="/logs" class="save">(.*?)</form>', page, re.S
    )
    assert save_form is not None
    assert f'<input type="hidden" name="csrf" value="{CSRF}">' in save_form[1]
    script = server.ask("team-b/admin", "GET", "/static/app.js").text
    assert "x-llmtrail-csrf" in script and 'meta[name="csrf-token"]' in script
