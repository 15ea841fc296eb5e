"""The AWS protocol core on its own: one operation per wire protocol, registered by this
test in the real router of a real app served on 127.0.0.1, called with the official boto3
clients — JSON 1.1 (``logs``), Smithy RPC v2 CBOR (``cloudwatch``) and rest-json
(``bedrock``): parameters reach the handler typed and validated, answers come back shaped
(timestamps, numbers, decoded labels), and every error is botocore's ``ClientError`` with
the code AWS would send."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import closing
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from llmtrail.config import Settings
from llmtrail.security.principal import Permission
from llmtrail.server.app import create_app
from llmtrail.server.aws.operations import OPERATIONS, AwsCall, AwsError, operation
from llmtrail.server.runtime import Runtime
from tests.aws.conftest import aws_client
from tests.served import Served

SEEN: list[AwsCall] = []


async def metric_filter_trial(call: AwsCall) -> dict[str, Any]:
    SEEN.append(call)
    pattern = call.params["filterPattern"]
    if pattern == "explode":
        raise RuntimeError("a handler fault")
    if pattern == "off-shape":
        return {"matches": [], "notAMember": 1}
    if pattern == "missing":
        raise AwsError("ResourceNotFoundException", "no such pattern")
    return {
        "matches": [
            {"eventNumber": i, "eventMessage": m, "extractedValues": {"$.n": str(len(m))}}
            for i, m in enumerate(call.params["logEventMessages"], start=1)
            if pattern in m
        ]
    }


async def insight_rule_report(call: AwsCall) -> dict[str, Any]:
    SEEN.append(call)
    if call.params["RuleName"] == "gone":
        raise AwsError("ResourceNotFound", "no rule named gone")
    start, end = call.params["StartTime"], call.params["EndTime"]
    return {
        "AggregateValue": Decimal("2.5"),
        "ApproximateUniqueCount": 3,
        "MetricDatapoints": [{"Timestamp": start, "Sum": 1.5}, {"Timestamp": end, "Sum": 2}],
    }


async def get_custom_model(call: AwsCall) -> dict[str, Any]:
    SEEN.append(call)
    return {
        "modelArn": call.params["modelIdentifier"],
        "modelName": "echo",
        "jobArn": "arn:aws:bedrock:us-east-1:123456789012:model-customization-job/x",
        "baseModelArn": "arn:aws:bedrock:us-east-1::foundation-model/base",
        "creationTime": datetime(2026, 12, 6, 13, 30, 15, tzinfo=UTC),
    }


TEST_OPERATIONS = (
    ("logs", "TestMetricFilter", Permission.READ, metric_filter_trial),
    ("monitoring", "GetInsightRuleReport", Permission.READ, insight_rule_report),
    ("bedrock", "GetCustomModel", Permission.READ, get_custom_model),
)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    added = []
    for service, name, permission, handler in TEST_OPERATIONS:
        if (service, name) not in OPERATIONS:
            operation(service, name, permission)(handler)
            added.append((service, name))
    runtime = Runtime(Settings(data_dir=Path(tmp_path_factory.mktemp("core")) / "d"))
    try:
        with Served(create_app(runtime, lifespan=False, access=True)) as server:
            yield server
    finally:
        for key in added:
            del OPERATIONS[key]
        runtime.close()


def client(served: Served, service: str, validate: bool = True) -> Any:
    if validate:
        return aws_client(served.url, service)
    return boto3.client(  # without botocore's own parameter checks, as other SDKs send
        service,
        endpoint_url=served.url,
        region_name="us-east-1",
        aws_access_key_id="AKIAEXAMPLEOPENMODE",
        aws_secret_access_key="not-checked-in-open-mode",
        config=Config(retries={"max_attempts": 1}, parameter_validation=False),
    )


def test_json_protocol_round_trip(served: Served) -> None:
    with closing(client(served, "logs")) as logs:
        messages = ["a cat", "a dog", "cat food"]
        answer = logs.test_metric_filter(filterPattern="cat", logEventMessages=messages)
        assert answer["matches"] == [
            {"eventNumber": 1, "eventMessage": "a cat", "extractedValues": {"$.n": "5"}},
            {"eventNumber": 3, "eventMessage": "cat food", "extractedValues": {"$.n": "8"}},
        ]
        assert SEEN[-1].params == {"filterPattern": "cat", "logEventMessages": messages}
        assert SEEN[-1].account == "000000000000" and SEEN[-1].workspace == "default"
        assert len(answer["ResponseMetadata"]["RequestId"]) == 36


def test_json_errors_in_aws_shape(served: Served) -> None:
    with closing(client(served, "logs")) as logs:
        with pytest.raises(ClientError) as missing:
            logs.test_metric_filter(filterPattern="missing", logEventMessages=["x"])
        assert missing.value.response["Error"]["Code"] == "ResourceNotFoundException"
        assert missing.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
        assert isinstance(missing.value, logs.exceptions.ResourceNotFoundException)
        with pytest.raises(ClientError) as unknown:
            logs.create_export_task(logGroupName="g", fromTime=0, to=1, destination="b")
        assert unknown.value.response["Error"]["Code"] == "UnknownOperationException"


def test_server_side_validation_names_the_member_and_the_limit(served: Served) -> None:
    with closing(client(served, "logs", validate=False)) as logs:
        with pytest.raises(ClientError) as refused:
            logs.test_metric_filter(filterPattern="x" * 1025, logEventMessages=[])
        error = refused.value.response["Error"]
        assert error["Code"] == "InvalidParameterException"
        assert error["Message"].startswith("2 validation errors detected: ")
        assert (
            "at 'filterPattern' failed to satisfy constraint: Member must have length less "
            in (error["Message"])
        )
        assert (
            "at 'logEventMessages' failed to satisfy constraint: Member must have length "
            in (error["Message"])
        )
        with pytest.raises(ClientError) as typed:
            logs.test_metric_filter(filterPattern=7, logEventMessages=["x"])
        assert typed.value.response["Error"]["Code"] == "SerializationException"


def test_raw_json_requests_are_refused_clearly(served: Served) -> None:
    for body in (b"{not json", b"[1, 2]"):
        request = urllib.request.Request(
            served.url + "/",
            data=body,
            headers={
                "x-amz-target": "Logs_20140328.TestMetricFilter",
                "content-type": "application/x-amz-json-1.1",
            },
        )
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=10)
        answer = json.loads(refused.value.read())
        assert refused.value.code == 400 and answer["__type"] == "SerializationException"


def test_handler_faults_are_internal_failures_and_the_server_goes_on(served: Served) -> None:
    with closing(client(served, "logs")) as logs:
        for pattern in ("explode", "off-shape"):
            with pytest.raises(ClientError) as failed:
                logs.test_metric_filter(filterPattern=pattern, logEventMessages=["x"])
            assert failed.value.response["Error"]["Code"] == "InternalFailure"
            assert failed.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500
        assert logs.test_metric_filter(filterPattern="x", logEventMessages=["x"])["matches"]


def test_cbor_protocol_round_trip_with_timestamps(served: Served) -> None:
    with closing(client(served, "cloudwatch")) as cloudwatch:
        start = datetime(2026, 12, 1, 0, 0, tzinfo=UTC)
        end = datetime(2026, 12, 6, 12, 30, 15, 250000, tzinfo=UTC)
        answer = cloudwatch.get_insight_rule_report(
            RuleName="r", StartTime=start, EndTime=end, Period=60
        )
        assert SEEN[-1].params == {
            "RuleName": "r",
            "StartTime": start,
            "EndTime": end,
            "Period": 60,
        }
        assert answer["AggregateValue"] == 2.5 and answer["ApproximateUniqueCount"] == 3
        assert [p["Timestamp"] for p in answer["MetricDatapoints"]] == [start, end]
        assert [p["Sum"] for p in answer["MetricDatapoints"]] == [1.5, 2.0]


def test_cbor_errors_keep_cloudwatch_codes(served: Served) -> None:
    with closing(client(served, "cloudwatch")) as cloudwatch:
        now = datetime.now(UTC)
        with pytest.raises(ClientError) as gone:
            cloudwatch.get_insight_rule_report(
                RuleName="gone", StartTime=now, EndTime=now, Period=60
            )
        assert gone.value.response["Error"]["Code"] == "ResourceNotFound"
        assert gone.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
        assert isinstance(gone.value, cloudwatch.exceptions.ResourceNotFound)
        with closing(client(served, "cloudwatch", validate=False)) as unchecked:
            with pytest.raises(ClientError) as bad:
                unchecked.get_insight_rule_report(
                    RuleName="r", StartTime=now, EndTime=now, Period=0, OrderBy="x" * 300
                )
            assert bad.value.response["Error"]["Code"] == "ValidationError"
            assert "at 'Period'" in bad.value.response["Error"]["Message"]
            with pytest.raises(ClientError) as unknown:
                cloudwatch.enable_alarm_actions(AlarmNames=["a"])
            assert unknown.value.response["Error"]["Code"] == "UnknownOperationException"


def test_rest_json_labels_are_decoded_and_timestamps_shaped(served: Served) -> None:
    with closing(client(served, "bedrock")) as bedrock:
        arn = "arn:aws:bedrock:us-east-1:123456789012:custom-model/base:1/abc def"
        answer = bedrock.get_custom_model(modelIdentifier=arn)
        assert SEEN[-1].params == {"modelIdentifier": arn}
        assert answer["modelArn"] == arn
        assert answer["creationTime"] == datetime(2026, 12, 6, 13, 30, 15, tzinfo=UTC)


def test_rest_json_paths_it_does_not_serve_fall_through(served: Served) -> None:
    with closing(client(served, "bedrock")) as bedrock:
        with pytest.raises(ClientError) as missing:
            bedrock.get_model_customization_job(jobIdentifier="j")
        assert missing.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
