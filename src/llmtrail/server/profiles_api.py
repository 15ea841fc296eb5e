"""The inference-profiles API, Bedrock's control-plane calls under ``/api/profiles``:

=======================================  ========================================
``POST /api/profiles``                   CreateInferenceProfile (201)
``GET /api/profiles``                    ListInferenceProfiles (``typeEquals``,
                                         ``maxResults``, ``nextToken``)
``GET /api/profiles/{id}``               GetInferenceProfile
``DELETE /api/profiles/{id}``            DeleteInferenceProfile
``POST /api/profiles/{id}/tags``         TagResource (``{"tags": [{key, value}]}``)
``DELETE /api/profiles/{id}/tags``       UntagResource (``?tagKeys=a&tagKeys=b``)
``GET /api/profiles/{id}/tags``          ListTagsForResource
=======================================  ========================================

Bodies and answers use Bedrock's JSON field names (``inferenceProfileName``,
``modelSource.copyFrom``, ``inferenceProfileArn``, …), so a Bedrock client's payloads read
the same; ``{id}`` is a profile id or its ARN (percent-encoded or not). Errors are HTTP
problem JSON naming the field. The handlers only decode HTTP and call `ProfileService`,
off the event loop because the state store may block, always in the caller's workspace
(`principal_of`): another workspace's profile answers 404 like an unknown one. Reads need
``read``, changes ``manage``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from llmtrail.analytics.profile_rules import MAX_RESULTS, tags_from_list
from llmtrail.analytics.profiles import ProfileService
from llmtrail.errors import LlmtrailError, ValidationError
from llmtrail.security.principal import Permission, principal_of
from llmtrail.server.access import guarded_route
from llmtrail.server.params import json_object, optional_int_param
from llmtrail.server.problems import from_error

MAX_BODY_BYTES = 64 * 1024
_CREATE_FIELDS = frozenset(
    {"inferenceProfileName", "description", "modelSource", "tags", "clientRequestToken"}
)
T = TypeVar("T")


def _json(value: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(value), status, media_type="application/json")


def _tag_list(tags: dict[str, str]) -> list[dict[str, str]]:
    return [{"key": k, "value": v} for k, v in tags.items()]


def create_arguments(body: dict[str, Any]) -> dict[str, Any]:
    """CreateInferenceProfile's JSON body as `ProfileService.create` keyword arguments."""
    unknown = sorted(set(body) - _CREATE_FIELDS)
    if unknown:
        raise ValidationError(
            unknown[0],
            f"is not a field of CreateInferenceProfile ({', '.join(sorted(_CREATE_FIELDS))})",
        )
    if "inferenceProfileName" not in body:
        raise ValidationError("inferenceProfileName", "is required")
    source = body.get("modelSource")
    if not isinstance(source, dict) or "copyFrom" not in source:
        raise ValidationError("modelSource", 'is required: {"copyFrom": MODEL_ID_OR_ARN}')
    return {
        "name": body["inferenceProfileName"],
        "copy_from": source["copyFrom"],
        "description": body.get("description"),
        "tags": tags_from_list(body["tags"]) if body.get("tags") is not None else None,
        "client_request_token": body.get("clientRequestToken"),
    }


def _workspace(request: Request) -> str:
    """The only workspace this request may read or change."""
    return principal_of(request.scope).workspace


def _max_results(params: dict[str, str]) -> int | None:
    return optional_int_param(
        params.get("maxResults"), "maxResults", minimum=1, maximum=MAX_RESULTS
    )


