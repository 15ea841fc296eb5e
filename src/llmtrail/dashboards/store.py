"""Dashboards in the StateStore (namespace ``dashboards``), per workspace, so that every
server sharing a store shows the same ones. The default dashboard is there until one is
stored under its name."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson

from llmtrail.dashboards.body import check_name, load_body, validate_body
from llmtrail.dashboards.default import DEFAULT_NAME, default_dashboard
from llmtrail.errors import NotFound
from llmtrail.store.interfaces import StateStore

NAMESPACE = "dashboards"


def _key(workspace: str, name: str) -> str:
    return f"{workspace}/{name}"


class DashboardStore:
    """``PutDashboard`` / ``GetDashboard`` / ``ListDashboards`` / ``DeleteDashboards``."""

    def __init__(self, state: StateStore) -> None:
        self.state = state

    def put(
        self, name: str, body: str | bytes | dict[str, Any], *, workspace: str = "default"
    ) -> list[dict[str, str]]:
        """Store ``body`` under ``name``; the warnings (``DashboardValidationMessages``)."""
        check_name(name)
        checked = load_body(body)
        _, warnings = validate_body(checked)
        size = len(orjson.dumps(checked))
        value = {
            "DashboardName": name,
            "DashboardBody": checked,
            "LastModified": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
            "Size": size,
        }
        self.state.put(NAMESPACE, _key(workspace, name), value)
        return warnings

    def get(self, name: str, *, workspace: str = "default") -> dict[str, Any]:
        """The body of dashboard ``name`` (the default one while none is stored under its
        name); `NotFound` otherwise."""
        value = self.state.get(NAMESPACE, _key(workspace, name))
        if value is not None:
            return dict(value["DashboardBody"])
        if name == DEFAULT_NAME:
            return default_dashboard()
        raise NotFound(f"no dashboard named {name!r}")

    def list(self, *, workspace: str = "default") -> list[dict[str, Any]]:
        """``DashboardEntries``: name, last modified and size, by name."""
        prefix = f"{workspace}/"
        entries = [
            {k: v for k, v in value.items() if k != "DashboardBody"}
            for key, value in self.state.list(NAMESPACE).items()
            if key.startswith(prefix)
        ]
        if not any(e["DashboardName"] == DEFAULT_NAME for e in entries):
            body = default_dashboard()
            entries.append(
                {
                    "DashboardName": DEFAULT_NAME,
                    "LastModified": None,
                    "Size": len(orjson.dumps(body)),
                }
            )
        return sorted(entries, key=lambda e: e["DashboardName"])

    def delete(self, name: str, *, workspace: str = "default") -> None:
        """Remove dashboard ``name``; `NotFound` when none is stored under it."""
        check_name(name)
        if not self.state.delete(NAMESPACE, _key(workspace, name)):
            raise NotFound(f"no dashboard named {name!r}")
