"""boto3 ``bedrock``'s inference-profile and tagging calls against a real server, each answer
compared with llmtrail's own ``/api/profiles`` on the same profiles, and a gateway call naming
a profile's ARN attributed to it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any
from urllib.parse import quote

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from llmtrail.record import parse_timestamp
from tests.aws.conftest import ACCOUNT, REGION, AwsServer
from tests.harness import call

PROFILE_ARN = f"arn:aws:bedrock:{REGION}:{ACCOUNT}:application-inference-profile/"
HAIKU_ARN = f"arn:aws:bedrock:{REGION}::foundation-model/anthropic.claude-3-haiku-20240307-v1:0"
SONNET_ARN = HAIKU_ARN.replace("claude-3-haiku-20240307", "claude-3-sonnet-20240229")
SYSTEM_ID = "us.anthropic.claude-3-haiku-20240307-v1:0"


@pytest.fixture(scope="module")
def bedrock(aws_server: AwsServer) -> Iterator[Any]:
    client = aws_server.client("bedrock")
    yield client
    client.close()


@pytest.fixture(scope="module")
def unchecked(aws_server: AwsServer) -> Iterator[Any]:
    """A client that sends what botocore would refuse, so the server's checks answer."""
    raw = boto3.client(
        "bedrock",
        endpoint_url=aws_server.url,
        region_name=REGION,
        aws_access_key_id="AKIAEXAMPLEOPENMODE",
        aws_secret_access_key="not-checked-in-open-mode",
        config=Config(retries={"max_attempts": 1}, parameter_validation=False),
    )
    yield raw
    raw.close()


