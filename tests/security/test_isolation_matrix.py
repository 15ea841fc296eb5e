"""The tenant-isolation matrix (issue 12): three workspaces × four roles × every route the
app mounts (API, gateway, UI pages through a login session) × own, foreign and unknown ids,
on one real server (``llmtrail serve``, DuckDB, the real Gatekeeper and keys).

For every answer (`isolation_probes.check`): no 5xx; no other workspace's tag, secret or id
anywhere in its headers or body; 403 for every variant when the key's role lacks the
route's permission (gateway keys read nothing, readers change nothing, ingesters read
nothing); and a foreign id, name or value answers exactly like an unknown one (404 for an
object). The query language is aimed at other workspaces every way it can name them
(``filter workspace``, ``SOURCE`` with their log groups, their model ids, request ids, trace
ids and markers in regexes, ``parse``, ``dedup``, ``stats … by workspace``, quoting tricks),
through ``/api/query``, saved queries, ``/api/metrics``, dashboards' log widgets, filter
patterns and the Logs page. Writes under another workspace's names (a dashboard, an alarm,
a record with their requestId, a model call to their inference profile, an erasure of their
ids, a key in their workspace) change nothing of theirs: every workspace's objects read the
same at the end as before the matrix.
"""

from __future__ import annotations

import json
import secrets
import time
import urllib.parse
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from llmtrail.security.principal import Permission
from tests.harness import ServerProcess
from tests.security.isolation_cases import TEMPLATES, cases_for
from tests.security.isolation_cross_writes import cross_writes
from tests.security.isolation_probes import Asked, Case, check, run_case, scan, scramble
from tests.security.isolation_world import (
    ROLES,
    Client,
    World,
    bearer,
    build_world,
    ok,
    settle_pipeline,
)

# eleven thousand requests: more than the default per-test limit when the machine is shared
pytestmark = pytest.mark.timeout(900)
THREADS = 3
MIN_REQUESTS = 10_000
ENV = {"LLMTRAIL_SERVER__KEY_REFRESH_S": "1", "LLMTRAIL_ALERTS__ALLOW_PRIVATE_WEBHOOKS": "true"}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    data = tmp_path_factory.mktemp("isolation") / "data"
    with ServerProcess(data, env=ENV) as server:
        client = Client("127.0.0.1", server.port)
        try:
            yield build_world(client, server.url)
        finally:
            client.close()
        log = server.log()
    assert "Traceback" not in log, log[-5000:]


def app_routes(tmp_path: Path) -> list[tuple[str, str, Permission]]:
    """Every (method, path, permission) the app mounts, read from the app itself."""
    from llmtrail.config import Settings
    from llmtrail.server.app import create_app
    from llmtrail.server.runtime import Runtime

    runtime = Runtime(Settings(data_dir=tmp_path / "routes"))
    try:
        app = create_app(runtime, lifespan=False, access=False)
        cells = [c.cell_contents for c in app.__closure__ or ()]
        (starlette,) = [c for c in cells if type(c).__name__ == "Starlette"]
        return [
            (method, route.path, route.permission)
            for route in starlette.routes
            for method in sorted(route.methods or ())
            if method != "HEAD"
        ]
    finally:
        runtime.close()


CALLERS = [(ws, role) for ws in ("w1", "w2", "w3") for role in ROLES]
# PROBE becomes the caller's secret: a call or record that landed in another workspace
# would show it there, where every read of the matrix scans for it
CHAT = '{"model": "%s", "messages": [{"role": "user", "content": "PROBE"}]}'
CONVERSE = '{"messages": [{"role": "user", "content": [{"text": "PROBE"}]}]}'
GATEWAY: list[tuple[str, str, str | None, dict[str, Any]]] = [
    ("POST", "/v1/chat/completions", CHAT % "sim/echo", {}),
    ("POST", "/chat/completions", CHAT % "sim/echo", {}),
    ("POST", "/v1/chat/completions", CHAT % "{arn}", {"foreign": False}),
    ("POST", "/v1/embeddings", '{"model": "sim/embed", "input": "PROBE"}', {}),
    ("POST", "/embeddings", '{"model": "sim/embed", "input": "PROBE"}', {}),
    ("GET", "/v1/models", None, {}),
    ("GET", "/models", None, {}),
    (
        "POST",
        "/v1/messages",
        '{"model": "sim/echo", "max_tokens": 16, '
        '"messages": [{"role": "user", "content": "PROBE"}]}',
        {"extra_headers": {"anthropic-version": "2023-06-01"}},
    ),
    ("POST", "/model/sim%2Fecho/converse", CONVERSE, {}),
    ("POST", "/model/sim%2Fecho/converse-stream", CONVERSE, {"compare": "status"}),
    ("POST", "/model/{arn}/converse", CONVERSE, {"foreign": False}),
    ("POST", "/model/sim%2Fecho/invoke", '{"prompt": "PROBE", "max_tokens": 8}', {}),
]


