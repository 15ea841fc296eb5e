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
problem JSON naming the field.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from llmtrail.alerts import Alerting, EvaluationLoop
from llmtrail.alerts.alarm import STATES
from llmtrail.alerts.sources import AlarmValues
from llmtrail.analytics.budgets import budget_status
from llmtrail.analytics.insights import QueryRunner
from llmtrail.errors import LlmtrailError, PayloadTooLarge, ValidationError
from llmtrail.server.api import answer
from llmtrail.server.params import int_param
from llmtrail.server.problems import from_error
from llmtrail.server.runtime import Runtime

MAX_BODY_BYTES = 64 * 1024
DELIVERY_STATUSES = ("pending", "delivered", "failed")
HISTORY_TYPES = ("StateUpdate", "ConfigurationUpdate", "Action")


def build_alerting(runtime: Runtime) -> Alerting:
    """`Alerting` over the runtime's state store, metrics, query engine and budgets."""

    def query(text: str, start: datetime, end: datetime, workspace: str) -> Any:
        runner = QueryRunner(runtime.query_engine, runtime.db.schema, workspace=workspace)
        result = runner.run(text, start, end, limit=1)
        return result.rows[0][0] if result.rows and result.rows[0] else None

    def budget_percent(name: str, now: datetime) -> float | None:
        budgets = [b for b in runtime.budgets.all() if b.name == name]
        if not budgets:
            return None
        spent = runtime.month_spend(budgets).get(name, Decimal(0))
        return float(budget_status(budgets[0], spent, now).percent_used)

    values = AlarmValues(lambda: getattr(runtime, "metrics", None), query, budget_percent)
    return Alerting(
        runtime.state,
        runtime.settings,
        values,
        budgets=lambda: [(b.name, str(b.limit_usd)) for b in runtime.budgets.all()],
    )


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
        return [
            Route("/api/alarms", self.list_alarms, methods=["GET"]),
            Route("/api/alarms/{name:path}/history", self.history, methods=["GET"]),
            Route("/api/alarms/{name:path}/evaluate", self.evaluate, methods=["POST"]),
            Route("/api/alarms/{name:path}/test", self.test_alarm, methods=["POST"]),
            Route("/api/alarms/{name:path}", self.get_alarm, methods=["GET"]),
            Route("/api/alarms/{name:path}", self.put_alarm, methods=["PUT"]),
            Route("/api/alarms/{name:path}", self.delete_alarm, methods=["DELETE"]),
            Route("/api/notifiers", self.list_notifiers, methods=["GET"]),
            Route("/api/notifiers/{name}/test", self.test_notifier, methods=["POST"]),
            Route("/api/notifiers/{name}", self.get_notifier, methods=["GET"]),
            Route("/api/notifiers/{name}", self.put_notifier, methods=["PUT"]),
            Route("/api/notifiers/{name}", self.delete_notifier, methods=["DELETE"]),
            Route("/api/deliveries", self.list_deliveries, methods=["GET"]),
        ]

    async def _answer(self, work: Callable[[], Any]) -> Response:
        return await answer(work)

    # -- alarms ---------------------------------------------------------------------------
    async def list_alarms(self, request: Request) -> Response:
        state = request.query_params.get("state")
        prefix = request.query_params.get("prefix", "")
        if state is not None and state not in STATES:
            return from_error(ValidationError("state", f"must be one of {', '.join(STATES)}"))

        def work() -> dict[str, Any]:
            items = [
                a
                for a in self.alerting.alarms.describe_all()
                if a["AlarmName"].startswith(prefix) and state in (None, a.get("StateValue"))
            ]
            return {"MetricAlarms": items}

        return await self._answer(work)

    async def get_alarm(self, request: Request) -> Response:
        name = request.path_params["name"]
        return await self._answer(functools.partial(self.alerting.alarms.describe, name))

    async def put_alarm(self, request: Request) -> Response:
        try:
            body = await _json_body(request)
        except LlmtrailError as exc:
            return from_error(exc)
        name = request.path_params["name"]
        return await self._answer(functools.partial(self.alerting.put_alarm, name, body))

    async def delete_alarm(self, request: Request) -> Response:
        name = request.path_params["name"]

        def work() -> dict[str, str]:
            self.alerting.alarms.delete(name)
            return {"deleted": name}

        return await self._answer(work)

    async def history(self, request: Request) -> Response:
        name = request.path_params["name"]
        kind = request.query_params.get("type")
        if kind is not None and kind not in HISTORY_TYPES:
            return from_error(ValidationError("type", f"must be one of {', '.join(HISTORY_TYPES)}"))
        return await self._answer(
            lambda: {"AlarmHistoryItems": self.alerting.alarms.history(name, kind)}
        )

    async def evaluate(self, request: Request) -> Response:
        name = request.path_params["name"]
        return await self._answer(functools.partial(self.alerting.evaluate, name))

    async def test_alarm(self, request: Request) -> Response:
        name = request.path_params["name"]
        return await self._answer(lambda: {"deliveries": self.alerting.test_alarm(name)})

    # -- notifiers ------------------------------------------------------------------------
    async def list_notifiers(self, request: Request) -> Response:
        return await self._answer(lambda: {"notifiers": self.alerting.notifiers.list()})

    async def get_notifier(self, request: Request) -> Response:
        name = request.path_params["name"]
        return await self._answer(functools.partial(self.alerting.notifiers.get, name))

    async def put_notifier(self, request: Request) -> Response:
        try:
            body = await _json_body(request)
        except LlmtrailError as exc:
            return from_error(exc)
        name = request.path_params["name"]
        return await self._answer(functools.partial(self.alerting.notifiers.put, name, body))

    async def delete_notifier(self, request: Request) -> Response:
        name = request.path_params["name"]

        def work() -> dict[str, str]:
            self.alerting.notifiers.delete(name)
            return {"deleted": name}

        return await self._answer(work)

    async def test_notifier(self, request: Request) -> Response:
        name = request.path_params["name"]
        return await self._answer(functools.partial(self.alerting.test_notifier, name))

    async def list_deliveries(self, request: Request) -> Response:
        params = request.query_params
        try:
            status = params.get("status")
            if status is not None and status not in DELIVERY_STATUSES:
                raise ValidationError("status", f"must be one of {', '.join(DELIVERY_STATUSES)}")
            limit = int_param(params.get("limit"), "limit", default=100, minimum=1, maximum=1000)
        except LlmtrailError as exc:
            return from_error(exc)
        alarm = params.get("alarm")
        return await self._answer(
            lambda: {"deliveries": self.alerting.deliveries.list(alarm, status, limit)}
        )


async def _json_body(request: Request) -> Any:
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise PayloadTooLarge("body", f"is larger than the limit of {MAX_BODY_BYTES} bytes")
        chunks.append(chunk)
    try:
        return orjson.loads(b"".join(chunks) or b"{}")
    except orjson.JSONDecodeError as exc:
        raise ValidationError("body", f"is not valid JSON: {exc}") from None
