"""The logging configuration: Bedrock's body parsed and validated by the limits of botocore's
own service model, answered back in Bedrock's GET shape; the store and the capture cache."""

from __future__ import annotations

import copy
import gzip
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import botocore
import pytest

from llmtrail.errors import ValidationError
from llmtrail.security.logging_config import (
    DEFAULT,
    DEFAULT_LOG_GROUP,
    NAMESPACE,
    OFF,
    LoggingConfig,
    LoggingConfigs,
    LoggingConfigStore,
    parse_put_body,
)
from llmtrail.store.duckdb.database import Database
from llmtrail.store.duckdb.state import DuckDBStateStore
from llmtrail.store.memory import MemoryStateStore

# A body in the documented shape of PutModelInvocationLoggingConfiguration's request syntax
# (docs.aws.amazon.com/bedrock/latest/APIReference/API_PutModelInvocationLoggingConfiguration),
# with values such as an AWS runbook sets.
AWS_BODY: dict[str, Any] = {
    "loggingConfig": {
        "cloudWatchConfig": {
            "logGroupName": "/aws/bedrock/claims-team",
            "roleArn": "arn:aws:iam::123456789012:role/BedrockLoggingRole",
            "largeDataDeliveryS3Config": {"bucketName": "claims-bedrock-large", "keyPrefix": "big"},
        },
        "s3Config": {"bucketName": "claims-bedrock-logs", "keyPrefix": "bedrock/invocations/"},
        "textDataDeliveryEnabled": True,
        "imageDataDeliveryEnabled": False,
        "embeddingDataDeliveryEnabled": True,
        "videoDataDeliveryEnabled": False,
    }
}


def bedrock_model() -> dict[str, Any]:
    """botocore's service model of bedrock: where the limits come from."""
    root = Path(botocore.__file__).parent / "data" / "bedrock"
    (path,) = root.glob("*/service-2.json.gz")
    return json.loads(gzip.decompress(path.read_bytes()))


SHAPES = bedrock_model()["shapes"]


def limits(shape: str) -> tuple[int, int]:
    return SHAPES[shape]["min"], SHAPES[shape]["max"]


def body_with(path: str, value: Any) -> dict[str, Any]:
    """AWS_BODY with the member at dotted ``path`` (under loggingConfig) set, or removed when
    ``value`` is ``...``."""
    body = copy.deepcopy(AWS_BODY)
    node = body["loggingConfig"]
    *parents, last = path.split(".")
    for key in parents:
        node = node[key]
    if value is ...:
        del node[last]
    else:
        node[last] = value
    return body


def refused(body: Any) -> ValidationError:
    with pytest.raises(ValidationError) as caught:
        parse_put_body(body)
    return caught.value


# -- the members are botocore's ---------------------------------------------------------------


def test_members_are_those_of_botocores_model() -> None:
    from llmtrail.security import logging_config as module

    members = SHAPES["LoggingConfig"]["members"]
    assert set(module._CONFIG_MEMBERS) == set(members)
    assert set(module._CLOUDWATCH_MEMBERS) == set(SHAPES["CloudWatchConfig"]["members"])
    assert set(module._S3_MEMBERS) == set(SHAPES["S3Config"]["members"])
    assert set(module.FLAGS) == {m for m, s in members.items() if s["shape"] == "Boolean"}


def test_the_aws_body_parses_and_answers_back_in_bedrocks_get_shape() -> None:
    config = parse_put_body(AWS_BODY).config
    assert config.state == "configured"
    assert config.image_data_delivery_enabled is False
    assert config.log_group_name == "/aws/bedrock/claims-team"
    answer = config.to_response()
    given = AWS_BODY["loggingConfig"]
    # every member given comes back as given; the flag left out (audio) is on
    assert {k: answer["loggingConfig"][k] for k in given} == given
    assert answer["loggingConfig"]["audioDataDeliveryEnabled"] is True
    get_members = SHAPES["GetModelInvocationLoggingConfigurationResponse"]["members"]
    assert "loggingConfig" in get_members
    assert set(answer["loggingConfig"]) <= set(SHAPES["LoggingConfig"]["members"])