def ingest_body(secret: str) -> str:
    doc = {
        "requestId": f"probe-{secrets.token_hex(8)}",
        "modelId": "probe-model",
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "workspace": "w2",  # a claim, never believed
        "requestMetadata": {"note": secret},
    }
    return json.dumps(doc)


OTLP = (
    '{"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "%s", "spanId": "%s", '
    '"name": "probe", "startTimeUnixNano": "1", "endTimeUnixNano": "2", "attributes": '
    '[{"key": "llmtrail.input", "value": {"stringValue": "%s"}}]}]}]}]}'
)
# (a claim in the data itself, as metadata, would be the caller's own data naming "w2")
CLAIM = {"x-llmtrail-workspace": "w2", "x-amzn-bedrock-workspace": "w2"}


def write_cases(world: World) -> list[Case]:
    """Requests that add data to the caller's own workspace (model calls, ingestion, OTLP),
    each carrying the caller's secret and a claim to be another workspace's."""
    out = []
    for who in CALLERS:
        secret = world.spaces[who[0]].secret
        for method, path, body, opts in GATEWAY:
            body = body.replace("PROBE", f"{secret} probe") if body else None
            options = dict(opts)
            options["extra_headers"] = {**CLAIM, **opts.get("extra_headers", {})}
            out.append(Case(who, method, path, body, Permission.GATEWAY, **options))
        ndjson = "application/x-ndjson"
        out.append(
            Case(
                who,
                "POST",
                "/api/records",
                ingest_body(secret),
                Permission.INGEST,
                content_type=ndjson,
                extra_headers=CLAIM,
            )
        )
        spans = OTLP % (secrets.token_hex(16), secrets.token_hex(8), secret)
        out.append(Case(who, "POST", "/v1/traces", spans, Permission.INGEST, extra_headers=CLAIM))
    return out


def matrix_cases(routes: list[tuple[str, str, Permission]]) -> list[Case]:
    missing = sorted({(m, p) for m, p, _ in routes} - set(TEMPLATES))
    assert missing == [], f"routes the matrix does not know: {missing}"
    out = []
    for method, path, permission in routes:
        for who in CALLERS:
            out += cases_for(who, method, path, permission)
            if method == "GET" and not path.startswith("/api") and who[1] in ("admin", "reader"):
                out += cases_for(who, method, path, permission, via="session")
    return out


def run_all(world: World, cases: list[Case]) -> list[Asked]:
    def one(case: Case) -> list[Asked]:
        return check(world, run_case(world, case), lambda: run_case(world, case))

    with ThreadPoolExecutor(THREADS) as pool:
        return [a for answers in pool.map(one, cases) for a in answers]


def snapshot(world: World) -> dict[str, Any]:
    """What another workspace's writes could change of each workspace: the names of its
    objects and its records, as its admin reads them (its own admin's re-PUTs change the
    objects' contents, so those are compared by name)."""
    c = world.client
    lists = {
        "/api/dashboards": ("DashboardEntries", "DashboardName"),
        "/api/alarms": ("MetricAlarms", "AlarmName"),
        "/api/notifiers": ("notifiers", "name"),
        "/api/profiles": ("inferenceProfileSummaries", "inferenceProfileArn"),
        "/api/saved-queries": ("queries", "name"),
        "/api/keys": ("keys", "id"),
        "/api/budgets": ("budgets", "name"),
    }
    out: dict[str, Any] = {}
    for ws in world.spaces.values():
        h = bearer(ws.keys["admin"])
        read: dict[str, Any] = {}
        for path, (field, name) in lists.items():
            answer = ok(c.request("GET", path, headers=h))
            # budgets' own alarms appear when the budget is synced: not a change by anyone
            read[path] = sorted(i[name] for i in answer[field] if not i[name].startswith("budget "))
        for rid in ws.ids["request"]:
            read[rid] = ok(c.request("GET", f"/api/records/{urllib.parse.quote(rid)}", headers=h))
        out[ws.name] = read
    return out


