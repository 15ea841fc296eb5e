"""The data and management APIs obey the caller's principal: two workspaces' records, spans,
budgets and saved queries stay apart on every surface (records, query, filter patterns,
traces, errors, timeline, metrics, cost, reports, budgets), another workspace's id is 404
like an unknown one, and a key without the ``bodies`` permission never receives a body.

The app is the real one (`create_app` over a real runtime: DuckDB file, spool, pipeline)
through Starlette's TestClient; the permission tests mount what the data APIs' ``routes()``
give app.py (app.py mounts the records and traces routes inline until it takes
``RecordsAPI.routes()`` and ``TracesAPI.routes()``). The principal comes from a test header
through `PrincipalFromHeader`, a test double of the access middleware (which resolves keys
into the same ``scope["llmtrail.principal"]``); everything behind it is llmtrail's own code,
the runtime's `AuditLog` included (the body reads the surfaces audit are read back from it).
Expected figures come from the query API, asked as each workspace, never from constants.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import orjson
import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient

from llmtrail.analytics.budget_guard import BudgetGuard
from llmtrail.analytics.budgets import Budget, month_bounds
from llmtrail.capture.merge import GatewayCallIndex
from llmtrail.config import load_settings
from llmtrail.security.principal import ROLES, SCOPE_KEY, Permission, Principal
from llmtrail.server.api import RecordsAPI
from llmtrail.server.app import create_app
from llmtrail.server.cost_api import CostAPI
from llmtrail.server.metrics_api import MetricsAPI
from llmtrail.server.query_api import QueryAPI
from llmtrail.server.runtime import Runtime
from llmtrail.server.traces_api import TracesAPI
from tests.wall_clock import month_start, wait_out_month_end

pytestmark = pytest.mark.filterwarnings("ignore:open_binary is deprecated:DeprecationWarning")

HEADER = "x-test-principal"
ALPHA, BETA = "alpha", "beta"
TENANT = "t-shared"  # both workspaces' records name it: budgets must still keep them apart


class PrincipalFromHeader:
    """Test double of the access middleware: ``x-test-principal: ROLE:WORKSPACE[:bodies]``
    becomes the request's `Principal` (no header: none, as an app without access control)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            raw = dict(scope["headers"]).get(HEADER.encode())
            if raw:
                role, workspace, *extra = raw.decode().split(":")
                granted = ROLES[role] | ({Permission.BODIES} if "bodies" in extra else set())
                principal = Principal(
                    role, workspace, key_id=f"{role}-{workspace}", permissions=frozenset(granted)
                )
                scope = {**scope, SCOPE_KEY: principal}
        await self.app(scope, receive, send)


def who(role: str, workspace: str, bodies: bool = False) -> dict[str, str]:
    return {HEADER: f"{role}:{workspace}" + (":bodies" if bodies else "")}


@dataclass
class World:
    client: TestClient
    runtime: Runtime
    shared_id: str  # one requestId ingested in both workspaces, with different models
    ids: dict[str, list[str]]  # workspace -> its requestIds
    traces: dict[str, str]  # workspace -> a trace id of its own
    start: str
    end: str


def doc(request_id: str, ts: datetime, model: str, secret: str) -> dict[str, Any]:
    return {
        "schemaType": "ModelInvocationLog",
        "schemaVersion": "1.0",
        "timestamp": ts.isoformat().replace("+00:00", "Z"),
        "requestId": request_id,
        "operation": "Converse",
        "modelId": model,
        "workspace": BETA,  # the caller's claim: never believed
        "requestMetadata": {"tenant_id": TENANT},
        "input": {
            "inputContentType": "application/json",
            "inputBodyJson": {"messages": [{"role": "user", "content": secret}]},
            "inputTokenCount": 100,
        },
        "output": {"outputBodyJson": {"text": f"answer to {secret}"}, "outputTokenCount": 50},
        "cost": {"totalUsd": "0.250000000", "priceVersion": "test"},
        "latencyMs": 120,
        "errorCode": "ThrottlingException" if request_id.endswith("-err") else None,
    }


def otlp_body(trace_id: str, secret: str) -> bytes:
    now = time.time_ns()
    spans = [
        {
            "traceId": trace_id,
            "spanId": uuid.uuid4().hex[:16],
            "name": "tool step",
            "startTimeUnixNano": str(now),
            "endTimeUnixNano": str(now + 5_000_000),
            "attributes": [
                {"key": "llmtrail.span.kind", "value": {"stringValue": "tool"}},
                {"key": "llmtrail.input", "value": {"stringValue": secret}},
            ],
        }
    ]
    return orjson.dumps(
        {"resourceSpans": [{"scopeSpans": [{"scope": {"name": "t"}, "spans": spans}]}]}
    )


