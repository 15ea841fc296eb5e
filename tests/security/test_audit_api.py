"""``GET /api/audit`` and ``/api/audit/verify`` on a small Starlette app over a real DuckDB
StateStore (the caller's principal put in the scope as the access middleware does), and
``llmtrail audit list|verify`` against that app served by uvicorn on 127.0.0.1."""

from __future__ import annotations

import argparse
import io
from collections.abc import Iterator
from contextlib import redirect_stdout
from pathlib import Path

import orjson
import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient
from starlette.types import ASGIApp, Receive, Scope, Send

from llmtrail.cli import audit as audit_cli
from llmtrail.cli.client import HttpBackend
from llmtrail.security.audit import AuditLog
from llmtrail.security.audit_chain import entry_key, entry_namespace
from llmtrail.security.principal import ROLES, SCOPE_KEY, Principal
from llmtrail.server.audit_api import AuditAPI
from llmtrail.store.duckdb import Database, DuckDBStateStore
from tests.served import Served

KEYS = {
    "admin-a": Principal("admin", "team-a", "k_admin_a", ROLES["admin"], via="bearer"),
    "reader-a": Principal("reader", "team-a", "k_reader_a", ROLES["reader"], via="bearer"),
    "admin-b": Principal("admin", "team-b", "k_admin_b", ROLES["admin"], via="bearer"),
}


