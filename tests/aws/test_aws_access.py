"""The AWS-shaped APIs on a server that needs keys: boto3 signs with key pairs llmtrail
issued, and the key's role and workspace apply — a reader without ``bodies`` is refused log
messages, changes need ``manage`` and are in the audit log, each workspace sees only its
own records and objects — while unsigned or badly signed requests get AWS's error shapes,
on each protocol (JSON 1.1 for ``logs``, CBOR for ``cloudwatch``, rest-json for
``bedrock``)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import closing
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import openai
import pytest
from botocore import UNSIGNED
from botocore.config import Config
from botocore.exceptions import ClientError

from tests.aws.conftest import aws_client
from tests.harness import ServerProcess
from tests.security.test_front_door import auth, call, create_key

CONFIG = 'account_id = "123456789012"\n[[routes]]\nmatch = "sim/*"\nprovider = "sim"\n'
GROUP = "/aws/bedrock/modelinvocations"


class World:
    def __init__(self, server: ServerProcess) -> None:
        self.server = server
        self.url = server.url
        self.admin = str(create_key(self.url, None, role="admin")["key"])
        self.keys: dict[str, dict[str, Any]] = {}
        for name, spec in {
            "acme-admin": {"role": "admin", "workspace": "acme"},
            "acme-reader": {"role": "reader", "workspace": "acme"},
            "acme-bodies": {"role": "reader", "workspace": "acme", "bodies": True},
            "acme-gateway": {"role": "gateway", "workspace": "acme"},
            "default-bodies": {"role": "reader", "bodies": True},
        }.items():
            self.keys[name] = create_key(self.url, self.admin, aws=True, **spec)
        self.acme_ids = self._traffic("acme-gateway", "acme")
        self.default_ids = self._traffic(None, "default")

    def _traffic(self, key: str | None, workspace: str) -> list[str]:
        if key is None:
            client = openai.OpenAI(base_url=self.url + "/v1", api_key=self.admin, max_retries=0)
            with client:
                ids = [
                    client.chat.completions.with_raw_response.create(
                        model="sim/fast", messages=[{"role": "user", "content": f"{workspace} {i}"}]
                    ).headers["x-llmtrail-request-id"]
                    for i in range(3)
                ]
        else:
            runtime = self.client("bedrock-runtime", key)
            ids = [
                runtime.converse(
                    modelId="sim/tiny",
                    messages=[{"role": "user", "content": [{"text": f"{workspace} {i}"}]}],
                )["ResponseMetadata"]["RequestId"]
                for i in range(3)
            ]
            runtime.close()
        reader = self.admin if key is None else str(self.keys["acme-admin"]["key"])
        for request_id in ids:  # stored before the tests read
            deadline = time.monotonic() + 20
            while call(self.url + f"/api/records/{request_id}", headers=auth(reader))[0] != 200:
                assert time.monotonic() < deadline, request_id
                time.sleep(0.05)
        return ids

    def client(self, service: str, key: str) -> Any:
        pair = self.keys[key]
        return aws_client(
            self.url,
            service,
            aws_access_key_id=pair["awsAccessKeyId"],
            aws_secret_access_key=pair["awsSecretAccessKey"],
        )


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    data = tmp_path_factory.mktemp("aws-access") / "data"
    with ServerProcess(data, config=CONFIG) as server:
        yield World(server)


def _unsigned(url: str, service: str) -> Any:
    return boto3.client(
        service,
        endpoint_url=url,
        region_name="us-east-1",
        config=Config(signature_version=UNSIGNED, retries={"max_attempts": 1}),
    )


def _code(caught: pytest.ExceptionInfo[ClientError]) -> tuple[str, int]:
    response = caught.value.response
    return response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"]


@pytest.mark.parametrize(
    ("service", "operation", "params"),
    [
        ("logs", "describe_log_groups", {}),
        ("cloudwatch", "list_dashboards", {}),
        ("bedrock", "list_inference_profiles", {}),
        (
            "ce",
            "get_cost_and_usage",
            {
                "TimePeriod": {"Start": "2026-11-01", "End": "2026-12-01"},
                "Granularity": "MONTHLY",
                "Metrics": ["UnblendedCost"],
            },
        ),
    ],
)
def test_unsigned_and_badly_signed_requests_get_aws_errors(
    world: World, service: str, operation: str, params: dict[str, Any]
) -> None:
    with pytest.raises(ClientError) as unsigned, closing(_unsigned(world.url, service)) as client:
        getattr(client, operation)(**params)
    assert _code(unsigned) == ("MissingAuthenticationTokenException", 403)
    pair = world.keys["acme-admin"]
    wrong = aws_client(
        world.url, service, aws_access_key_id=pair["awsAccessKeyId"], aws_secret_access_key="x" * 40
    )
    with closing(wrong), pytest.raises(ClientError) as bad:
        getattr(wrong, operation)(**params)
    assert _code(bad) == ("InvalidSignatureException", 403)
    stranger = aws_client(world.url, service, aws_access_key_id="AKIAIOSFODNN7EXAMPLE")
    with closing(stranger), pytest.raises(ClientError) as unknown:
        getattr(stranger, operation)(**params)
    assert _code(unknown) == ("UnrecognizedClientException", 403)
    # the issued pair itself is let in
    with closing(world.client(service, "acme-admin")) as issued:
        assert getattr(issued, operation)(**params)


def test_reader_without_bodies_is_refused_messages_but_reads_metadata(world: World) -> None:
    with closing(world.client("logs", "acme-reader")) as logs:
        groups = logs.describe_log_groups()["logGroups"]
        assert [g["logGroupName"] for g in groups] == [GROUP]
        now = datetime.now(UTC)
        window = {"startTime": int((now - timedelta(hours=1)).timestamp() * 1000)}
        with pytest.raises(ClientError) as refused:
            logs.filter_log_events(logGroupName=GROUP, **window)
        assert _code(refused) == ("AccessDeniedException", 403)
        with pytest.raises(ClientError) as query_refused:
            logs.start_query(
                logGroupName=GROUP,
                startTime=int((now - timedelta(hours=1)).timestamp()),
                endTime=int(now.timestamp()) + 60,
                queryString="fields input.inputBodyJson",
            )
        assert _code(query_refused)[0] == "AccessDeniedException"


def test_each_workspace_reads_only_its_own_log_events(world: World) -> None:
    start = int((datetime.now(UTC) - timedelta(hours=1)).timestamp() * 1000)
    for key, own, other in (
        ("acme-bodies", world.acme_ids, world.default_ids),
        ("default-bodies", world.default_ids, world.acme_ids),
    ):
        with closing(world.client("logs", key)) as logs:
            events = logs.filter_log_events(logGroupName=GROUP, startTime=start)["events"]
        seen = {json.loads(e["message"])["requestId"] for e in events}
        assert seen == set(own), key
        assert not seen & set(other)


def test_changes_need_manage_and_are_audited(world: World) -> None:
    body = json.dumps({"widgets": []})
    reader = world.client("cloudwatch", "acme-reader")
    with closing(reader), pytest.raises(ClientError) as refused:
        reader.put_dashboard(DashboardName="acme-board", DashboardBody=body)
    assert _code(refused) == ("AccessDeniedException", 403)
    with closing(world.client("cloudwatch", "acme-admin")) as admin:
        admin.put_dashboard(DashboardName="acme-board", DashboardBody=body)
        names = [d["DashboardName"] for d in admin.list_dashboards()["DashboardEntries"]]
    assert "acme-board" in names
    # another workspace does not see it, and cannot read it by name
    with closing(world.client("cloudwatch", "default-bodies")) as default_reader:
        listed = default_reader.list_dashboards()["DashboardEntries"]
        assert "acme-board" not in [d["DashboardName"] for d in listed]
        with pytest.raises(ClientError) as hidden:
            default_reader.get_dashboard(DashboardName="acme-board")
    assert _code(hidden)[1] == 404
    acme_admin_key = create_key(world.url, world.admin, role="admin", workspace="acme")["key"]
    status, _, page = call(
        world.url + "/api/audit?since=1h&limit=1000", headers=auth(str(acme_admin_key))
    )
    assert status == 200, page
    entries = [e for e in json.loads(page)["entries"] if e["action"] == "monitoring:PutDashboard"]
    outcomes = sorted(e["outcome"] for e in entries)
    assert outcomes == [200, 403], entries
    assert {e["surface"] for e in entries} == {"aws"}