def test_a_get_answer_can_be_put_back_unchanged() -> None:
    config = parse_put_body(AWS_BODY).config
    again = parse_put_body(config.to_response()).config
    assert again == config


def test_prefixes_inside_the_one_object_store() -> None:
    config = parse_put_body(AWS_BODY).config
    assert config.objects_prefix == "claims-bedrock-logs/bedrock/invocations/"
    assert config.large_data_prefix == "claims-bedrock-large/big/"
    only_s3 = parse_put_body(body_with("cloudWatchConfig", ...)).config
    assert only_s3.large_data_prefix == only_s3.objects_prefix  # Bedrock writes it beside
    assert only_s3.log_group_name == DEFAULT_LOG_GROUP
    nothing = parse_put_body({"loggingConfig": {}}).config
    assert (nothing.objects_prefix, nothing.large_data_prefix) == ("", "")
    assert DEFAULT.log_group_name == "/aws/bedrock/modelinvocations"


def test_flags_left_out_are_on_and_an_empty_config_delivers_everything() -> None:
    config = parse_put_body({"loggingConfig": {}}).config
    assert config.state == "configured"
    assert all(config.logging_config_json()[f] for f in SHAPES["LoggingConfig"]["members"]
               if SHAPES["LoggingConfig"]["members"][f]["shape"] == "Boolean")  # fmt: skip


# -- each field, each limit ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "shape"),
    [
        ("cloudWatchConfig.logGroupName", "LogGroupName"),
        ("s3Config.bucketName", "BucketName"),
        ("s3Config.keyPrefix", "KeyPrefix"),
        ("cloudWatchConfig.largeDataDeliveryS3Config.bucketName", "BucketName"),
        ("cloudWatchConfig.largeDataDeliveryS3Config.keyPrefix", "KeyPrefix"),
    ],
)
def test_string_lengths_are_botocores(path: str, shape: str) -> None:
    low, high = limits(shape)
    filler = "a" if "bucket" in path else "b"
    assert parse_put_body(body_with(path, filler * high))  # at the limit: accepted
    if low:
        assert parse_put_body(body_with(path, filler * low))
        error = refused(body_with(path, filler * (low - 1)))
        assert error.field == f"loggingConfig.{path}"
        assert f"{low} to {high}" in error.message
    error = refused(body_with(path, filler * (high + 1)))
    assert error.field == f"loggingConfig.{path}"
    assert f"{high + 1} characters" in error.message and str(high) in error.message


def test_role_arn_length_and_pattern_are_bedrocks() -> None:
    path = "cloudWatchConfig.roleArn"
    _low, high = limits("RoleArn")
    prefix = "arn:aws:iam::123456789012:role/"
    assert parse_put_body(body_with(path, prefix + "r" * (high - len(prefix))))
    error = refused(body_with(path, prefix + "r" * (high - len(prefix) + 1)))
    assert (error.field, str(high)) == (f"loggingConfig.{path}", error.message.split()[-2])
    assert parse_put_body(body_with(path, "arn:aws-us-gov:iam::123456789012:role/x"))
    assert parse_put_body(body_with(path, "arn:aws:iam:::role/x"))  # the account is optional
    for bad in ("", "role/x", "arn:aws:iam::123:role/x", "arn:aws:s3:::bucket", "x" + prefix):
        error = refused(body_with(path, bad))
        assert error.field == f"loggingConfig.{path}", bad
        assert SHAPES["RoleArn"]["pattern"] in error.message