def api(aws_server: AwsServer, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    return call(aws_server.url, method, path, body)


def api_profile(aws_server: AwsServer, identifier: str) -> dict[str, Any]:
    status, body = api(aws_server, "GET", f"/api/profiles/{quote(identifier, safe='')}")
    assert status == 200, body
    return dict(body)


def api_tags(aws_server: AwsServer, identifier: str) -> list[dict[str, str]]:
    status, body = api(aws_server, "GET", f"/api/profiles/{quote(identifier, safe='')}/tags")
    assert status == 200, body
    return list(body["tags"])


def api_list(aws_server: AwsServer, type_equals: str | None = None) -> list[dict[str, Any]]:
    """Every profile ``/api/profiles`` lists, page by page."""
    out: list[dict[str, Any]] = []
    token: str | None = None
    while True:
        query = "maxResults=50" + (f"&typeEquals={type_equals}" if type_equals else "")
        if token:
            query += f"&nextToken={quote(token)}"
        status, body = api(aws_server, "GET", f"/api/profiles?{query}")
        assert status == 200, body
        out += body["inferenceProfileSummaries"]
        token = body.get("nextToken")
        if not token:
            return out


def same_profile(aws: dict[str, Any], ours: dict[str, Any]) -> None:
    """A boto3 answer (datetimes) equals llmtrail's (RFC 3339 strings), member by member."""
    for key in (
        "inferenceProfileName",
        "inferenceProfileArn",
        "inferenceProfileId",
        "description",
        "models",
        "status",
        "type",
    ):
        assert aws.get(key) == ours.get(key), key
    for key in ("createdAt", "updatedAt"):
        assert (key in aws) == (key in ours), key
        if key in ours:  # epoch seconds on the wire: equal to well under a millisecond
            assert abs(aws[key] - parse_timestamp(ours[key])) < timedelta(milliseconds=1)


def error(fn: Callable[..., Any], **params: Any) -> tuple[str, int, str]:
    """The code, HTTP status and message of the ClientError ``fn(**params)`` raises."""
    with pytest.raises(ClientError) as caught:
        fn(**params)
    response = caught.value.response
    return (
        response["Error"]["Code"],
        response["ResponseMetadata"]["HTTPStatusCode"],
        response["Error"].get("Message", ""),
    )


def modelled_status(client: Any, code: str) -> int:
    """The HTTP status botocore's model gives error ``code``."""
    return int(client.meta.service_model.shape_for(code).metadata["error"]["httpStatusCode"])


def create(bedrock: Any, name: str, copy_from: str = HAIKU_ARN, **more: Any) -> str:
    answer = bedrock.create_inference_profile(
        inferenceProfileName=name, modelSource={"copyFrom": copy_from}, **more
    )
    assert answer["ResponseMetadata"]["HTTPStatusCode"] == 201
    assert answer["status"] == "ACTIVE"
    return str(answer["inferenceProfileArn"])


# -- create, get, list, delete -----------------------------------------------------------------
def test_created_with_boto3_is_in_llmtrails_api_with_its_tags(
    bedrock: Any, aws_server: AwsServer, unique: str
) -> None:
    tags = [{"key": "dept", "value": "claims"}, {"key": "cost-center", "value": "cc 42"}]
    arn = create(bedrock, unique, HAIKU_ARN, description="Claims intake", tags=tags)
    assert arn.startswith(PROFILE_ARN)
    ours = api_profile(aws_server, arn)
    same_profile(bedrock.get_inference_profile(inferenceProfileIdentifier=arn), ours)
    assert ours["inferenceProfileName"] == unique
    assert ours["models"] == [{"modelArn": HAIKU_ARN}]
    assert api_tags(aws_server, arn) == tags
    assert bedrock.list_tags_for_resource(resourceARN=arn)["tags"] == tags
    listed = bedrock.list_inference_profiles(typeEquals="APPLICATION", maxResults=1000)
    mine = [p for p in listed["inferenceProfileSummaries"] if p["inferenceProfileArn"] == arn]
    assert len(mine) == 1
    same_profile(mine[0], ours)


def test_created_with_llmtrails_api_is_returned_by_boto3(
    bedrock: Any, aws_server: AwsServer, unique: str
) -> None:
    body = {
        "inferenceProfileName": unique,
        "modelSource": {"copyFrom": "sim/smart"},
        "tags": [{"key": "team", "value": "search"}],
    }
    status, made = api(aws_server, "POST", "/api/profiles", body)
    assert status == 201, made
    arn = made["inferenceProfileArn"]
    ours = api_profile(aws_server, arn)
    by_arn = bedrock.get_inference_profile(inferenceProfileIdentifier=arn)
    by_id = bedrock.get_inference_profile(inferenceProfileIdentifier=ours["inferenceProfileId"])
    for answer in (by_arn, by_id):
        same_profile(answer, ours)
    assert bedrock.list_tags_for_resource(resourceARN=arn)["tags"] == body["tags"]


def test_a_call_naming_the_profile_arn_is_attributed_to_it(
    bedrock: Any, aws_server: AwsServer, unique: str
) -> None:
    """A profile of a routed model (``sim/fast``: llmtrail's API takes a model id, Bedrock's
    an ARN), tagged with boto3, then called by its ARN through the gateway."""
    body = {"inferenceProfileName": unique, "modelSource": {"copyFrom": "sim/fast"}}
    status, made = api(aws_server, "POST", "/api/profiles", body)
    assert status == 201, made
    arn = made["inferenceProfileArn"]
    bedrock.tag_resource(resourceARN=arn, tags=[{"key": "dept", "value": "claims"}])
    bedrock.tag_resource(resourceARN=arn, tags=[{"key": "app", "value": unique}])
    runtime = aws_server.client("bedrock-runtime")
    try:
        reply = runtime.converse(
            modelId=arn, messages=[{"role": "user", "content": [{"text": "a claim"}]}]
        )
    finally:
        runtime.close()
    record = aws_server.proc.wait_for_record(reply["ResponseMetadata"]["RequestId"])
    profile = bedrock.get_inference_profile(inferenceProfileIdentifier=arn)
    tags = bedrock.list_tags_for_resource(resourceARN=arn)["tags"]
    assert record["modelId"] == arn
    assert record["inferenceProfile"] == {
        "arn": arn,
        "name": profile["inferenceProfileName"],
        "tags": {t["key"]: t["value"] for t in tags},
    }
    assert record["inferenceProfile"]["tags"] == {"dept": "claims", "app": unique}


def test_list_pages_through_everything_llmtrails_api_lists(
    bedrock: Any, aws_server: AwsServer, unique: str
) -> None:
    made = [create(bedrock, f"{unique}-{i}") for i in range(5)]
    paginator = bedrock.get_paginator("list_inference_profiles")
    for type_equals in ("APPLICATION", "SYSTEM_DEFINED", None):
        extra = {"typeEquals": type_equals} if type_equals else {}
        pages = list(paginator.paginate(**extra, PaginationConfig={"PageSize": 7}))
        assert all(len(p["inferenceProfileSummaries"]) <= 7 for p in pages)
        assert all("nextToken" in p for p in pages[:-1]) and "nextToken" not in pages[-1]
        aws = [s for p in pages for s in p["inferenceProfileSummaries"]]
        ours = api_list(aws_server, type_equals)
        assert [s["inferenceProfileArn"] for s in aws] == [s["inferenceProfileArn"] for s in ours]
        for a, o in zip(aws, ours, strict=True):
            same_profile(a, o)
        kinds = {s["type"] for s in aws}
        assert kinds == ({type_equals} if type_equals else {"APPLICATION", "SYSTEM_DEFINED"})
    application = [s["inferenceProfileArn"] for s in api_list(aws_server, "APPLICATION")]
    assert [a for a in application if a in made] == made  # oldest first


def test_a_bad_next_token_is_a_validation_exception(bedrock: Any) -> None:
    first = bedrock.list_inference_profiles(typeEquals="SYSTEM_DEFINED", maxResults=1)
    token = first["nextToken"]
    second = bedrock.list_inference_profiles(
        typeEquals="SYSTEM_DEFINED", maxResults=1, nextToken=token
    )
    assert second["inferenceProfileSummaries"] != first["inferenceProfileSummaries"]
    for bad in ("not-a-token", token[:-3] + "AAA", "eyJvcCI6IngifQ"):
        code, status, _ = error(bedrock.list_inference_profiles, nextToken=bad)
        assert (code, status) == ("ValidationException", modelled_status(bedrock, code))


def test_system_defined_profiles_are_readable_not_writable(
    bedrock: Any, aws_server: AwsServer
) -> None:
    ours = api_profile(aws_server, SYSTEM_ID)
    assert ours["type"] == "SYSTEM_DEFINED"
    same_profile(bedrock.get_inference_profile(inferenceProfileIdentifier=SYSTEM_ID), ours)
    arn = ours["inferenceProfileArn"]
    same_profile(bedrock.get_inference_profile(inferenceProfileIdentifier=arn), ours)
    assert bedrock.list_tags_for_resource(resourceARN=arn)["tags"] == api_tags(aws_server, arn)
    code, _, _ = error(bedrock.delete_inference_profile, inferenceProfileIdentifier=SYSTEM_ID)
    assert code == "ValidationException"
    code, _, _ = error(bedrock.tag_resource, resourceARN=arn, tags=[{"key": "a", "value": "b"}])
    assert code == "ValidationException"
    assert api_profile(aws_server, SYSTEM_ID) == ours


def test_delete_removes_it_from_both_apis(bedrock: Any, aws_server: AwsServer, unique: str) -> None:
    by_boto3 = create(bedrock, f"{unique}-a")
    status, made = api(
        aws_server,
        "POST",
        "/api/profiles",
        {"inferenceProfileName": f"{unique}-b", "modelSource": {"copyFrom": "sim/tiny"}},
    )
    assert status == 201, made
    by_api = made["inferenceProfileArn"]
    profile_id = api_profile(aws_server, by_api)["inferenceProfileId"]
    assert bedrock.delete_inference_profile(inferenceProfileIdentifier=by_boto3)
    assert bedrock.delete_inference_profile(inferenceProfileIdentifier=profile_id)
    for arn in (by_boto3, by_api):
        assert api(aws_server, "GET", f"/api/profiles/{quote(arn, safe='')}")[0] == 404
        for fn, params in (
            (bedrock.get_inference_profile, {"inferenceProfileIdentifier": arn}),
            (bedrock.delete_inference_profile, {"inferenceProfileIdentifier": arn}),
            (bedrock.list_tags_for_resource, {"resourceARN": arn}),
        ):
            code, status, _ = error(fn, **params)
            assert (code, status) == ("ResourceNotFoundException", 404)
    listed = [s["inferenceProfileArn"] for s in api_list(aws_server, "APPLICATION")]
    assert by_boto3 not in listed and by_api not in listed


# -- conflicts and idempotency -----------------------------------------------------------------
def test_a_name_taken_is_a_conflict(bedrock: Any, aws_server: AwsServer, unique: str) -> None:
    arn = create(bedrock, unique)
    code, status, message = error(
        bedrock.create_inference_profile,
        inferenceProfileName=unique,
        modelSource={"copyFrom": SONNET_ARN},
    )
    assert (code, status) == ("ConflictException", modelled_status(bedrock, code))
    assert unique in message
    named = [s for s in api_list(aws_server, "APPLICATION") if s["inferenceProfileName"] == unique]
    assert [s["inferenceProfileArn"] for s in named] == [arn]


def test_a_repeated_client_request_token_returns_the_same_profile(
    bedrock: Any, aws_server: AwsServer, unique: str
) -> None:
    token = f"token-{unique}"
    first = create(bedrock, unique, clientRequestToken=token)
    again = create(bedrock, unique, clientRequestToken=token)
    assert again == first
    code, _, _ = error(
        bedrock.create_inference_profile,
        inferenceProfileName=f"{unique}-other",
        modelSource={"copyFrom": HAIKU_ARN},
        clientRequestToken=token,
    )
    assert code == "ConflictException"
    names = [s["inferenceProfileName"] for s in api_list(aws_server, "APPLICATION")]
    assert names.count(unique) == 1 and f"{unique}-other" not in names


# -- validation --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"inferenceProfileName": "bad name!"}, "inferenceProfileName"),
        ({"modelSource": {"copyFrom": PROFILE_ARN + "abcdefghijkl"}}, "modelSource.copyFrom"),
        ({"tags": [{"key": "aws:reserved", "value": "x"}]}, "tags[0].key"),
        (
            {"tags": [{"key": "dup", "value": "1"}, {"key": "dup", "value": "2"}]},
            "tags[1].key",
        ),
        ({"clientRequestToken": "-starts-with-a-hyphen"}, "clientRequestToken"),
    ],
)
def test_create_refuses_bad_input_naming_the_field(
    bedrock: Any, aws_server: AwsServer, unique: str, params: dict[str, Any], field: str
) -> None:
    request = {"inferenceProfileName": unique, "modelSource": {"copyFrom": HAIKU_ARN}, **params}
    code, status, message = error(bedrock.create_inference_profile, **request)
    assert (code, status) == ("ValidationException", modelled_status(bedrock, code))
    assert field in message
    names = [s["inferenceProfileName"] for s in api_list(aws_server, "APPLICATION")]
    assert request["inferenceProfileName"] not in names


