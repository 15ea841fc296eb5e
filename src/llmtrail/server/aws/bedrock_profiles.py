"""Bedrock's inference-profile calls (``Create``/``Get``/``List``/``DeleteInferenceProfile``)
and its tagging calls (``TagResource``, ``UntagResource``, ``ListTagsForResource``) on the
landed profiles (`llmtrail.analytics.profiles.ProfileService`).

The handlers call the same `ProfileService` methods as ``/api/profiles``, in the caller's
workspace, so a profile made through either API is the other's too, and the gateway
attributes a call naming its ARN at once (the service re-indexes on every write).

What Bedrock decides and the library does not, is decided here:

- **TooManyTagsException**: a profile holds at most 50 tags, counting those it has; the
  library refuses more as a validation error, Bedrock with its own code, so the count is
  checked here first.
- **Which ARNs are taggable**: only inference profiles live in llmtrail. Another Bedrock
  resource's ARN (a custom model, a guardrail, …, anything botocore's ``TaggableResourcesArn``
  pattern admits) is ResourceNotFoundException, as Bedrock answers for a resource it does not
  have; anything else is ValidationException.
- **Pagination**: the library's list token is wrapped in `page_token`, so a token is bound to
  ``ListInferenceProfiles`` and the caller's workspace like every AWS-shaped token.
- **Projects** (``projectIdentifier``): llmtrail has one project per workspace, Bedrock's
  ``default``; another project is ResourceNotFoundException.
"""

from __future__ import annotations

import functools
import re
from typing import Any

from llmtrail.analytics.profile_rules import MAX_TAGS, PROFILE_ARN, tags_from_list
from llmtrail.analytics.profiles import InferenceProfile, ProfileService
from llmtrail.security.principal import Permission
from llmtrail.server.aws.bedrock_errors import run
from llmtrail.server.aws.models import service_model
from llmtrail.server.aws.operations import AwsCall, AwsError, operation
from llmtrail.server.aws.tokens import page_token, read_page_token

SERVICE = "bedrock"
_DEFAULT_PROJECT = re.compile(
    r"default|arn:aws(-[^:]+)?:bedrock:[0-9a-z-]{1,20}:[0-9]{12}:project/default"
)


@functools.cache
def _taggable() -> re.Pattern[str]:
    """botocore's ``TaggableResourcesArn`` pattern: what Bedrock takes for a resource ARN."""
    shape = service_model(SERVICE).shape_for("TaggableResourcesArn")
    return re.compile(shape.metadata["pattern"])


def summary(profile: InferenceProfile) -> dict[str, Any]:
    """Bedrock's ``InferenceProfileSummary`` (and GetInferenceProfile's answer) with times as
    datetimes, from the library's `InferenceProfile.summary`."""
    return {**profile.summary(), "createdAt": profile.created_at, "updatedAt": profile.updated_at}


def _service(call: AwsCall) -> ProfileService:
    service: ProfileService = call.runtime.profiles
    return service


def _check_project(call: AwsCall) -> None:
    project = call.params.get("projectIdentifier")
    if project is not None and not _DEFAULT_PROJECT.fullmatch(project):
        raise AwsError(
            "ResourceNotFoundException",
            f"no project {project!r}: llmtrail has one project per workspace, 'default'",
        )


def _too_many(resource: str, count: int) -> AwsError:
    """Bedrock's TooManyTagsException, naming the resource in ``resourceName`` as Bedrock
    does."""
    return AwsError(
        "TooManyTagsException",
        f"the resource would have {count} tags; a resource has at most {MAX_TAGS}"
        f" (existing tags included): {resource}",
        fields={"resourceName": resource},
    )


def _new_keys(tags: list[dict[str, Any]]) -> set[str]:
    return {str(tag.get("key")) for tag in tags}


# -- inference profiles ------------------------------------------------------------------------
@operation(SERVICE, "CreateInferenceProfile", Permission.MANAGE)
async def create_inference_profile(call: AwsCall) -> dict[str, Any]:
    """A new application profile copying ``modelSource.copyFrom``, with its tags."""
    params = call.params
    copy_from = params["modelSource"].get("copyFrom")
    if copy_from is None:
        raise AwsError("ValidationException", "modelSource.copyFrom: is required")
    tag_list = params.get("tags") or []
    if len(_new_keys(tag_list)) > MAX_TAGS:
        raise _too_many(params["inferenceProfileName"], len(_new_keys(tag_list)))

    def create() -> InferenceProfile:
        return _service(call).create(
            params["inferenceProfileName"],
            copy_from,
            description=params.get("description"),
            tags=tags_from_list(tag_list) if tag_list else None,
            client_request_token=params.get("clientRequestToken"),
            workspace=call.workspace,
        )

    profile = await run(create)
    return {"inferenceProfileArn": profile.arn, "status": profile.status}


