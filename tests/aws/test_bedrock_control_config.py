"""boto3 ``bedrock`` on what a server's configuration decides: the model-invocation logging
configuration (which changes what every later call records, so this module has a server of
its own) and ``ListFoundationModels`` over routes of every kind. Each answer is compared with
llmtrail's own API, and each change is shown by what the next gateway call records."""

from __future__ import annotations

import fnmatch
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from llmtrail.model_ids import REGION_PREFIXES
from tests.aws.conftest import ACCOUNT, REGION, aws_client
from tests.harness import ServerProcess, call

ROLE = f"arn:aws:iam::{ACCOUNT}:role/BedrockLogging"
# (glob, provider) routes and aliases of this module's server: every kind ListFoundationModels
# expands (Bedrock ids, OpenAI ids, sim ids under their prefix) and one it lists as is.
GLOBS = (("sim.*", "sim"), ("anthropic.claude-3*", "bedrock"), ("gpt-4o*", "openai"))
ALIASES = {"claims-model": "sim/claims"}
CONFIG = (
    f'region = "{REGION}"\naccount_id = "{ACCOUNT}"\n'
    + "".join(f'[[routes]]\nmatch = "{m}"\nprovider = "{p}"\n' for m, p in GLOBS)
    + '[[routes]]\nmatch = "sim/*"\nprovider = "sim"\n'
    + "[aliases]\n"
    + "".join(f'"{a}" = "{t}"\n' for a, t in ALIASES.items())
)
MESSAGES = [{"role": "user", "content": [{"text": "the secret text of this call"}]}]