def settle(runtime: Runtime) -> None:
    deadline = time.monotonic() + 30
    while True:  # acknowledged after the spool's fsync: wait until the store has them
        s = runtime.pipeline.stats()
        if s["queue_depth"] == 0 and s["stored"] >= s["spooled"] >= s["accepted"]:
            return
        assert time.monotonic() < deadline, s
        time.sleep(0.02)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    data = tmp_path_factory.mktemp("api-principal") / "data"
    runtime = Runtime(load_settings(None, env={}, overrides={"data_dir": data}))
    runtime.start()
    # the module's tests run within a minute: in one month, the month the shared records
    # (which name the budgets' tenant) count in, a minute ago or at the month's first instant
    now = wait_out_month_end(timedelta(seconds=60)).replace(microsecond=0)
    this_month = max(now - timedelta(minutes=1), month_start(now))
    shared = f"shared-{uuid.uuid4().hex[:8]}"
    ids: dict[str, list[str]] = {}
    traces: dict[str, str] = {}
    try:
        with TestClient(PrincipalFromHeader(create_app(runtime, lifespan=False))) as client:
            for n, workspace in enumerate((ALPHA, BETA)):
                own = [f"{workspace}-{i}" for i in range(3 + n)] + [f"{workspace}-err"]
                docs = [
                    doc(rid, now - timedelta(minutes=i + 1), f"model-{workspace}", f"s-{rid}")
                    for i, rid in enumerate(own)
                ]
                docs.append(doc(shared, this_month, f"model-{workspace}", "x"))
                body = "\n".join(json.dumps(d) for d in docs)
                answer = client.post(
                    "/api/records", content=body, headers=who("ingester", workspace)
                )
                assert answer.status_code == 200, answer.text
                assert answer.json()["stored"] == len(docs)
                ids[workspace] = [*own, shared]
                traces[workspace] = uuid.uuid4().hex
                sent = client.post(
                    "/v1/traces",
                    content=otlp_body(traces[workspace], f"span secret of {workspace}"),
                    headers={"content-type": "application/json", **who("ingester", workspace)},
                )
                assert sent.status_code == 200, sent.text
            settle(runtime)
            window = now - timedelta(hours=2), now + timedelta(minutes=1)
            start, end = (t.isoformat().replace("+00:00", "Z") for t in window)
            yield World(client, runtime, shared, ids, traces, start, end)
    finally:
        runtime.close()


def query(w: World, workspace: str, text: str, bodies: bool = False, role: str = "admin") -> Any:
    body = {"queryString": text, "startTime": w.start, "endTime": w.end, "limit": 10_000}
    return w.client.post("/api/query", json=body, headers=who(role, workspace, bodies))


def rows(w: World, workspace: str, text: str) -> list[dict[str, str | None]]:
    answer = query(w, workspace, text)
    assert answer.status_code == 200, answer.text
    return [{c["field"]: c["value"] for c in row} for row in answer.json()["results"]]


def listed(w: World, caller: str, **params: str) -> list[dict[str, Any]]:
    answer = w.client.get(
        "/api/records",
        params={"start": w.start, "end": w.end, "limit": "1000", **params},
        headers=who("admin", caller, bodies=True),
    )
    assert answer.status_code == 200, answer.text
    return list(answer.json()["records"])


# -- records ------------------------------------------------------------------------------------
def test_ingested_records_land_in_the_callers_workspace(world: World) -> None:
    for workspace in (ALPHA, BETA):
        found = listed(world, workspace)
        assert sorted(r["requestId"] for r in found) == sorted(world.ids[workspace])
        assert {r["workspace"] for r in found} == {workspace}
        assert {r["modelId"] for r in found} == {f"model-{workspace}"}


def test_one_request_id_in_two_workspaces_reads_as_each_ones_own(world: World) -> None:
    for workspace in (ALPHA, BETA):
        answer = world.client.get(
            f"/api/records/{world.shared_id}", headers=who("reader", workspace)
        )
        assert answer.status_code == 200
        assert answer.json()["modelId"] == f"model-{workspace}"


