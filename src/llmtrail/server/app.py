"""The ASGI application: hot gateway routes dispatched by a dict, the rest by Starlette."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response

from llmtrail.capture.gateway.anthropic.api import AnthropicRoutes
from llmtrail.capture.gateway.asgi import ASGIApp, Receive, Scope, Send
from llmtrail.capture.gateway.bedrock.api import BedrockRoutes
from llmtrail.capture.gateway.exchange import Services
from llmtrail.capture.gateway.openai.api import OpenAIRoutes
from llmtrail.errors import Unavailable
from llmtrail.server.alarms_api import AlarmsAPI
from llmtrail.server.api import RecordsAPI
from llmtrail.server.audit_api import AuditAPI
from llmtrail.server.aws.router import AwsRouter
from llmtrail.server.cost_api import CostAPI
from llmtrail.server.dashboards_api import DashboardsAPI
from llmtrail.server.gatekeeper import Gatekeeper, allowed_hosts, is_loopback
from llmtrail.server.import_api import ImportAPI
from llmtrail.server.keys_api import KeysAPI
from llmtrail.server.logging_config_api import LoggingConfigAPI
from llmtrail.server.login import LoginPages
from llmtrail.server.metrics_api import MetricsAPI
from llmtrail.server.problems import from_error
from llmtrail.server.profiles_api import ProfilesAPI
from llmtrail.server.query_api import QueryAPI
from llmtrail.server.redaction_api import RedactionAPI
from llmtrail.server.retention_api import RetentionAPI
from llmtrail.server.runtime import Runtime
from llmtrail.server.sigv4_access import sigv4_check
from llmtrail.server.traces_api import TracesAPI
from llmtrail.web import WebUI

log = logging.getLogger("llmtrail")


async def _unavailable(request: Request, exc: Exception) -> Response:
    """What a route did not answer itself while the store cannot serve (the database being
    reopened, say): a 503 problem with ``retry-after``, never a 500."""
    assert isinstance(exc, Unavailable)
    return from_error(exc)


def _report_start_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.critical("the pipeline did not start; /readyz stays 503", exc_info=task.exception())


def create_app(
    runtime: Runtime,
    on_ready: Callable[[], None] | None = None,
    lifespan: bool = True,
    access: bool | None = None,
) -> ASGIApp:
    """The server's app; ``lifespan=False`` for a runtime started and closed by the caller
    (the CLI with no server). ``access`` (default: as ``lifespan``) puts the `Gatekeeper` in
    front: the CLI working on its own data directory is its operator and needs no key."""
    index = runtime.call_index
    hand_over = runtime.recording.hand_over if runtime.settings.record_invocations else None
    services = Services(
        runtime.profiles,
        runtime.budget_guard,
        identify=lambda key: runtime.secret.mac("identity", key),
        limits=runtime.rate_limits,
    )
    routes = (runtime.settings, runtime.router, runtime.providers, hand_over, services)
    openai = OpenAIRoutes(*routes)
    hot: dict[tuple[str, str], ASGIApp] = {}
    for prefix in ("/v1", ""):
        hot[("POST", f"{prefix}/chat/completions")] = openai.chat
        hot[("POST", f"{prefix}/embeddings")] = openai.embeddings
        hot[("GET", f"{prefix}/models")] = openai.models
    anthropic = AnthropicRoutes(*routes)
    hot[("POST", "/v1/messages")] = anthropic.messages
    bedrock = BedrockRoutes(*routes)
    api = RecordsAPI(runtime)
    queries = QueryAPI(runtime)
    api.filtered = queries.filtered
    traces = TracesAPI(runtime, index)
    alarms = AlarmsAPI(runtime)
    runtime.alarms = alarms.alerting  # what the web UI's Alarms page and alarm widgets read
    if lifespan:
        alarms.start_schedule()
    aws = AwsRouter(
        runtime,
        {"queries": queries, "alarms": alarms, "traces": traces},
        runtime.settings.limits.max_request_bytes,
    )

    @contextlib.asynccontextmanager
    async def running(app: Starlette) -> AsyncIterator[None]:
        runtime.recording.use_loop(asyncio.get_running_loop())  # hands facts over itself
        starting = asyncio.create_task(asyncio.to_thread(runtime.start))
        starting.add_done_callback(_report_start_failure)
        if on_ready is not None:
            on_ready()
        try:
            yield
        finally:
            runtime.recording.begin_stop()  # a replay still running gives up; the spool keeps it
            with contextlib.suppress(Exception):
                await starting
            await runtime.aclose()

    starlette = Starlette(
        routes=[
            *api.routes(),
            *traces.routes(),
            *CostAPI(runtime).routes(),  # before ProfilesAPI: …/{id}/metrics
            *ProfilesAPI(runtime.profiles).routes(),
            *queries.routes(),
            *MetricsAPI(runtime).routes(),
            *DashboardsAPI(runtime, queries).routes(),
            *alarms.routes(),
            *KeysAPI(runtime.keys).routes(),
            *AuditAPI(runtime.audit).routes(),
            *RedactionAPI(runtime.state, runtime.redaction).routes(),
            *RetentionAPI(runtime.state, runtime.retention, runtime.erasure).routes(),
            *LoggingConfigAPI(runtime.logging_config, runtime.logging_configs).routes(),
            *ImportAPI(runtime).routes(),  # export --format bedrock and import
            *LoginPages(runtime.keys, runtime.sessions, runtime.audit).routes(),
            *WebUI(runtime, queries).routes(),  # the web UI's pages, last
        ],
        lifespan=running if lifespan else None,
        exception_handlers={Unavailable: _unavailable},
    )

    starlette.state.audit = runtime.audit  # management changes, by `guarded_route`

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            handler = hot.get((scope["method"], scope["path"]))
            if handler is not None:
                await handler(scope, receive, send)
                return
            if scope["path"].startswith("/model/"):
                await bedrock.handle(scope, receive, send)
                return
            target = aws.match(scope)
            if target is not None:
                await aws.handle(target, scope, receive, send)
                return
        await starlette(scope, receive, send)

    if not (lifespan if access is None else access):
        return app
    settings = runtime.settings
    return Gatekeeper(
        app,
        keys=runtime.keys,
        sessions=runtime.sessions,
        hosts=allowed_hosts(settings.server.allowed_hosts, settings.host),
        open_allowed=is_loopback(settings.host),
        is_gateway=lambda path: (
            path.startswith("/model/") or ("POST", path) in hot or ("GET", path) in hot
        ),
        sigv4=sigv4_check(runtime.keys),
        max_body=settings.limits.max_request_bytes,
        aws=aws.match,
    )