class ProfilesAPI:
    """The ``/api/profiles`` endpoints over one `ProfileService`."""

    def __init__(self, profiles: ProfileService) -> None:
        self.profiles = profiles

    def routes(self) -> list[Route]:
        """The routes to mount (the ``/tags`` ones first: an ARN holds a ``/``)."""
        tags = "/api/profiles/{identifier:path}/tags"
        one = "/api/profiles/{identifier:path}"
        read, manage = Permission.READ, Permission.MANAGE
        return [
            guarded_route(tags, self.tag, manage, methods=["POST"]),
            guarded_route(tags, self.untag, manage, methods=["DELETE"]),
            guarded_route(tags, self.list_tags, read, methods=["GET"]),
            guarded_route("/api/profiles", self.create, manage, methods=["POST"]),
            guarded_route("/api/profiles", self.list, read, methods=["GET"]),
            guarded_route(one, self.get, read, methods=["GET"]),
            guarded_route(one, self.delete, manage, methods=["DELETE"]),
        ]

    async def _call(self, fn: Callable[[], T]) -> T:
        return await asyncio.to_thread(fn)

    async def create(self, request: Request) -> Response:
        """CreateInferenceProfile → 201 ``{"inferenceProfileArn", "status"}``."""
        try:
            args = create_arguments(await json_object(request, MAX_BODY_BYTES))
            ws = _workspace(request)
            profile = await self._call(lambda: self.profiles.create(**args, workspace=ws))
        except LlmtrailError as exc:
            return from_error(exc)
        return _json({"inferenceProfileArn": profile.arn, "status": profile.status}, 201)

    async def list(self, request: Request) -> Response:
        """ListInferenceProfiles → ``{"inferenceProfileSummaries": [...], "nextToken"}``."""
        params = dict(request.query_params)
        try:
            type_equals = params.get("typeEquals", params.get("type"))
            max_results = _max_results(params)
            token, ws = params.get("nextToken"), _workspace(request)
            page = await self._call(
                lambda: self.profiles.list(type_equals, max_results, token, workspace=ws)
            )
        except LlmtrailError as exc:
            return from_error(exc)
        return _json(page.to_dict())

    async def get(self, request: Request) -> Response:
        """GetInferenceProfile → the profile's summary."""
        identifier = request.path_params["identifier"]
        try:
            ws = _workspace(request)
            profile = await self._call(lambda: self.profiles.get(identifier, workspace=ws))
        except LlmtrailError as exc:
            return from_error(exc)
        return _json(profile.summary())

    async def delete(self, request: Request) -> Response:
        """DeleteInferenceProfile → ``{}``."""
        identifier = request.path_params["identifier"]
        try:
            ws = _workspace(request)
            await self._call(lambda: self.profiles.delete(identifier, workspace=ws))
        except LlmtrailError as exc:
            return from_error(exc)
        return _json({})

    async def tag(self, request: Request) -> Response:
        """TagResource → ``{"tags": [...]}``, the profile's tags after."""
        identifier = request.path_params["identifier"]
        try:
            body = await json_object(request, MAX_BODY_BYTES)
            if "tags" not in body:
                raise ValidationError("tags", 'is required: [{"key": …, "value": …}]')
            new = tags_from_list(body["tags"])
            ws = _workspace(request)
            after = await self._call(lambda: self.profiles.tag(identifier, new, workspace=ws))
        except LlmtrailError as exc:
            return from_error(exc)
        return _json({"tags": _tag_list(after)})

    async def untag(self, request: Request) -> Response:
        """UntagResource (``?tagKeys=a&tagKeys=b`` or ``?tagKeys=a,b``) → ``{"tags": [...]}``."""
        identifier = request.path_params["identifier"]
        # a tag key cannot hold a comma, so a comma-separated list is unambiguous
        keys = [k for item in request.query_params.getlist("tagKeys") for k in item.split(",")]
        try:
            if not keys:
                raise ValidationError("tagKeys", "is required: ?tagKeys=KEY (repeatable)")
            ws = _workspace(request)
            after = await self._call(lambda: self.profiles.untag(identifier, keys, workspace=ws))
        except LlmtrailError as exc:
            return from_error(exc)
        return _json({"tags": _tag_list(after)})

    async def list_tags(self, request: Request) -> Response:
        """ListTagsForResource → ``{"tags": [{"key", "value"}]}``."""
        identifier = request.path_params["identifier"]
        try:
            ws = _workspace(request)
            tags = await self._call(lambda: self.profiles.tags(identifier, workspace=ws))
        except LlmtrailError as exc:
            return from_error(exc)
        return _json({"tags": _tag_list(tags)})