def test_another_workspaces_id_is_404_like_an_unknown_one(world: World) -> None:
    foreign = world.ids[BETA][0]
    answer = world.client.get(f"/api/records/{foreign}", headers=who("admin", ALPHA, True))
    unknown = world.client.get("/api/records/no-such-id", headers=who("admin", ALPHA, True))
    assert answer.status_code == unknown.status_code == 404
    assert answer.json()["title"] == unknown.json()["title"]
    assert answer.json()["detail"] == unknown.json()["detail"].replace("no-such-id", foreign)


def test_request_parameters_cannot_widen_the_workspace(world: World) -> None:
    for params in (
        {"workspace": BETA},
        {"metadata": f"workspace={BETA}"},
        {"filterPattern": f'{{ $.workspace = "{BETA}" }}'},
        {"filterPattern": '{ $.modelId = "model-beta" }'},
    ):
        found = listed(world, ALPHA, **params)
        assert {r["workspace"] for r in found} <= {ALPHA}, params
        assert not [r for r in found if r["requestId"].startswith(BETA)]
    own = listed(world, ALPHA, filterPattern='{ $.modelId = "model-alpha" }')
    assert sorted(r["requestId"] for r in own) == sorted(world.ids[ALPHA])


# -- the query language -------------------------------------------------------------------------
ESCAPES = [
    'fields @requestId, workspace | filter workspace = "beta"',
    'fields @requestId, workspace | filter workspace != "alpha"',
    "SOURCE '/aws/bedrock/modelinvocations' | fields @requestId, workspace "
    '| filter workspace = "beta"',
    'fields @requestId, workspace | filter modelId = "model-beta"',
    "stats count(*) as n by workspace",
    "fields @requestId, workspace | dedup workspace",
    'fields @requestId, workspace | parse @requestId "*-*" as ws, n | filter ws = "beta"',
    "fields @requestId, workspace | sort workspace desc | limit 1",
]


@pytest.mark.parametrize("text", ESCAPES)
def test_no_query_reaches_another_workspaces_rows(world: World, text: str) -> None:
    found = rows(world, ALPHA, text)
    assert all(r.get("workspace") in (None, ALPHA) for r in found), found
    assert not [r for r in found if str(r.get("@requestId", "")).startswith(BETA)]


def test_query_counts_are_each_workspaces_own(world: World) -> None:
    for workspace in (ALPHA, BETA):
        (row,) = rows(world, workspace, "stats count(*) as n")
        assert int(str(row["n"])) == len(world.ids[workspace])


def test_a_query_id_and_a_saved_query_belong_to_their_workspace(world: World) -> None:
    put = world.client.put(
        "/api/saved-queries/mine",
        json={"queryString": "fields @requestId"},
        headers=who("admin", ALPHA),
    )
    assert put.status_code == 200, put.text
    theirs = world.client.get("/api/saved-queries/mine", headers=who("admin", BETA))
    assert theirs.status_code == 404
    assert world.client.get("/api/saved-queries", headers=who("reader", BETA)).json() == {
        "queries": []
    }
    assert (
        world.client.delete("/api/saved-queries/mine", headers=who("admin", BETA)).status_code
        == 404
    )
    ran = world.client.post(
        "/api/query",
        json={"name": "mine", "startTime": world.start, "endTime": world.end},
        headers=who("reader", BETA),
    )
    assert ran.status_code == 404
    assert (
        world.client.get("/api/saved-queries/mine", headers=who("reader", ALPHA)).status_code == 200
    )


# -- traces, errors, timeline -------------------------------------------------------------------
def test_traces_errors_and_timeline_are_the_callers_own(world: World) -> None:
    for workspace, other in ((ALPHA, BETA), (BETA, ALPHA)):
        h = who("reader", workspace)
        listing = world.client.get("/api/traces", params={"limit": "1000"}, headers=h).json()
        seen = {t["traceId"] for t in listing["traces"]}
        assert world.traces[workspace] in seen and world.traces[other] not in seen
        mine = world.client.get(f"/api/traces/{world.traces[workspace]}", headers=h)
        assert mine.status_code == 200
        foreign = world.client.get(f"/api/traces/{world.traces[other]}", headers=h)
        unknown = world.client.get(f"/api/traces/{uuid.uuid4().hex}", headers=h)
        assert foreign.status_code == unknown.status_code == 404
        params = {"start": world.start, "end": world.end}
        errors = world.client.get("/api/errors", params=params, headers=h).json()["errors"]
        expected = rows(world, workspace, 'filter status = "ERROR" | stats count(*) as n')
        assert sum(g["count"] for g in errors) == int(str(expected[0]["n"]))
        timeline = world.client.get("/api/timeline", params=params, headers=h)
        assert timeline.status_code == 200
        assert other not in timeline.text