def test_the_server_checks_what_botocore_would_have_refused(unchecked: Any, unique: str) -> None:
    for fn, params in (
        (unchecked.create_inference_profile, {"inferenceProfileName": unique}),
        (unchecked.list_inference_profiles, {"maxResults": 0}),
        (unchecked.list_inference_profiles, {"maxResults": 1001}),
        (unchecked.list_inference_profiles, {"typeEquals": "BOTH"}),
        (unchecked.tag_resource, {"resourceARN": PROFILE_ARN + "abcdefghijkl"}),
    ):
        code, status, _ = error(fn, **params)
        assert (code, status) == ("ValidationException", modelled_status(unchecked, code))


def test_get_of_an_unknown_or_malformed_identifier(bedrock: Any) -> None:
    code, status, _ = error(
        bedrock.get_inference_profile, inferenceProfileIdentifier=PROFILE_ARN + "nosuchprofile"
    )
    assert (code, status) == ("ResourceNotFoundException", modelled_status(bedrock, code))
    code, status, _ = error(bedrock.get_inference_profile, inferenceProfileIdentifier="bad id!")
    assert (code, status) == ("ValidationException", modelled_status(bedrock, code))


# -- tags --------------------------------------------------------------------------------------
def test_tag_and_untag_change_what_llmtrails_api_shows(
    bedrock: Any, aws_server: AwsServer, unique: str
) -> None:
    arn = create(bedrock, unique, tags=[{"key": "a", "value": "1"}])
    bedrock.tag_resource(
        resourceARN=arn, tags=[{"key": "b", "value": "2"}, {"key": "a", "value": "3"}]
    )
    assert bedrock.list_tags_for_resource(resourceARN=arn)["tags"] == api_tags(aws_server, arn)
    assert api_tags(aws_server, arn) == [{"key": "a", "value": "3"}, {"key": "b", "value": "2"}]
    bedrock.untag_resource(resourceARN=arn, tagKeys=["a", "never-set"])
    assert bedrock.list_tags_for_resource(resourceARN=arn)["tags"] == api_tags(aws_server, arn)
    assert api_tags(aws_server, arn) == [{"key": "b", "value": "2"}]
    bedrock.untag_resource(resourceARN=arn, tagKeys=[])
    assert api_tags(aws_server, arn) == [{"key": "b", "value": "2"}]
    status, _ = api(
        aws_server, "POST", f"/api/profiles/{quote(arn, safe='')}/tags",
        {"tags": [{"key": "c", "value": "4"}]},
    )  # fmt: skip
    assert status == 200
    assert bedrock.list_tags_for_resource(resourceARN=arn)["tags"] == api_tags(aws_server, arn)