@operation(SERVICE, "GetInferenceProfile", Permission.READ)
async def get_inference_profile(call: AwsCall) -> dict[str, Any]:
    """An application profile of the workspace or a system-defined one, by id or ARN."""
    _check_project(call)
    identifier = call.params["inferenceProfileIdentifier"]
    profile = await run(lambda: _service(call).get(identifier, workspace=call.workspace))
    return summary(profile)


@operation(SERVICE, "ListInferenceProfiles", Permission.READ)
async def list_inference_profiles(call: AwsCall) -> dict[str, Any]:
    """The workspace's application profiles (oldest first), then the system-defined ones;
    ``typeEquals`` keeps one type."""
    _check_project(call)
    params = call.params
    token = params.get("nextToken")
    after = None if token is None else read_page_token(call, token, "ValidationException")
    if after is not None and not isinstance(after, str):
        raise AwsError("ValidationException", "The specified nextToken is not valid")
    page = await run(
        lambda: _service(call).list(
            params.get("typeEquals"), params.get("maxResults"), after, workspace=call.workspace
        )
    )
    out: dict[str, Any] = {"inferenceProfileSummaries": [summary(p) for p in page.profiles]}
    if page.next_token is not None:
        out["nextToken"] = page_token(call, page.next_token)
    return out


@operation(SERVICE, "DeleteInferenceProfile", Permission.MANAGE)
async def delete_inference_profile(call: AwsCall) -> dict[str, Any]:
    """Delete an application profile (a system-defined one is ValidationException)."""
    identifier = call.params["inferenceProfileIdentifier"]
    await run(lambda: _service(call).delete(identifier, workspace=call.workspace))
    return {}


# -- tags --------------------------------------------------------------------------------------
def _profile_arn(arn: str) -> str:
    """``arn`` when it names an inference profile; else Bedrock's error for a resource
    llmtrail does not have (ResourceNotFoundException) or a malformed ARN
    (ValidationException)."""
    if PROFILE_ARN.fullmatch(arn):
        return arn
    if _taggable().search(arn):
        raise AwsError(
            "ResourceNotFoundException",
            f"no resource {arn!r}: llmtrail keeps tags on inference profiles only",
        )
    raise AwsError(
        "ValidationException",
        f"resourceARN: {arn!r} is not the ARN of a taggable Bedrock resource",
    )


@operation(SERVICE, "TagResource", Permission.MANAGE)
async def tag_resource(call: AwsCall) -> dict[str, Any]:
    """Add or overwrite tags on an application profile (at most 50 in all)."""
    arn = _profile_arn(call.params["resourceARN"])
    tag_list: list[dict[str, Any]] = call.params["tags"]

    def tag() -> None:
        service = _service(call)
        existing = service.tags(arn, workspace=call.workspace)  # NotFound first, as Bedrock
        count = len(set(existing) | _new_keys(tag_list))
        if count > MAX_TAGS:
            raise _too_many(arn, count)
        service.tag(arn, tags_from_list(tag_list), workspace=call.workspace)

    await run(tag)
    return {}


@operation(SERVICE, "UntagResource", Permission.MANAGE)
async def untag_resource(call: AwsCall) -> dict[str, Any]:
    """Remove tag keys from an application profile (keys it does not have are ignored)."""
    arn = _profile_arn(call.params["resourceARN"])
    keys: list[str] = call.params["tagKeys"]
    await run(lambda: _service(call).untag(arn, keys, workspace=call.workspace))
    return {}


@operation(SERVICE, "ListTagsForResource", Permission.READ)
async def list_tags_for_resource(call: AwsCall) -> dict[str, Any]:
    """A profile's tags (a system-defined profile has none)."""
    arn = _profile_arn(call.params["resourceARN"])
    tags = await run(lambda: _service(call).tags(arn, workspace=call.workspace))
    return {"tags": [{"key": k, "value": v} for k, v in tags.items()]}
