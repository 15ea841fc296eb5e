"""Where the pages find dashboard bodies: the dashboards package's store (the one
``/api/dashboards`` writes, per workspace), which answers the default dashboard — the seed's
five widgets — until one is stored under its name."""

from __future__ import annotations

from typing import Any

from llmtrail.dashboards.default import DEFAULT_NAME
from llmtrail.dashboards.store import DashboardStore
from llmtrail.server.runtime import Runtime


def _store(runtime: Runtime) -> DashboardStore:
    return DashboardStore(runtime.state)


def overview_body(runtime: Runtime, workspace: str) -> dict[str, Any]:
    """The body the overview draws: the default dashboard (stored, or as it ships)."""
    return _store(runtime).get(DEFAULT_NAME, workspace=workspace)


def dashboard_entries(runtime: Runtime, workspace: str) -> list[dict[str, Any]]:
    """``ListDashboards``' entries (name, last modified, size), by name."""
    return _store(runtime).list(workspace=workspace)


def dashboard_body(runtime: Runtime, workspace: str, name: str) -> dict[str, Any]:
    """The body of dashboard ``name``; `NotFound` when there is none."""
    return _store(runtime).get(name, workspace=workspace)