# -- metrics ------------------------------------------------------------------------------------
def test_metrics_count_only_the_callers_records(world: World) -> None:
    for workspace in (ALPHA, BETA):
        answer = world.client.get(
            "/api/metrics",
            params={"metric": "Invocations", "since": "3h", "period": "3600"},
            headers=who("reader", workspace),
        )
        assert answer.status_code == 200, answer.text
        (result,) = answer.json()["MetricDataResults"]
        assert sum(result["Values"]) == len(world.ids[workspace])
        prometheus = world.client.get("/metrics", headers=who("reader", workspace)).text
        other = BETA if workspace == ALPHA else ALPHA
        assert f"model-{workspace}" in prometheus and f"model-{other}" not in prometheus


# -- cost, reports, recompute -------------------------------------------------------------------
def test_cost_and_reports_are_the_callers_own(world: World) -> None:
    params = {"start": world.start, "end": world.end}
    for workspace in (ALPHA, BETA):
        h = who("reader", workspace)
        expected = rows(world, workspace, "stats sum(cost.totalUsd) as usd, count(*) as n")[0]
        cost = world.client.get("/api/cost", params=params, headers=h).json()
        assert cost["workspace"] == workspace
        assert cost["total"]["calls"] == int(str(expected["n"]))
        assert Decimal(cost["total"]["costUsd"]) == Decimal(str(expected["usd"]))
        report = world.client.get("/api/reports/cost", params=params, headers=h).json()
        assert report["scope"]["workspace"] == workspace
        assert f"model-{workspace}" in json.dumps(report)
        other = BETA if workspace == ALPHA else ALPHA
        assert f"model-{other}" not in json.dumps(report)


def test_recompute_reprices_only_the_callers_records(world: World) -> None:
    answer = world.client.post(
        "/api/cost/recompute",
        json={"start": world.start, "end": world.end, "dryRun": True},
        headers=who("admin", ALPHA),
    )
    assert answer.status_code == 200, answer.text
    (row,) = rows(world, ALPHA, "stats count(*) as n")
    assert answer.json()["records"] == int(str(row["n"]))


# -- budgets ------------------------------------------------------------------------------------
def budget(limit: str = "100") -> dict[str, Any]:
    return {
        "name": "cap",
        "dimension": "requestMetadata.tenant_id",
        "value": TENANT,
        "limitUsd": limit,
        "action": "notify",
    }


def test_budgets_belong_to_the_workspace_that_set_them(world: World) -> None:
    c = world.client
    assert c.put("/api/budgets", json=budget(), headers=who("admin", ALPHA)).status_code == 200
    assert c.get("/api/budgets", headers=who("reader", BETA)).json() == {"budgets": []}
    assert c.delete("/api/budgets/cap", headers=who("admin", BETA)).status_code == 404
    assert c.put("/api/budgets", json=budget("7"), headers=who("admin", BETA)).status_code == 200
    refused = c.put(
        "/api/budgets", json={**budget(), "workspace": ALPHA}, headers=who("admin", BETA)
    )
    assert refused.status_code == 400 and refused.json()["field"] == "workspace"
    for workspace, limit in ((ALPHA, "100"), (BETA, "7")):
        (status,) = c.get("/api/budgets", headers=who("reader", workspace)).json()["budgets"]
        assert (status["workspace"], status["limitUsd"]) == (workspace, limit)
        since, until = month_bounds(status["month"])  # the month the budget summed
        body = {
            "queryString": f'filter requestMetadata.tenant_id = "{TENANT}" '
            "| stats sum(cost.totalUsd) as usd",
            "startTime": since.isoformat(),
            "endTime": until.isoformat(),
        }
        spent = c.post("/api/query", json=body, headers=who("reader", workspace)).json()
        assert Decimal(status["spentUsd"]) == Decimal(spent["results"][0][0]["value"])
    assert c.delete("/api/budgets/cap", headers=who("admin", BETA)).status_code == 200
    assert len(c.get("/api/budgets", headers=who("reader", ALPHA)).json()["budgets"]) == 1
    assert c.delete("/api/budgets/cap", headers=who("admin", ALPHA)).status_code == 200