def unchanged(before: dict[str, Any], after: dict[str, Any]) -> None:
    for ws in before:
        for key in before[ws]:
            assert after[ws][key] == before[ws][key], (ws, key)


@pytest.mark.slow  # thousands of requests: over a minute on 2 busy cores
def test_isolation_matrix(world: World, tmp_path: Path) -> None:
    started = time.monotonic()
    routes = app_routes(tmp_path)
    assert len(routes) > 80
    writes = run_all(world, write_cases(world))
    settle_pipeline(world)
    # the matrix reads; its changes (re-PUTs, foreign deletes) come after every read
    cases = matrix_cases(routes)
    reads: list[Case] = []
    changes: list[Case] = []
    for case in cases:
        reading = case.method == "GET" or case.path in ("/api/query", "/api/metrics")
        (reads if reading else changes).append(case)
    before = snapshot(world)
    asked = writes + run_all(world, reads) + run_all(world, changes)
    unchanged(before, snapshot(world))
    extra = world.client.sent
    asked += cross_writes(world)
    unchanged(before, snapshot(world))
    extra = world.client.sent - extra
    total = world.client.sent
    statuses: dict[int, int] = {}
    for a in asked:
        statuses[a.reply.status] = statuses.get(a.reply.status, 0) + 1
    print(
        f"\nisolation matrix: {total} requests ({len(asked)} checked, {extra} cross-writes) "
        f"in {time.monotonic() - started:.1f}s; statuses {sorted(statuses.items())}"
    )
    assert total >= MIN_REQUESTS


def test_the_checks_find_a_planted_leak_and_forgive_an_echo() -> None:
    """The matrix's checks can fail: another workspace's secret or id in an answer is a
    leak, the caller's own input echoed back is not, and a foreign id answered unlike its
    unknown twin fails."""
    from tests.security.isolation_probes import Leak
    from tests.security.isolation_world import Reply, Workspace

    spaces = {
        n: Workspace(n, f"MARK-{n}-0123abcd", f"MARK-{n}-0123abcd-SECRET-9f") for n in ("w1", "w2")
    }
    spaces["w2"].ids["request"] = ["req-2f0c9e1a77"]
    world = World(Client("127.0.0.1", 1), "", "", spaces)
    case = Case(("w1", "reader"), "GET", "/api/records/{request}", object_route=True)

    def answer(variant: str, status: int, body: str, sent: list[str]) -> Asked:
        return Asked(case, variant, "GET", "/x", None, sent, Reply(status, [], body.encode()))

    with pytest.raises(Leak):
        scan(world, answer("plain", 200, '{"m": "MARK-w2-0123abcd-SECRET-9f"}', []))
    with pytest.raises(Leak):
        scan(world, answer("plain", 200, '{"id": "req-2f0c9e1a77"}', []))
    scan(world, answer("foreign:w2", 404, "no record req-2f0c9e1a77", ["req-2f0c9e1a77"]))
    twin = scramble("req-2f0c9e1a77")
    assert twin != "req-2f0c9e1a77" and len(twin) == len("req-2f0c9e1a77")
    foreign = answer(
        "foreign:w2", 404, '{"detail": "no record req-2f0c9e1a77"}', ["req-2f0c9e1a77"]
    )
    unknown = answer("unknown:w2", 404, f'{{"detail": "no record {twin}"}}', [twin])
    check(world, [foreign, unknown], None)  # type: ignore[arg-type]
    found = answer("foreign:w2", 200, '{"detail": "x"}', ["req-2f0c9e1a77"])
    with pytest.raises(AssertionError):
        check(world, [found, unknown], None)  # type: ignore[arg-type]