class PrincipalFromHeader:
    """Stands in for the access middleware: ``x-test-key`` names the caller."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            name = dict(scope["headers"]).get(b"x-test-key", b"admin-a").decode()
            scope[SCOPE_KEY] = KEYS[name]
        await self.app(scope, receive, send)


def make_app(audit: AuditLog | None) -> ASGIApp:
    return PrincipalFromHeader(Starlette(routes=AuditAPI(audit).routes()))


@pytest.fixture
def audit(tmp_path: Path) -> Iterator[AuditLog]:
    state = DuckDBStateStore(Database(tmp_path / "llmtrail.duckdb"))
    log = AuditLog(state, "srv-1")
    try:
        for n in range(5):
            log.record(KEYS["admin-a"], "read-bodies", surface="api", source="10.0.0.7",
                       target={"requestIds": [f"r-{n}"]})  # fmt: skip
        log.record(KEYS["admin-b"], "PUT /api/budgets/x", surface="api", source="10.0.0.9",
                   target={"resource": "budgets/x"})  # fmt: skip
        log.flush()
        yield log
    finally:
        log.close()
        state.close()


@pytest.fixture
def client(audit: AuditLog) -> Iterator[TestClient]:
    with TestClient(make_app(audit)) as test_client:
        yield test_client


def as_key(name: str) -> dict[str, str]:
    return {"x-test-key": name}


def tamper(audit: AuditLog, seq: int) -> None:
    where = entry_namespace("srv-1", seq), entry_key(seq)
    entry = audit.state.get(*where)
    assert isinstance(entry, dict)
    audit.state.put(*where, {**entry, "outcome": 500})


# -- the API ---------------------------------------------------------------------------------


def test_listing_holds_only_the_callers_workspace(client: TestClient) -> None:
    mine = client.get("/api/audit", headers=as_key("admin-a")).json()
    assert [e["target"]["requestIds"] for e in mine["entries"]] == [
        [f"r-{n}"] for n in range(4, -1, -1)
    ]
    theirs = client.get("/api/audit", headers=as_key("admin-b")).json()["entries"]
    assert [(e["workspace"], e["action"]) for e in theirs] == [("team-b", "PUT /api/budgets/x")]
    other = client.get("/api/audit", params={"requestId": "r-1"}, headers=as_key("admin-b"))
    assert other.json()["entries"] == []


def test_listing_pages_and_filters(client: TestClient) -> None:
    seen: list[int] = []
    cursor = None
    while True:
        params = {"limit": "2", **({"cursor": cursor} if cursor else {})}
        page = client.get("/api/audit", params=params).json()
        seen += [e["seq"] for e in page["entries"]]
        cursor = page["nextCursor"]
        if not cursor:
            break
    assert seen == [4, 3, 2, 1, 0]
    one = client.get("/api/audit", params={"requestId": "r-3"}).json()["entries"]
    assert [(e["seq"], e["actor"], e["source"]) for e in one] == [(3, "key/k_admin_a", "10.0.0.7")]
    assert client.get("/api/audit", params={"actor": "key/nobody"}).json()["entries"] == []
    assert len(client.get("/api/audit", params={"since": "1h"}).json()["entries"]) == 5
    assert (
        client.get("/api/audit", params={"until": "2000-01-01T00:00:00Z"}).json()["entries"] == []
    )


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": "0"}, "limit"),
        ({"limit": "1001"}, "limit"),
        ({"since": "yesterday"}, "since"),
        ({"until": "soon"}, "until"),
        ({"cursor": "bm90IGEgY3Vyc29y"}, "cursor"),
        ({"actor": "x" * 2000}, "actor"),
    ],
)
def test_bad_parameters_are_400_naming_the_field(
    client: TestClient, params: dict[str, str], field: str
) -> None:
    answer = client.get("/api/audit", params=params)
    assert answer.status_code == 400
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["field"] == field


def test_both_routes_need_manage(client: TestClient) -> None:
    for path in ("/api/audit", "/api/audit/verify"):
        answer = client.get(path, headers=as_key("reader-a"))
        assert answer.status_code == 403 and answer.json()["permission"] == "manage"


def test_verify_reports_tampering(client: TestClient, audit: AuditLog) -> None:
    whole = client.get("/api/audit/verify", headers=as_key("admin-b")).json()
    assert whole["ok"] is True and whole["entries"] == 6
    tamper(audit, 2)
    broken = client.get("/api/audit/verify").json()
    assert broken["ok"] is False
    assert broken["problems"] == [
        {"server": "srv-1", "seq": 2, "key": entry_key(2),
         "reason": "changed: its content does not match its hash"}
    ]  # fmt: skip


def test_without_an_audit_log_the_routes_answer_503() -> None:
    with TestClient(make_app(None)) as test_client:
        for path in ("/api/audit", "/api/audit/verify"):
            assert test_client.get(path).status_code == 503


# -- the CLI over HTTP -----------------------------------------------------------------------


def run_cli(url: str, *argv: str) -> tuple[int, str]:
    parser = argparse.ArgumentParser(prog="llmtrail")
    audit_cli.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(list(argv))
    out = io.StringIO()
    with redirect_stdout(out):
        code = args.handler(HttpBackend(url), args)
    return code, out.getvalue()


def test_cli_verify_exit_codes_and_list(audit: AuditLog) -> None:
    with Served(make_app(audit)) as served:
        code, text = run_cli(served.url, "audit", "verify")
        assert (code, text.strip()) == (0, "ok: 6 entries in 1 chain(s), no tampering found")
        code, text = run_cli(served.url, "audit", "list", "--request-id", "r-4", "--json")
        assert code == 0 and [e["seq"] for e in orjson.loads(text)] == [4]
        code, text = run_cli(served.url, "audit", "list", "--limit", "3", "--format", "ndjson")
        assert [orjson.loads(line)["seq"] for line in text.splitlines()] == [4, 3, 2]
        code, text = run_cli(served.url, "audit", "list", "--since", "1h")
        assert code == 0 and text.count("key/k_admin_a") == 5 and "1 records: r-4" in text
        audit.state.delete(entry_namespace("srv-1", 1), entry_key(1))
        code, text = run_cli(served.url, "audit", "verify")
        assert code == 1
        assert "srv-1 entry 2: entries 1 before it are missing (removed)" in text
        code, text = run_cli(served.url, "audit", "verify", "--json")
        assert code == 1 and orjson.loads(text)["problems"][0]["seq"] == 2
