"""Alarms (state and history, from the server's `AlarmService` when it has one), Dashboards
(the stored CloudWatch bodies, listed and rendered on the 24-column grid) and Settings (the
effective configuration, secrets masked as ``llmtrail config show`` prints it). Alarms and
dashboards are the caller's workspace's; another workspace's are "not found"."""

from __future__ import annotations

import asyncio
from typing import Any

from llmtrail.config import masked
from llmtrail.dashboards import DashboardContext, view_dashboard
from llmtrail.errors import NotFound
from llmtrail.web.dashboard_source import dashboard_body, dashboard_entries
from llmtrail.web.page_context import PageContext, View

STATE_ORDER = {"ALARM": 0, "INSUFFICIENT_DATA": 1, "OK": 2}


def _alarm_service(ctx: PageContext) -> Any:
    return getattr(ctx.runtime, "alarms", None)


async def alarms(ctx: PageContext) -> View:
    service = _alarm_service(ctx)
    items: list[dict[str, Any]] = []
    if service is not None:
        items = await asyncio.to_thread(service.describe_alarms, ctx.workspace)
    items = sorted(
        items, key=lambda a: (STATE_ORDER.get(str(a.get("StateValue")), 3), str(a.get("AlarmName")))
    )
    return View("alarms.j2", {"alarms": items, "service_missing": service is None})


async def alarm(ctx: PageContext) -> View:
    name = ctx.request.path_params["name"]
    service = _alarm_service(ctx)
    if service is None:
        raise NotFound("this server has no alarms")
    described = await asyncio.to_thread(service.describe_alarms, ctx.workspace)
    found = [a for a in described if a.get("AlarmName") == name]
    if not found:
        raise NotFound(f"no alarm named {name!r}")
    history = await asyncio.to_thread(service.history, name, ctx.workspace)
    return View("alarm.j2", {"alarm": found[0], "history": history})


async def dashboards(ctx: PageContext) -> View:
    entries = await asyncio.to_thread(dashboard_entries, ctx.runtime, ctx.workspace)
    return View("dashboards.j2", {"entries": entries})


async def dashboard(ctx: PageContext) -> View:
    name = ctx.request.path_params["name"]
    body = await asyncio.to_thread(dashboard_body, ctx.runtime, ctx.workspace, name)
    context = DashboardContext(
        metrics=getattr(ctx.runtime, "metrics", None),
        run_query=ctx.queries.blocking(asyncio.get_running_loop()),
        start=ctx.range.start,
        end=ctx.range.end,
        workspace=ctx.workspace,
        alarms=_alarm_service(ctx),
        # the body's own start/end unless the URL names a range
        explicit_range=any(k in ctx.request.query_params for k in ("range", "start", "end")),
    )
    widgets = await asyncio.to_thread(view_dashboard, body, context)
    return View("dashboard.j2", {"name": name, "widgets": widgets})


async def settings(ctx: PageContext) -> View:
    return View("settings.j2", {"settings": masked(ctx.runtime.settings)})
