"""boto3 ``bedrock`` signing with key pairs llmtrail issued: every read and change is in the
signing key's workspace, reads need ``read`` and changes ``manage`` (a server with keys of
its own, since one key ends open mode)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import pytest
from botocore.exceptions import ClientError

from tests.aws.conftest import ACCOUNT, REGION, aws_client
from tests.harness import ServerProcess
from tests.security.test_front_door import auth, call, create_key

MODEL = f"arn:aws:bedrock:{REGION}::foundation-model/anthropic.claude-3-haiku-20240307-v1:0"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/BedrockLogging"


@dataclass
class Key:
    """An issued key: its bearer form for llmtrail's API, a boto3 client signing with its
    key pair."""

    bearer: str
    bedrock: Any

    def api(self, url: str, path: str) -> tuple[int, Any]:
        status, _, body = call(url + path, headers=auth(self.bearer))
        return status, json.loads(body)


@dataclass
class World:
    url: str
    w1: Key  # admin of workspace w1
    w2: Key  # admin of workspace w2
    reader: Key  # reader of workspace w1


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    data = tmp_path_factory.mktemp("bedrock-ws") / "data"
    config = f'region = "{REGION}"\naccount_id = "{ACCOUNT}"\n'
    env = {"LLMTRAIL_SERVER__KEY_REFRESH_S": "1"}
    with ServerProcess(data, config=config, env=env) as proc:
        operator = str(create_key(proc.url, None, role="admin")["key"])
        keys: list[Key] = []
        for role, workspace in (("admin", "w1"), ("admin", "w2"), ("reader", "w1")):
            issued = create_key(proc.url, operator, role=role, workspace=workspace, aws=True)
            pair = {
                "aws_access_key_id": issued["awsAccessKeyId"],
                "aws_secret_access_key": issued["awsSecretAccessKey"],
            }
            keys.append(Key(issued["key"], aws_client(proc.url, "bedrock", **pair)))
        try:
            yield World(proc.url, *keys)
        finally:
            for key in keys:
                key.bedrock.close()


def code_of(fn: Callable[..., Any], **params: Any) -> str:
    with pytest.raises(ClientError) as caught:
        fn(**params)
    return str(caught.value.response["Error"]["Code"])


def test_a_profile_is_its_workspaces_only(world: World, unique: str) -> None:
    w1, w2 = world.w1.bedrock, world.w2.bedrock
    arn = w1.create_inference_profile(
        inferenceProfileName=unique,
        modelSource={"copyFrom": MODEL},
        tags=[{"key": "dept", "value": "claims"}],
    )["inferenceProfileArn"]
    path = f"/api/profiles/{quote(arn, safe='')}"
    assert world.w1.api(world.url, path)[0] == 200
    assert world.w2.api(world.url, path)[0] == 404
    for fn, params in (
        (w2.get_inference_profile, {"inferenceProfileIdentifier": arn}),
        (w2.delete_inference_profile, {"inferenceProfileIdentifier": arn}),
        (w2.list_tags_for_resource, {"resourceARN": arn}),
        (w2.tag_resource, {"resourceARN": arn, "tags": [{"key": "x", "value": "y"}]}),
        (w2.untag_resource, {"resourceARN": arn, "tagKeys": ["dept"]}),
    ):
        assert code_of(fn, **params) == "ResourceNotFoundException"
    w2_list = w2.list_inference_profiles(typeEquals="APPLICATION")["inferenceProfileSummaries"]
    assert arn not in [s["inferenceProfileArn"] for s in w2_list]
    # w2 may take the same name: names are unique per workspace
    w2.create_inference_profile(inferenceProfileName=unique, modelSource={"copyFrom": MODEL})
    assert w1.list_tags_for_resource(resourceARN=arn)["tags"] == [
        {"key": "dept", "value": "claims"}
    ]
    assert w1.get_inference_profile(inferenceProfileIdentifier=arn)["inferenceProfileName"] == (
        unique
    )


def test_the_logging_configuration_is_the_workspaces_own(world: World) -> None:
    w1, w2 = world.w1.bedrock, world.w2.bedrock
    before_w2 = world.w2.api(world.url, "/api/logging-configuration")[1]
    w1.put_model_invocation_logging_configuration(
        loggingConfig={
            "cloudWatchConfig": {"logGroupName": "/w1/invocations", "roleArn": ROLE},
            "textDataDeliveryEnabled": False,
        }
    )
    ours_w1 = world.w1.api(world.url, "/api/logging-configuration")[1]
    assert ours_w1["llmtrail"]["logGroupName"] == "/w1/invocations"
    assert (
        w1.get_model_invocation_logging_configuration()["loggingConfig"]
        == (ours_w1["loggingConfig"])
    )
    after_w2 = world.w2.api(world.url, "/api/logging-configuration")[1]
    assert after_w2 == before_w2
    assert (
        w2.get_model_invocation_logging_configuration()["loggingConfig"]
        == (after_w2["loggingConfig"])
    )
    w2.delete_model_invocation_logging_configuration()
    assert world.w2.api(world.url, "/api/logging-configuration")[1]["llmtrail"]["state"] == "off"
    assert world.w1.api(world.url, "/api/logging-configuration")[1] == ours_w1


def test_a_reader_reads_and_is_refused_changes(world: World, unique: str) -> None:
    reader = world.reader.bedrock
    ours = world.reader.api(world.url, "/api/logging-configuration")[1]
    assert reader.get_model_invocation_logging_configuration().get("loggingConfig") == ours.get(
        "loggingConfig"
    )
    assert reader.list_foundation_models()["modelSummaries"]
    listed = reader.list_inference_profiles(typeEquals="APPLICATION")
    assert isinstance(listed["inferenceProfileSummaries"], list)
    for fn, params in (
        (reader.put_model_invocation_logging_configuration, {"loggingConfig": {}}),
        (reader.delete_model_invocation_logging_configuration, {}),
        (
            reader.create_inference_profile,
            {"inferenceProfileName": unique, "modelSource": {"copyFrom": MODEL}},
        ),
    ):
        assert code_of(fn, **params) == "AccessDeniedException"
    assert world.reader.api(world.url, "/api/logging-configuration")[1] == ours
    names = [
        s["inferenceProfileName"]
        for s in reader.list_inference_profiles(typeEquals="APPLICATION")[
            "inferenceProfileSummaries"
        ]
    ]
    assert unique not in names
