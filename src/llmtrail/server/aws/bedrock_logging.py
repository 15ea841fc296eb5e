"""Bedrock's ``Put``/``Get``/``DeleteModelInvocationLoggingConfiguration`` on the caller's
workspace's logging configuration (`llmtrail.security.logging_config`).

The configuration already is Bedrock's ``loggingConfig`` body, so these handlers only hand
it to the same `LoggingConfigStore` that ``/api/logging-configuration`` uses and tell this
server's capture cache (`LoggingConfigs`) of the change, so it applies to the next call at
once. What differs from Bedrock is llmtrail's, not this module's: a GET with nothing stored
answers the default (every body delivered) instead of nothing; a DELETE keeps recording
metadata and withholds every body; ``allowNoLog`` is never changed by an AWS PUT.
"""

from __future__ import annotations

from typing import Any

from llmtrail.security.logging_config import LoggingConfig, PutRequest, parse_logging_config
from llmtrail.security.principal import Permission
from llmtrail.server.aws.bedrock_errors import run
from llmtrail.server.aws.operations import AwsCall, operation

SERVICE = "bedrock"


@operation(SERVICE, "GetModelInvocationLoggingConfiguration", Permission.READ)
async def get_logging_configuration(call: AwsCall) -> dict[str, Any]:
    """``{"loggingConfig": …}`` in effect; no ``loggingConfig`` once deleted (as Bedrock)."""
    config: LoggingConfig = await run(lambda: call.runtime.logging_config.get(call.workspace))
    if not config.delivers_bodies:
        return {}
    return {"loggingConfig": config.logging_config_json()}


@operation(SERVICE, "PutModelInvocationLoggingConfiguration", Permission.MANAGE)
async def put_logging_configuration(call: AwsCall) -> dict[str, Any]:
    """Store ``loggingConfig`` (checked by the library as ``/api/logging-configuration``
    checks it); the workspace's ``allowNoLog`` is kept."""

    def put() -> None:
        request = PutRequest(parse_logging_config(call.params["loggingConfig"]), None)
        call.runtime.logging_config.put(call.workspace, request, call.principal.actor)
        call.runtime.logging_configs.invalidate(call.workspace)

    await run(put)
    return {}


@operation(SERVICE, "DeleteModelInvocationLoggingConfiguration", Permission.MANAGE)
async def delete_logging_configuration(call: AwsCall) -> dict[str, Any]:
    """Turn body delivery off: records keep their metadata, counts, cost and errors."""

    def delete() -> None:
        call.runtime.logging_config.delete(call.workspace, call.principal.actor)
        call.runtime.logging_configs.invalidate(call.workspace)

    await run(delete)
    return {}