@dataclass
class Server:
    proc: ServerProcess
    initial_aws: dict[str, Any]  # GetModelInvocationLoggingConfiguration before any change
    initial_api: dict[str, Any]  # GET /api/logging-configuration then

    @property
    def url(self) -> str:
        return self.proc.url

    def api(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        return call(self.url, method, path, body)

    def config(self) -> dict[str, Any]:
        status, body = self.api("GET", "/api/logging-configuration")
        assert status == 200, body
        return dict(body)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    data: Path = tmp_path_factory.mktemp("bedrock-config") / "data"
    with ServerProcess(data, config=CONFIG) as proc:
        client = aws_client(proc.url, "bedrock")
        try:
            first = client.get_model_invocation_logging_configuration()
        finally:
            client.close()
        first.pop("ResponseMetadata")
        yield Server(proc, first, call(proc.url, "GET", "/api/logging-configuration")[1])


@pytest.fixture(scope="module")
def bedrock(server: Server) -> Iterator[Any]:
    client = aws_client(server.url, "bedrock")
    yield client
    client.close()


@pytest.fixture(scope="module")
def unchecked(server: Server) -> Iterator[Any]:
    """A client that sends what botocore would refuse, so the server's checks answer."""
    client = boto3.client(
        "bedrock",
        endpoint_url=server.url,
        region_name=REGION,
        aws_access_key_id="AKIAEXAMPLEOPENMODE",
        aws_secret_access_key="not-checked-in-open-mode",
        config=Config(retries={"max_attempts": 1}, parameter_validation=False),
    )
    yield client
    client.close()


@pytest.fixture(scope="module")
def runtime(server: Server) -> Iterator[Any]:
    client = aws_client(server.url, "bedrock-runtime")
    yield client
    client.close()


def aws_config(bedrock: Any) -> dict[str, Any]:
    answer = dict(bedrock.get_model_invocation_logging_configuration())
    answer.pop("ResponseMetadata")
    return answer


def converse(server: Server, runtime: Any, model: str = "sim/fast") -> dict[str, Any]:
    """A call through the gateway, and its record as llmtrail stored it."""
    reply = runtime.converse(modelId=model, messages=MESSAGES)
    return server.proc.wait_for_record(reply["ResponseMetadata"]["RequestId"])


def has_bodies(record: dict[str, Any]) -> bool:
    return "inputBodyJson" in record["input"] and "outputBodyJson" in record["output"]


# -- the logging configuration -----------------------------------------------------------------
def test_with_nothing_stored_both_apis_answer_the_default(server: Server) -> None:
    assert server.initial_api["llmtrail"]["state"] == "default"
    assert server.initial_aws == {"loggingConfig": server.initial_api["loggingConfig"]}
    assert all(server.initial_aws["loggingConfig"].values())  # every body delivered


def test_a_boto3_put_is_llmtrails_configuration(server: Server, bedrock: Any) -> None:
    wanted = {
        "cloudWatchConfig": {
            "logGroupName": "/teams/claims/invocations",
            "roleArn": ROLE,
            "largeDataDeliveryS3Config": {"bucketName": "claims-large", "keyPrefix": "big/"},
        },
        "s3Config": {"bucketName": "claims-logs", "keyPrefix": "bedrock"},
        "textDataDeliveryEnabled": True,
        "imageDataDeliveryEnabled": False,
        "embeddingDataDeliveryEnabled": True,
    }
    answer = bedrock.put_model_invocation_logging_configuration(loggingConfig=wanted)
    assert answer["ResponseMetadata"]["HTTPStatusCode"] == 200
    ours = server.config()
    assert ours["llmtrail"]["state"] == "configured"
    assert ours["llmtrail"]["updatedBy"] == "anonymous (open mode)"
    assert aws_config(bedrock) == {"loggingConfig": ours["loggingConfig"]}
    # what was put, and the flags it left out on (as Bedrock's console and Terraform do)
    assert ours["loggingConfig"] == {
        **wanted,
        "videoDataDeliveryEnabled": True,
        "audioDataDeliveryEnabled": True,
    }


def test_a_put_through_llmtrails_api_is_read_by_boto3(server: Server, bedrock: Any) -> None:
    body = {
        "loggingConfig": {
            "s3Config": {"bucketName": "audit-logs"},
            "textDataDeliveryEnabled": True,
            "videoDataDeliveryEnabled": False,
        }
    }
    status, answer = server.api("PUT", "/api/logging-configuration", body)
    assert status == 200, answer
    assert aws_config(bedrock) == {"loggingConfig": server.config()["loggingConfig"]}
    assert aws_config(bedrock)["loggingConfig"]["videoDataDeliveryEnabled"] is False


def test_an_aws_put_keeps_the_workspaces_opt_out_setting(server: Server, bedrock: Any) -> None:
    body = {"loggingConfig": {"textDataDeliveryEnabled": True}, "allowNoLog": False}
    assert server.api("PUT", "/api/logging-configuration", body)[0] == 200
    bedrock.put_model_invocation_logging_configuration(
        loggingConfig={"textDataDeliveryEnabled": True, "imageDataDeliveryEnabled": False}
    )
    ours = server.config()
    assert ours["allowNoLog"] is False
    assert ours["loggingConfig"]["imageDataDeliveryEnabled"] is False


@pytest.mark.parametrize(
    ("config", "where"),
    [
        ({"cloudWatchConfig": {"logGroupName": "no spaces", "roleArn": ROLE}}, "logGroupName"),
        ({"cloudWatchConfig": {"logGroupName": "/ok", "roleArn": "not-a-role"}}, "roleArn"),
        ({"cloudWatchConfig": {"logGroupName": "", "roleArn": ROLE}}, "logGroupName"),
        ({"cloudWatchConfig": {"logGroupName": "/ok"}}, "roleArn"),
        ({"s3Config": {"bucketName": "Not_A_Bucket"}}, "bucketName"),
        ({"s3Config": {"bucketName": "fine-bucket", "keyPrefix": "a/../b"}}, "keyPrefix"),
        ({"textDataDeliveryEnabled": "yes"}, "textDataDeliveryEnabled"),
    ],
)
def test_a_bad_configuration_is_refused_and_nothing_changes(
    server: Server, unchecked: Any, config: dict[str, Any], where: str
) -> None:
    before = server.config()
    with pytest.raises(ClientError) as caught:
        unchecked.put_model_invocation_logging_configuration(loggingConfig=config)
    error = caught.value.response["Error"]
    assert error["Code"] in ("ValidationException", "SerializationException")
    assert where in error["Message"]
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert server.config() == before


def test_text_delivery_off_records_the_next_call_without_bodies(
    server: Server, bedrock: Any, runtime: Any
) -> None:
    bedrock.put_model_invocation_logging_configuration(
        loggingConfig={"textDataDeliveryEnabled": False}
    )
    assert aws_config(bedrock)["loggingConfig"] == server.config()["loggingConfig"]
    withheld = converse(server, runtime)
    assert not has_bodies(withheld)
    assert withheld["delivery"]["withheld"] == ["text"]
    assert withheld["input"]["inputTokenCount"] > 0 and withheld["output"]["outputTokenCount"] > 0
    bedrock.put_model_invocation_logging_configuration(
        loggingConfig={"textDataDeliveryEnabled": True}
    )
    delivered = converse(server, runtime)
    assert has_bodies(delivered) and "delivery" not in delivered
    assert "the secret text of this call" in str(delivered["input"]["inputBodyJson"])


def test_delete_withholds_every_body_and_keeps_the_metadata(
    server: Server, bedrock: Any, runtime: Any
) -> None:
    bedrock.put_model_invocation_logging_configuration(
        loggingConfig={"textDataDeliveryEnabled": True}
    )
    answer = bedrock.delete_model_invocation_logging_configuration()
    assert answer["ResponseMetadata"]["HTTPStatusCode"] == 200
    ours = server.config()
    assert ours["llmtrail"]["state"] == "off" and "loggingConfig" not in ours
    assert aws_config(bedrock) == {}  # as Bedrock answers once deleted
    record = converse(server, runtime)
    assert not has_bodies(record)
    assert record["delivery"]["reason"] == "logging-off"
    assert record["modelId"] == "sim/fast" and record["output"]["outputTokenCount"] > 0
    bedrock.put_model_invocation_logging_configuration(
        loggingConfig={"textDataDeliveryEnabled": True}
    )
    assert has_bodies(converse(server, runtime))


def test_the_configured_log_group_is_what_queries_name(
    server: Server, bedrock: Any, unique: str
) -> None:
    group = f"/teams/{unique}/invocations"
    query = {"queryString": f"SOURCE '{group}' | stats count(*) as n", "since": "1d"}
    status, refused = server.api("POST", "/api/query", query)
    assert status == 400 and group in str(refused)
    bedrock.put_model_invocation_logging_configuration(
        loggingConfig={"cloudWatchConfig": {"logGroupName": group, "roleArn": ROLE}}
    )
    status, answer = server.api("POST", "/api/query", query)
    assert status == 200, answer
    everything = {"queryString": "stats count(*) as n", "since": "1d"}
    assert answer["results"] == server.api("POST", "/api/query", everything)[1]["results"]


# -- profiles of routed models -----------------------------------------------------------------
def test_a_profile_made_with_boto3_attributes_gateway_calls(
    server: Server, bedrock: Any, runtime: Any, unique: str
) -> None:
    model = f"arn:aws:bedrock:{REGION}::foundation-model/sim.claims"
    arn = bedrock.create_inference_profile(
        inferenceProfileName=unique,
        modelSource={"copyFrom": model},
        tags=[{"key": "dept", "value": "claims"}],
    )["inferenceProfileArn"]
    status, ours = server.api("GET", f"/api/profiles/{quote(arn, safe='')}")
    assert status == 200 and ours["models"] == [{"modelArn": model}]
    record = converse(server, runtime, arn)
    tags = bedrock.list_tags_for_resource(resourceARN=arn)["tags"]
    assert record["resolvedModelId"] == "sim.claims"
    assert record["inferenceProfile"] == {
        "arn": arn,
        "name": unique,
        "tags": {t["key"]: t["value"] for t in tags},
    }


# -- foundation models -------------------------------------------------------------------------
def expected_models(server: Server) -> set[str]:
    """What ListFoundationModels should list, from llmtrail's own API: ``/v1/models``' literal
    ids (aliases and glob-free routes), and per glob route the models ``/api/prices`` prices
    for its provider that the glob matches (Bedrock's ``global.``/``regional.`` price ids name
    their foundation model; sim ids are named under the ``sim/`` prefix its route strips)."""
    listed = server.proc.get("/v1/models")["data"]
    out = {m["id"] for m in listed if not set("*?[") & set(m["id"])}
    for glob, provider in (*GLOBS, ("sim/*", "sim")):
        status, prices = server.api("GET", f"/api/prices?provider={provider}")
        assert status == 200, prices
        for price in prices["prices"]:
            model = price["model"]
            head, _, rest = model.partition(".")
            if provider == "bedrock" and head in {"regional", *REGION_PREFIXES} and "." in rest:
                model = rest
            for candidate in (model, f"{provider}/{model}"):
                if fnmatch.fnmatchcase(candidate, glob):
                    out.add(candidate)
                    break
    return out


def test_foundation_models_are_the_routes_and_the_priced_models(
    server: Server, bedrock: Any, runtime: Any
) -> None:
    summaries = bedrock.list_foundation_models()["modelSummaries"]
    ids = [s["modelId"] for s in summaries]
    assert len(ids) == len(set(ids))
    assert set(ids) == expected_models(server)
    assert set(ALIASES) <= set(ids)
    assert any(i.startswith("anthropic.claude-3") for i in ids)
    assert any(i.startswith("gpt-4o") for i in ids)
    for s in summaries:
        assert s["modelArn"] == f"arn:aws:bedrock:{REGION}::foundation-model/{s['modelId']}"
        assert s["inferenceTypesSupported"] == ["ON_DEMAND"]
        assert s["modelLifecycle"] == {"status": "ACTIVE"}
        assert s["responseStreamingSupported"] == (s["outputModalities"] == ["TEXT"])
    by_id = {s["modelId"]: s for s in summaries}
    assert by_id["anthropic.claude-3-haiku-20240307-v1:0"]["providerName"] == "Anthropic"
    assert by_id["sim/embed"]["outputModalities"] == ["EMBEDDING"]
    record = converse(server, runtime, "claims-model")  # a listed model can be called
    assert record["resolvedModelId"] == "claims"


@pytest.mark.parametrize(
    ("params", "keep"),
    [
        ({"byProvider": "anthropic"}, lambda s: s["providerName"] == "Anthropic"),
        ({"byProvider": "OpenAI"}, lambda s: s["providerName"] == "OpenAI"),
        ({"byProvider": "sim"}, lambda s: s["providerName"] == "llmtrail sim"),
        ({"byOutputModality": "EMBEDDING"}, lambda s: s["outputModalities"] == ["EMBEDDING"]),
        ({"byOutputModality": "TEXT"}, lambda s: s["outputModalities"] == ["TEXT"]),
        ({"byInferenceType": "ON_DEMAND"}, lambda s: True),
        ({"byInferenceType": "PROVISIONED"}, lambda s: False),
        ({"byCustomizationType": "FINE_TUNING"}, lambda s: False),
        ({"byProvider": "anthropic", "byOutputModality": "EMBEDDING"}, lambda s: False),
    ],
)
def test_foundation_model_filters(bedrock: Any, params: dict[str, str], keep: Any) -> None:
    everything = bedrock.list_foundation_models()["modelSummaries"]
    filtered = bedrock.list_foundation_models(**params)["modelSummaries"]
    assert filtered == [s for s in everything if keep(s)]


def test_foundation_model_filters_are_validated(unchecked: Any) -> None:
    for params in (
        {"byOutputModality": "VIDEO"},
        {"byInferenceType": "SPOT"},
        {"byProvider": "!!!"},
    ):
        with pytest.raises(ClientError) as caught:
            unchecked.list_foundation_models(**params)
        assert caught.value.response["Error"]["Code"] == "ValidationException"
        assert next(iter(params)) in caught.value.response["Error"]["Message"]