# -- bodies -------------------------------------------------------------------------------------
def test_a_reader_without_bodies_gets_records_without_them(world: World) -> None:
    h = who("reader", ALPHA)
    page = world.client.get("/api/records", params={"limit": "1000"}, headers=h)
    assert page.status_code == 200 and page.headers["x-llmtrail-bodies"] == "omitted"
    assert page.json()["bodiesOmitted"] is True
    text = page.text
    assert "inputBodyJson" not in text and "outputBodyJson" not in text and "s-alpha" not in text
    assert {r["input"]["inputTokenCount"] for r in page.json()["records"]} == {100}
    one = world.client.get(f"/api/records/{world.ids[ALPHA][0]}", headers=h)
    assert one.status_code == 200 and one.headers["x-llmtrail-bodies"] == "omitted"
    assert "inputBodyJson" not in one.json()["input"]
    for path in ("/api/records?bodies=1", f"/api/records/{world.ids[ALPHA][0]}?bodies=true"):
        refused = world.client.get(path, headers=h)
        assert refused.status_code == 403 and refused.json()["field"] == "bodies"


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("fields input.inputBodyJson.messages.0.content", "input.inputBodyJson.messages.0.content"),
        (
            'fields modelId | filter output.outputBodyJson.text like "answer"',
            "output.outputBodyJson.text",
        ),
        ("fields @message", "@message"),
        ('filter modelId = "model-alpha"', "@message"),  # shows @message by default
        ('parse "x*y" as a | fields a', "@message"),  # parses @message by default
        ("stats count(*) by input", "input"),
    ],
)
def test_a_query_that_reads_a_body_is_403_without_bodies(
    world: World, text: str, named: str
) -> None:
    answer = query(world, ALPHA, text, role="reader")
    assert answer.status_code == 403, answer.text
    assert answer.json()["field"] == named and answer.json()["permission"] == "bodies"
    assert query(world, ALPHA, text, bodies=True, role="reader").status_code == 200


def test_a_filter_pattern_on_a_body_is_403_without_bodies(world: World) -> None:
    pattern = '{ $.input.inputBodyJson.messages[0].content = "s-*" }'
    h = who("reader", ALPHA)
    answer = world.client.get("/api/records", params={"filterPattern": pattern}, headers=h)
    assert (
        answer.status_code == 403
        and answer.json()["field"] == "input.inputBodyJson.messages.0.content"
    )
    allowed = listed(world, ALPHA, filterPattern=pattern)
    assert sorted(r["requestId"] for r in allowed) == sorted(world.ids[ALPHA][:-1])


def test_trace_spans_lose_their_inputs_without_bodies(world: World) -> None:
    path = f"/api/traces/{world.traces[ALPHA]}"
    bare = world.client.get(path, headers=who("reader", ALPHA))
    assert bare.status_code == 200 and bare.json()["bodiesOmitted"] is True
    assert "span secret" not in bare.text
    full = world.client.get(path, headers=who("reader", ALPHA, bodies=True))
    assert "span secret of alpha" in full.text


def body_reads(runtime: Runtime) -> list[dict[str, Any]]:
    """The audit log's read-bodies entries of workspace alpha, oldest first."""
    page = runtime.audit.entries(workspace=ALPHA, limit=1000)
    return [e for e in reversed(page.entries) if e["action"] == "read-bodies"]


def test_body_reads_are_audited_once_per_request(world: World) -> None:
    before = len(body_reads(world.runtime))
    listed(world, ALPHA)
    world.client.get(f"/api/records/{world.ids[ALPHA][0]}", headers=who("reader", ALPHA, True))
    query(world, ALPHA, "fields @requestId, input.inputBodyJson", bodies=True)
    world.client.get(f"/api/traces/{world.traces[ALPHA]}", headers=who("reader", ALPHA, True))
    world.client.get("/api/records", headers=who("reader", ALPHA))  # no bodies: no entry
    entries = body_reads(world.runtime)[before:]
    assert [e["surface"] for e in entries] == ["records", "records", "query", "traces"]
    assert [e["keyId"] for e in entries] == [
        "admin-alpha",
        "reader-alpha",
        "admin-alpha",
        "reader-alpha",
    ]
    assert sorted(entries[0]["target"]["requestIds"]) == sorted(world.ids[ALPHA])
    assert entries[1]["target"] == {"requestIds": [world.ids[ALPHA][0]], "count": 1}
    assert sorted(entries[2]["target"]["requestIds"]) == sorted(world.ids[ALPHA])