def test_required_members_are_botocores() -> None:
    assert SHAPES["CloudWatchConfig"]["required"] == ["logGroupName", "roleArn"]
    for member in SHAPES["CloudWatchConfig"]["required"]:
        error = refused(body_with(f"cloudWatchConfig.{member}", ...))
        assert (error.field, error.message) == (f"loggingConfig.cloudWatchConfig.{member}",
                                                "is required")  # fmt: skip
    for where in ("s3Config", "cloudWatchConfig.largeDataDeliveryS3Config"):
        error = refused(body_with(f"{where}.bucketName", ...))
        assert error.field == f"loggingConfig.{where}.bucketName"
    assert SHAPES["PutModelInvocationLoggingConfigurationRequest"]["required"] == ["loggingConfig"]
    assert refused({}).field == "loggingConfig"


def test_log_group_name_follows_cloudwatch_logs_pattern() -> None:
    path = "cloudWatchConfig.logGroupName"
    assert parse_put_body(body_with(path, "/aws/bedrock/a.b-c_d#1"))
    for bad in ("with space", "ünïcode", "semi;colon", "quote'"):
        assert refused(body_with(path, bad)).field == f"loggingConfig.{path}"


def test_bucket_names_and_key_prefixes_stay_inside_the_object_store() -> None:
    for bad in ("Upper-Case", "-leading", "trailing-", "a..b", "with/slash", "under_score"):
        error = refused(body_with("s3Config.bucketName", bad))
        assert error.field == "loggingConfig.s3Config.bucketName", bad
    for bad in ("../escape", "a/../b", "./x", "back\\slash", "nul\x00"):
        error = refused(body_with("s3Config.keyPrefix", bad))
        assert error.field == "loggingConfig.s3Config.keyPrefix", bad
    ok = parse_put_body(body_with("s3Config.keyPrefix", "/a//b/")).config
    assert ok.objects_prefix == "claims-bedrock-logs/a/b/"


@pytest.mark.parametrize("flag", ["textDataDeliveryEnabled", "audioDataDeliveryEnabled"])
@pytest.mark.parametrize("value", ["true", 1, 0, None, [], {}])
def test_flags_must_be_booleans(flag: str, value: Any) -> None:
    if value is None:  # JSON null: left out, as botocore omits a None member
        assert parse_put_body(body_with(flag, value))
        return
    error = refused(body_with(flag, value))
    assert error.field == f"loggingConfig.{flag}"
    assert "true or false" in error.message


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("cloudWatchConfig", "x"),
        ("s3Config", []),
        ("cloudWatchConfig.largeDataDeliveryS3Config", 3),
        ("cloudWatchConfig.logGroupName", 5),
        ("s3Config.keyPrefix", False),
    ],
)
def test_types_are_named(path: str, value: Any) -> None:
    assert refused(body_with(path, value)).field == f"loggingConfig.{path}"


@pytest.mark.parametrize(
    ("path", "shape"),
    [
        ("retentionInDays", "LoggingConfig"),
        ("cloudWatchConfig.kmsKeyId", "CloudWatchConfig"),
        ("s3Config.region", "S3Config"),
        ("cloudWatchConfig.largeDataDeliveryS3Config.acl", "S3Config"),
    ],
)
def test_unknown_members_are_refused(path: str, shape: str) -> None:
    error = refused(body_with(path, 1))
    assert error.field == f"loggingConfig.{path}"
    assert f"not a member of {shape}" in error.message


def test_the_body_itself() -> None:
    assert refused([]).field == "body"
    assert refused({"loggingConfig": {}, "redaction": {}}).field == "body.redaction"
    assert refused({"loggingConfig": None}).field == "loggingConfig"
    assert refused({"loggingConfig": {}, "allowNoLog": "no"}).field == "allowNoLog"
    assert parse_put_body({"loggingConfig": {}, "allowNoLog": False}).allow_no_log is False
    assert parse_put_body({"loggingConfig": {}}).allow_no_log is None


# -- the three states ---------------------------------------------------------------------------


def test_default_off_and_configured_answers() -> None:
    answer = DEFAULT.to_response()
    assert answer["llmtrail"]["isDefault"] is True and answer["llmtrail"]["state"] == "default"
    assert "every body is delivered" in answer["llmtrail"]["meaning"]
    assert all(answer["loggingConfig"][f] for f in answer["loggingConfig"])
    off = OFF.to_response()
    assert "loggingConfig" not in off  # as Bedrock answers after a delete
    assert off["llmtrail"]["bodiesDelivered"] is False
    assert "no request or response body" in off["llmtrail"]["meaning"]
    assert not OFF.delivers_bodies and DEFAULT.delivers_bodies


