"""The alarms API: CloudWatch ``PutMetricAlarm`` / ``DescribeAlarms`` /
``DescribeAlarmHistory`` over HTTP, notifiers, and deliveries.

=========================================  ====================================================
``GET /api/alarms``                        ``{"MetricAlarms": [...]}`` (``?state=ALARM``,
                                           ``?prefix=``)
``GET|PUT|DELETE /api/alarms/{name}``      one alarm: its fields and state / save / remove
``GET /api/alarms/{name}/history``         ``{"AlarmHistoryItems": [...]}``, newest first
                                           (``?type=StateUpdate|ConfigurationUpdate``)
``POST /api/alarms/{name}/evaluate``       evaluate it now
``POST /api/alarms/{name}/test``           send its ALARM message to its actions, marked test
``GET /api/notifiers``                     ``{"notifiers": [...]}``
``GET|PUT|DELETE /api/notifiers/{name}``   one notifier (``type`` email or webhook)
``POST /api/notifiers/{name}/test``        send a test message through it
``GET /api/deliveries``                    notifications sent, pending and failed
                                           (``?alarm=``, ``?status=``, ``?limit=``)
=========================================  ====================================================

Handlers decode HTTP and call `Alerting` off the event loop (the store blocks); errors are
problem JSON naming the field. Every call is in the caller's workspace (`principal_of`):
another workspace's alarm, notifier or delivery is not found. Reads need ``read``; saving,
removing, evaluating and test fires need ``manage``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from llmtrail.alerts import Alerting, EvaluationLoop
from llmtrail.alerts.alarm import STATES
from llmtrail.alerts.sources import AlarmValues
from llmtrail.analytics.budgets import budget_status
from llmtrail.analytics.insights import QueryRunner
from llmtrail.errors import LlmtrailError, ValidationError
from llmtrail.security.principal import Permission, principal_of
from llmtrail.server.access import guarded_route
from llmtrail.server.api import answer
from llmtrail.server.params import int_param, json_body
from llmtrail.server.problems import from_error
from llmtrail.server.runtime import Runtime

MAX_BODY_BYTES = 64 * 1024
DELIVERY_STATUSES = ("pending", "delivered", "failed")
HISTORY_TYPES = ("StateUpdate", "ConfigurationUpdate", "Action")


def build_alerting(runtime: Runtime) -> Alerting:
    """`Alerting` over the runtime's state store, metrics, query engine and budgets."""

    def query(text: str, start: datetime, end: datetime, workspace: str) -> Any:
        groups = functools.partial(runtime.log_groups, workspace)
        runner = QueryRunner(runtime.query_engine, runtime.query_engine.schema, workspace, groups)
        result = runner.run(text, start, end, limit=1)
        return result.rows[0][0] if result.rows and result.rows[0] else None

    def budget_percent(key: str, now: datetime) -> float | None:
        """The percentage used of the budget whose `Budget.key` is ``key``."""
        budgets = [b for b in runtime.budgets.all() if b.key == key]
        if not budgets:
            return None
        spent = runtime.month_spend(budgets).get(key, Decimal(0))
        return float(budget_status(budgets[0], spent, now).percent_used)

    values = AlarmValues(lambda: getattr(runtime, "metrics", None), query, budget_percent)
    return Alerting(
        runtime.state,
        runtime.settings,
        values,
        budgets=lambda: [(b.name, str(b.limit_usd), b.workspace) for b in runtime.budgets.all()],
    )


def _workspace(request: Request) -> str:
    """The only workspace this request may read or change."""
    return principal_of(request.scope).workspace