# -- every route's permission -------------------------------------------------------------------
EXPECTED = {
    Permission.PUBLIC: ["GET /healthz", "GET /readyz"],
    Permission.INGEST: ["POST /api/records", "POST /v1/traces"],
    Permission.READ: [
        "GET /metrics",
        "GET /api/records",
        "GET /api/records/{request_id:path}",
        "GET /api/traces",
        "GET /api/traces/{trace_id}",
        "GET /api/errors",
        "GET /api/timeline",
        "GET /api/prices",
        "GET /api/prices/missing",
        "GET /api/prices/{provider}/{model:path}",
        "GET /api/cost",
        "GET /api/profiles/{identifier:path}/metrics",
        "GET /api/reports/{name}",
        "GET /api/budgets",
        "POST /api/query",
        "GET /api/query/{query_id}",
        "DELETE /api/query/{query_id}",
        "GET /api/saved-queries",
        "GET /api/saved-queries/{name:path}",
        "GET /api/metrics",
        "POST /api/metrics",
        "GET /api/metrics/list",
    ],
    Permission.MANAGE: [
        "PUT /api/prices",
        "DELETE /api/prices/{override_id:path}",
        "POST /api/cost/recompute",
        "PUT /api/budgets",
        "DELETE /api/budgets/{name:path}",
        "PUT /api/saved-queries/{name:path}",
        "DELETE /api/saved-queries/{name:path}",
        "POST /api/metrics/rebuild",
    ],
}


def declared_routes(runtime: Runtime) -> list[Any]:
    """What the data APIs' classes give app.py to mount."""
    queries = QueryAPI(runtime)
    records = RecordsAPI(runtime)
    records.filtered = queries.filtered
    return [
        *records.routes(),
        *TracesAPI(runtime, GatewayCallIndex()).routes(),
        *CostAPI(runtime).routes(),
        *queries.routes(),
        *MetricsAPI(runtime).routes(),
    ]


def test_every_route_declares_the_permission_it_needs(world: World) -> None:
    found: dict[Permission, list[str]] = {}
    for route in declared_routes(world.runtime):
        for method in sorted((route.methods or set()) - {"HEAD"}):
            found.setdefault(route.permission, []).append(f"{method} {route.path}")
    assert {p: sorted(v) for p, v in found.items()} == {p: sorted(v) for p, v in EXPECTED.items()}


def test_roles_without_the_permission_get_403_on_every_route(world: World) -> None:
    routes = declared_routes(world.runtime)
    app = PrincipalFromHeader(Starlette(routes=routes))
    tried = 0
    with TestClient(app) as client:
        for route in routes:
            path = re.sub(r"\{[^}]+\}", "x", route.path)
            for method in (route.methods or set()) - {"HEAD"}:
                for role, granted in ROLES.items():
                    if route.permission in granted or route.permission is Permission.PUBLIC:
                        continue
                    answer = client.request(method, path, headers=who(role, ALPHA))
                    assert answer.status_code == 403, (role, method, route.path)
                    assert answer.json()["permission"] == route.permission.value
                    tried += 1
    assert tried >= 3 * len(EXPECTED[Permission.MANAGE])  # reader, ingester, gateway each


def test_the_guard_counts_and_refuses_per_workspace() -> None:
    """A refusing budget of one workspace never refuses another's calls, even with the same
    name and the same dimension value, and counts only its own workspace's records."""
    cap = {**budget("1"), "action": "refuse"}
    at = datetime(2026, 12, 6, 12, tzinfo=UTC)  # the guard's clock, and when the spend was
    guard = BudgetGuard(
        [Budget.from_dict(cap, ALPHA), Budget.from_dict(cap, BETA)], clock=lambda: at
    )
    call = {"requestMetadata": {"tenant_id": TENANT}}
    spend = {**call, "timestamp": at.isoformat(), "cost": {"totalUsd": "1.5"}}
    guard.observe({**spend, "workspace": BETA})
    assert guard.check({**call, "workspace": ALPHA}) is None
    refusal = guard.check({**call, "workspace": BETA})
    assert refusal is not None and refusal.spent_usd == Decimal("1.5")
    assert guard.check(call) is None  # a call of the default workspace: no budget of its own
    assert [s.budget.workspace for s in guard.state(BETA)] == [BETA]
