"""Every route declares the permission it needs: a route added without one fails here."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from llmtrail.config import Settings
from llmtrail.security.principal import Permission
from llmtrail.server.app import create_app
from llmtrail.server.runtime import Runtime

PUBLIC = {"/healthz", "/readyz", "/login", "/logout", "/static/{path:path}", "/static"}


def _routes(tmp_path: Path) -> list[Any]:
    runtime = Runtime(Settings(data_dir=tmp_path / "d"))
    try:
        app = create_app(runtime, lifespan=False, access=False)
        for cell in app.__closure__ or ():  # type: ignore[attr-defined]
            if type(cell.cell_contents).__name__ == "Starlette":
                return list(cell.cell_contents.routes)
    finally:
        runtime.close()
    raise AssertionError("no Starlette app inside")


def test_every_route_declares_a_permission(tmp_path: Path) -> None:
    routes = _routes(tmp_path)
    missing = [r.path for r in routes if not isinstance(getattr(r, "permission", None), Permission)]
    assert missing == []
    public = {r.path for r in routes if r.permission is Permission.PUBLIC}
    assert public <= PUBLIC, public - PUBLIC  # nothing else is open to anonymous callers


# POSTs that only read: a query (and cancelling one's own), metric data, a redaction trial
READS_BY_POST = {"/api/query", "/api/query/{query_id}", "/api/metrics"}


def test_changes_need_manage_or_ingest(tmp_path: Path) -> None:
    for route in _routes(tmp_path):
        methods = (route.methods or set()) - {"GET", "HEAD"}
        if not methods or route.path in ("/login", "/logout"):
            continue
        if route.path in READS_BY_POST:
            assert route.permission is Permission.READ, route.path
        else:
            assert route.permission in (Permission.MANAGE, Permission.INGEST), route.path