class AlarmsAPI:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.alerting = build_alerting(runtime)

    def start_schedule(self) -> None:
        """Evaluate alarms every ``[alerts] evaluation_interval_s`` until the runtime closes."""
        loop = EvaluationLoop(self.alerting, self.runtime.settings.alerts.evaluation_interval_s)
        self.runtime.on_close.insert(0, loop.stop)  # before the store closes
        loop.start()

    def routes(self) -> list[Route]:
        read, manage = Permission.READ, Permission.MANAGE
        one, notifier = "/api/alarms/{name:path}", "/api/notifiers/{name}"
        return [
            guarded_route("/api/alarms", self.list_alarms, read, methods=["GET"]),
            guarded_route(one + "/history", self.history, read, methods=["GET"]),
            guarded_route(one + "/evaluate", self.evaluate, manage, methods=["POST"]),
            guarded_route(one + "/test", self.test_alarm, manage, methods=["POST"]),
            guarded_route(one, self.get_alarm, read, methods=["GET"]),
            guarded_route(one, self.put_alarm, manage, methods=["PUT"]),
            guarded_route(one, self.delete_alarm, manage, methods=["DELETE"]),
            guarded_route("/api/notifiers", self.list_notifiers, read, methods=["GET"]),
            guarded_route(notifier + "/test", self.test_notifier, manage, methods=["POST"]),
            guarded_route(notifier, self.get_notifier, read, methods=["GET"]),
            guarded_route(notifier, self.put_notifier, manage, methods=["PUT"]),
            guarded_route(notifier, self.delete_notifier, manage, methods=["DELETE"]),
            guarded_route("/api/deliveries", self.list_deliveries, read, methods=["GET"]),
        ]

    async def _answer(self, work: Callable[[], Any]) -> Response:
        return await answer(work)

    # -- alarms ---------------------------------------------------------------------------
    async def list_alarms(self, request: Request) -> Response:
        state = request.query_params.get("state")
        prefix = request.query_params.get("prefix", "")
        if state is not None and state not in STATES:
            return from_error(ValidationError("state", f"must be one of {', '.join(STATES)}"))

        ws = _workspace(request)

        def work() -> dict[str, Any]:
            items = [
                a
                for a in self.alerting.alarms.describe_all(workspace=ws)
                if a["AlarmName"].startswith(prefix) and state in (None, a.get("StateValue"))
            ]
            return {"MetricAlarms": items}

        return await self._answer(work)

    async def get_alarm(self, request: Request) -> Response:
        name, ws = request.path_params["name"], _workspace(request)
        return await self._answer(
            functools.partial(self.alerting.alarms.describe, name, workspace=ws)
        )

    async def put_alarm(self, request: Request) -> Response:
        try:
            body = await json_body(request, MAX_BODY_BYTES)
        except LlmtrailError as exc:
            return from_error(exc)
        name, ws = request.path_params["name"], _workspace(request)
        return await self._answer(functools.partial(self.alerting.put_alarm, name, body, ws))

    async def delete_alarm(self, request: Request) -> Response:
        name, ws = request.path_params["name"], _workspace(request)

        def work() -> dict[str, str]:
            self.alerting.alarms.delete(name, workspace=ws)
            return {"deleted": name}

        return await self._answer(work)

    async def history(self, request: Request) -> Response:
        name = request.path_params["name"]
        kind = request.query_params.get("type")
        if kind is not None and kind not in HISTORY_TYPES:
            return from_error(ValidationError("type", f"must be one of {', '.join(HISTORY_TYPES)}"))
        ws = _workspace(request)
        return await self._answer(
            lambda: {"AlarmHistoryItems": self.alerting.alarms.history(name, kind, workspace=ws)}
        )

    async def evaluate(self, request: Request) -> Response:
        name, ws = request.path_params["name"], _workspace(request)
        return await self._answer(functools.partial(self.alerting.evaluate, name, ws))

    async def test_alarm(self, request: Request) -> Response:
        name, ws = request.path_params["name"], _workspace(request)
        return await self._answer(lambda: {"deliveries": self.alerting.test_alarm(name, ws)})

    # -- notifiers ------------------------------------------------------------------------
    async def list_notifiers(self, request: Request) -> Response:
        ws = _workspace(request)
        return await self._answer(lambda: {"notifiers": self.alerting.notifiers.list(workspace=ws)})

    async def get_notifier(self, request: Request) -> Response:
        name, ws = request.path_params["name"], _workspace(request)
        return await self._answer(
            functools.partial(self.alerting.notifiers.get, name, workspace=ws)
        )

    async def put_notifier(self, request: Request) -> Response:
        try:
            body = await json_body(request, MAX_BODY_BYTES)
        except LlmtrailError as exc:
            return from_error(exc)
        name, ws = request.path_params["name"], _workspace(request)
        return await self._answer(
            functools.partial(self.alerting.notifiers.put, name, body, workspace=ws)
        )

    async def delete_notifier(self, request: Request) -> Response:
        name, ws = request.path_params["name"], _workspace(request)

        def work() -> dict[str, str]:
            self.alerting.notifiers.delete(name, workspace=ws)
            return {"deleted": name}

        return await self._answer(work)

    async def test_notifier(self, request: Request) -> Response:
        name, ws = request.path_params["name"], _workspace(request)
        return await self._answer(functools.partial(self.alerting.test_notifier, name, ws))

    async def list_deliveries(self, request: Request) -> Response:
        params = request.query_params
        try:
            status = params.get("status")
            if status is not None and status not in DELIVERY_STATUSES:
                raise ValidationError("status", f"must be one of {', '.join(DELIVERY_STATUSES)}")
            limit = int_param(params.get("limit"), "limit", default=100, minimum=1, maximum=1000)
        except LlmtrailError as exc:
            return from_error(exc)
        alarm, ws = params.get("alarm"), _workspace(request)
        return await self._answer(
            lambda: {
                "deliveries": self.alerting.deliveries.list(alarm, status, limit, workspace=ws)
            }
        )
