"""``GET/PUT/DELETE /api/logging-configuration``: the caller's workspace's model-invocation
logging configuration, in the bodies of Bedrock's ``Get``/``Put``/
``DeleteModelInvocationLoggingConfiguration``.

* ``GET`` (read) answers ``{"loggingConfig": {…}, "allowNoLog": …, "llmtrail": {…}}``: the
  configuration in effect, every flag present; ``llmtrail.state`` says ``default`` (nothing
  stored: everything delivered), ``configured`` or ``off`` (deleted: no ``loggingConfig``, as
  Bedrock answers, and records keep their metadata but no bodies), ``llmtrail.meaning`` says
  it in words.
* ``PUT`` (manage) takes Bedrock's body, plus an optional top-level ``allowNoLog``; the
  answer is the GET answer of what was stored (Bedrock answers an empty body; boto3 ignores
  members it does not know). A GET's answer can be PUT back unchanged.
* ``DELETE`` (manage) turns delivery off and answers the GET answer of the off state.

Errors are problem JSON naming the field and the limit. The workspace is always the
caller's (`principal_of`); ``guarded_route`` puts every PUT and DELETE in the audit log, and
the stored configuration names who changed it last (``llmtrail.updatedBy``/``updatedAt``).
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from llmtrail.errors import LlmtrailError, PayloadTooLarge, ValidationError
from llmtrail.security.logging_config import (
    LoggingConfig,
    LoggingConfigs,
    LoggingConfigStore,
    PutRequest,
    parse_put_body,
)
from llmtrail.security.principal import Permission, Principal, principal_of
from llmtrail.server.access import guarded_route
from llmtrail.server.api import json_response
from llmtrail.server.problems import from_error

PATH = "/api/logging-configuration"
MAX_BODY = 64 * 1024  # a full body is under 5 KB: every string at Bedrock's limit


class LoggingConfigAPI:
    """``configs``, the capture side's cache on this server, is told of each change so that
    it applies here at once (other servers sharing the store see it within a second)."""

    def __init__(self, store: LoggingConfigStore, configs: LoggingConfigs | None = None) -> None:
        self.store = store
        self.configs = configs

    def routes(self) -> list[Route]:
        return [
            guarded_route(PATH, self.get, Permission.READ, methods=["GET"]),
            guarded_route(PATH, self.put, Permission.MANAGE, methods=["PUT"]),
            guarded_route(PATH, self.delete, Permission.MANAGE, methods=["DELETE"]),
        ]

    async def get(self, request: Request) -> Response:
        workspace = principal_of(request.scope).workspace
        try:
            config = await asyncio.to_thread(self.store.get, workspace)
        except LlmtrailError as exc:
            return from_error(exc)
        return json_response(config.to_response())

    async def put(self, request: Request) -> Response:
        principal = principal_of(request.scope)
        try:
            body = await _json_body(request)
            parsed = parse_put_body(body)
            config = await asyncio.to_thread(self._put, principal, parsed)
        except LlmtrailError as exc:
            return from_error(exc)
        return json_response(config.to_response())

    async def delete(self, request: Request) -> Response:
        principal = principal_of(request.scope)
        try:
            config = await asyncio.to_thread(self._delete, principal)
        except LlmtrailError as exc:
            return from_error(exc)
        return json_response(config.to_response())

    def _put(self, principal: Principal, parsed: PutRequest) -> LoggingConfig:
        config = self.store.put(principal.workspace, parsed, principal.actor)
        self._changed(principal)
        return config

    def _delete(self, principal: Principal) -> LoggingConfig:
        config = self.store.delete(principal.workspace, principal.actor)
        self._changed(principal)
        return config

    def _changed(self, principal: Principal) -> None:
        if self.configs is not None:
            self.configs.invalidate(principal.workspace)


async def _json_body(request: Request) -> Any:
    raw = b""
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > MAX_BODY:
            raise PayloadTooLarge("body", f"is larger than the limit of {MAX_BODY} bytes")
    if not raw.strip():
        raise ValidationError("body", 'is required: {"loggingConfig": {…}}')
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ValidationError("body", f"is not valid JSON: {exc}") from None