def test_more_than_fifty_tags_is_too_many(bedrock: Any, aws_server: AwsServer, unique: str) -> None:
    many = [{"key": f"k{i}", "value": str(i)} for i in range(51)]
    code, status, _ = error(
        bedrock.create_inference_profile,
        inferenceProfileName=unique,
        modelSource={"copyFrom": HAIKU_ARN},
        tags=many,
    )
    assert (code, status) == ("TooManyTagsException", modelled_status(bedrock, code))
    arn = create(bedrock, unique, tags=many[:45])
    bedrock.tag_resource(resourceARN=arn, tags=many[40:50])  # 5 overwritten, 5 new: 50
    assert len(api_tags(aws_server, arn)) == 50
    with pytest.raises(ClientError) as caught:
        bedrock.tag_resource(resourceARN=arn, tags=many[50:])
    response = caught.value.response
    assert response["Error"]["Code"] == "TooManyTagsException"
    assert response["ResponseMetadata"]["HTTPStatusCode"] == modelled_status(
        bedrock, "TooManyTagsException"
    )
    assert response["resourceName"] == arn
    assert api_tags(aws_server, arn) == many[:50]


@pytest.mark.parametrize(
    ("arn", "code"),
    [
        (PROFILE_ARN + "nosuchprofile", "ResourceNotFoundException"),
        (f"arn:aws:bedrock:{REGION}:{ACCOUNT}:guardrail/abc123def456", "ResourceNotFoundException"),
        (
            f"arn:aws:bedrock:{REGION}:{ACCOUNT}:custom-model/amazon.titan-text-express-v1:0:8k"
            "/abcdefghij12",
            "ResourceNotFoundException",
        ),
        ("arn:aws:s3:::a-bucket-of-logs", "ValidationException"),
        (f"arn:aws:iam::{ACCOUNT}:role/bedrock logging", "ValidationException"),
    ],
)
def test_tags_of_resources_llmtrail_does_not_have(bedrock: Any, arn: str, code: str) -> None:
    status = modelled_status(bedrock, code)
    for fn, params in (
        (bedrock.list_tags_for_resource, {}),
        (bedrock.tag_resource, {"tags": [{"key": "a", "value": "b"}]}),
        (bedrock.untag_resource, {"tagKeys": ["a"]}),
    ):
        assert error(fn, resourceARN=arn, **params)[:2] == (code, status)


def test_the_default_project_is_the_workspace_and_no_other_exists(
    bedrock: Any, aws_server: AwsServer
) -> None:
    default_arn = f"arn:aws:bedrock:{REGION}:{ACCOUNT}:project/default"
    everything = bedrock.list_inference_profiles(maxResults=1000)["inferenceProfileSummaries"]
    for project in ("default", default_arn):
        listed = bedrock.list_inference_profiles(maxResults=1000, projectIdentifier=project)
        assert listed["inferenceProfileSummaries"] == everything
        same_profile(
            bedrock.get_inference_profile(
                inferenceProfileIdentifier=SYSTEM_ID, projectIdentifier=project
            ),
            api_profile(aws_server, SYSTEM_ID),
        )
    code, status, _ = error(bedrock.list_inference_profiles, projectIdentifier="proj-other")
    assert (code, status) == ("ResourceNotFoundException", modelled_status(bedrock, code))
