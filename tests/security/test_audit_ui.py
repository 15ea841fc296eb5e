"""The record page of the web UI audits its read of the bodies and shows who viewed the
prompt, from the audit log's reads index: a real runtime (DuckDB file) with an `AuditLog`,
its pages served through Starlette's TestClient, the caller's principal put in the scope as
the access middleware does."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient
from starlette.types import ASGIApp, Receive, Scope, Send

from llmtrail.config import Settings
from llmtrail.record import InvocationRecord
from llmtrail.security.audit import AuditLog
from llmtrail.security.principal import ROLES, SCOPE_KEY, Permission, Principal
from llmtrail.server.query_api import QueryAPI
from llmtrail.server.runtime import Runtime
from llmtrail.web.ui import WebUI
from tests.conftest import bedrock_fixture_lines

WORKSPACE = "default"
KEYS = {
    "admin": Principal("admin", WORKSPACE, "k_admin", ROLES["admin"], via="session"),
    "reader": Principal(
        "reader", WORKSPACE, "k_reader", ROLES["reader"] | {Permission.BODIES}, via="session"
    ),
    "metadata-only": Principal("reader", WORKSPACE, "k_meta", ROLES["reader"], via="session"),
}


class PrincipalFromHeader:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            scope[SCOPE_KEY] = KEYS[dict(scope["headers"])[b"x-test-key"].decode()]
        await self.app(scope, receive, send)


class ViewersTable(HTMLParser):
    """The rows of ``<table id="viewers">``, as lists of cell texts (None: no table)."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[str]] | None = None
        self._inside = False
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table" and ("id", "viewers") in attrs:
            self._inside, self.rows = True, []
        elif self._inside and tag == "tr" and self.rows is not None:
            self.rows.append([])
        elif self._inside and tag == "td":
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "table":
            self._inside = False
        elif tag == "td" and self._cell is not None and self.rows:
            self.rows[-1].append("".join(self._cell).strip())
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def viewers_shown(html: str) -> list[list[str]] | None:
    table = ViewersTable()
    table.feed(html)
    return None if table.rows is None else [r for r in table.rows if r]


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[Runtime]:
    running = Runtime(Settings(data_dir=tmp_path / "data"))
    try:
        yield running
    finally:
        audit = getattr(running, "audit", None)
        if audit is not None:
            audit.close()
        running.close()


def stored_request_id(runtime: Runtime) -> str:
    import json

    doc = json.loads(bedrock_fixture_lines()[0])
    record = InvocationRecord.from_dict(doc, now=datetime.now(UTC))
    runtime.records.append([record])
    return str(doc["requestId"])


def client_for(runtime: Runtime) -> TestClient:
    app = Starlette(routes=WebUI(runtime, QueryAPI(runtime)).routes())
    return TestClient(PrincipalFromHeader(app))


def test_the_record_page_shows_who_viewed_the_prompt(runtime: Runtime) -> None:
    runtime.audit = AuditLog(runtime.state, "ui-test")
    request_id = stored_request_id(runtime)
    path = f"/logs/{request_id}"
    with client_for(runtime) as client:
        assert client.get(path, headers={"x-test-key": "reader"}).status_code == 200
        meta = client.get(path, headers={"x-test-key": "metadata-only"})
        assert meta.status_code == 200 and viewers_shown(meta.text) is None  # needs manage
        page = client.get(path, headers={"x-test-key": "admin"})
    assert page.status_code == 200
    shown = viewers_shown(page.text)
    assert shown is not None
    expected = [  # newest first; the key that saw no bodies is not a viewer
        [v["time"].replace("T", " ")[:19], v["actor"], v["surface"], v["action"], v["source"]]
        for v in runtime.audit.viewers(WORKSPACE, request_id)
    ]
    assert [row[1:4] for row in expected] == [
        ["key/k_admin", "ui", "read-bodies"],
        ["key/k_reader", "ui", "read-bodies"],
    ]
    assert shown == expected


def test_without_an_audit_log_the_page_has_no_viewers(runtime: Runtime) -> None:
    runtime.audit.close()
    runtime.audit = None  # an app built on a runtime without one (none ships so)
    request_id = stored_request_id(runtime)
    with client_for(runtime) as client:
        page = client.get(f"/logs/{request_id}", headers={"x-test-key": "admin"})
    assert page.status_code == 200 and viewers_shown(page.text) is None