# -- the store and the cache ----------------------------------------------------------------------


@pytest.fixture(params=["memory", "duckdb"])
def state(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    if request.param == "memory":
        yield MemoryStateStore()
        return
    store = DuckDBStateStore(Database(tmp_path / "llmtrail.duckdb"))
    yield store
    store.close()


def test_store_keeps_each_workspace_apart(state: Any) -> None:
    store = LoggingConfigStore(state)
    assert store.get("a") == DEFAULT
    put = store.put("a", parse_put_body(AWS_BODY), actor="key/k1")
    assert store.get("a") == put and store.get("a").updated_by == "key/k1"
    assert store.get("b") == DEFAULT
    assert state.get(NAMESPACE, "a")["state"] == "configured"
    assert store.delete("b").state == "off"
    assert store.get("b") == OFF and store.get("a") == put
    assert store.reset("b") and store.get("b") == DEFAULT


def test_allow_no_log_is_kept_by_a_put_that_leaves_it_out(state: Any) -> None:
    store = LoggingConfigStore(state)
    store.put("w", parse_put_body({"loggingConfig": {}, "allowNoLog": False}))
    assert store.get("w").allow_no_log is False
    store.put("w", parse_put_body(AWS_BODY))  # an AWS runbook's body: no allowNoLog
    assert store.get("w").allow_no_log is False
    assert store.delete("w").allow_no_log is False
    store.put("w", parse_put_body({"loggingConfig": {}, "allowNoLog": True}))
    assert store.get("w").allow_no_log is True


def test_a_value_not_written_by_the_store_is_refused(state: Any) -> None:
    store = LoggingConfigStore(state)
    state.put(NAMESPACE, "w", {"state": "maybe"})
    with pytest.raises(ValidationError):
        store.get("w")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_cache_rereads_the_store_at_most_once_a_second(state: Any) -> None:
    clock = Clock()
    writer = LoggingConfigStore(state)  # another server sharing the store
    configs = LoggingConfigs(LoggingConfigStore(state), clock=clock)
    assert configs.for_workspace("w") == DEFAULT
    writer.delete("w")
    clock.now += 0.75
    assert configs.for_workspace("w") == DEFAULT  # within the second: the cached value
    clock.now += 0.25
    assert configs.for_workspace("w") == OFF  # a second later: the change applies
    writer.put("w", parse_put_body(AWS_BODY))
    configs.invalidate("w")  # this server's own change applies at once
    assert configs.for_workspace("w").state == "configured"


class FailingState(MemoryStateStore):
    def __init__(self) -> None:
        super().__init__()
        self.failing = False

    def get(self, namespace: str, key: str) -> Any:
        if self.failing:
            raise OSError("store unreachable")
        return super().get(namespace, key)


def test_a_failed_read_keeps_the_last_configuration_or_withholds_bodies(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock, state = Clock(), FailingState()
    LoggingConfigStore(state).put("known", parse_put_body(AWS_BODY))
    configs = LoggingConfigs(LoggingConfigStore(state), clock=clock)
    known = configs.for_workspace("known")
    state.failing = True
    clock.now += 5
    assert configs.for_workspace("known") == known
    assert configs.for_workspace("never-read") == OFF  # fail closed for bodies
    assert "store unreachable" in caplog.text
    state.failing = False
    clock.now += 1
    assert configs.for_workspace("never-read") == DEFAULT


def test_stored_form_round_trips() -> None:
    config = parse_put_body(AWS_BODY).config
    for value in (config, OFF, replace(OFF, allow_no_log=False)):
        assert LoggingConfig.from_state(value.to_state()) == value
    assert LoggingConfig.from_state(None) == DEFAULT
