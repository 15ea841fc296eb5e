"""CloudWatch's metric reads signed with issued key pairs (SigV4) on a server of its own, with
records in two workspaces: each key reads its own workspace only, equal to what
``/api/metrics`` answers that key; and ``ListMetrics`` pages 500 metrics at a time (this
server holds more than 500) with tokens bound to the request and the workspace."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from botocore.exceptions import ClientError

from tests.aws.conftest import aws_client
from tests.harness import ServerProcess

TENANTS = 20
MODELS = ("m-alpha", "m-beta")
W2_MODEL = "w2-model"


def records(prefix: str, count: int, models: tuple[str, ...]) -> bytes:
    now = datetime.now(UTC)
    return "\n".join(
        json.dumps(
            {
                "timestamp": (now - timedelta(minutes=i)).isoformat().replace("+00:00", "Z"),
                "requestId": f"{prefix}-{i}",
                "modelId": models[i % len(models)],
                "operation": "Converse",
                "requestMetadata": {"tenant_id": f"tenant-{i % TENANTS}"},
                "input": {"inputTokenCount": 10 + i},
                "output": {"outputTokenCount": i},
                "latencyMs": 100 + 7 * i,
            }
        )
        for i in range(count)
    ).encode()


@dataclass
class Keys:
    url: str
    bearer: dict[str, str]  # workspace -> bearer key
    pairs: dict[str, dict[str, str]]  # workspace -> SigV4 key pair

    def cloudwatch(self, workspace: str) -> Any:
        return aws_client(self.url, "cloudwatch", **self.pairs[workspace])

    def api(self, workspace: str, method: str, path: str, body: Any = None) -> Any:
        answer = httpx.request(
            method,
            self.url + path,
            json=body,
            headers={"authorization": f"Bearer {self.bearer[workspace]}"},
            timeout=60,
        )
        assert answer.status_code == 200, answer.text
        return answer.json()


def _key(url: str, bearer: str | None, **spec: Any) -> dict[str, Any]:
    headers = {"authorization": f"Bearer {bearer}"} if bearer else {}
    answer = httpx.post(url + "/api/keys", json=spec, headers=headers, timeout=30)
    assert answer.status_code == 201, answer.text
    return answer.json()


def _ingest(url: str, body: bytes, bearer: str | None = None) -> None:
    headers = {"authorization": f"Bearer {bearer}"} if bearer else {}
    answer = httpx.post(url + "/api/records", content=body, headers=headers, timeout=60)
    assert answer.status_code == 200, answer.text


def _settle(url: str, operator: str, timeout: float = 30) -> None:
    """Wait until the pipeline stored all it accepted (its counters on ``/metrics``, which
    only the operator reads once keys exist)."""
    deadline = time.monotonic() + timeout
    while True:
        reply = httpx.get(url + "/metrics", headers={"authorization": f"Bearer {operator}"})
        assert reply.status_code == 200, reply.text[:300]
        m = {
            line.split()[0].removeprefix("llmtrail_pipeline_"): float(line.split()[1])
            for line in reply.text.splitlines()
            if line.startswith("llmtrail_pipeline_")
        }
        if m["queue_depth"] == 0 and m["stored"] >= m["spooled"] >= m["accepted"]:
            return
        assert time.monotonic() < deadline, m
        time.sleep(0.05)


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Keys]:
    root = tmp_path_factory.mktemp("cw-workspaces")
    env = {"LLMTRAIL_SERVER__KEY_REFRESH_S": "1"}
    with ServerProcess(root / "data", env=env) as proc:
        _ingest(proc.url, records("default", 60, MODELS))  # open mode: workspace default
        admin = _key(proc.url, None, role="admin", name="operator", aws=True)
        reader = _key(proc.url, admin["key"], role="reader", workspace="w2", aws=True)
        ingester = _key(proc.url, admin["key"], role="ingester", workspace="w2")
        _ingest(proc.url, records("w2", 5, (W2_MODEL,)), ingester["key"])
        _settle(proc.url, admin["key"])
        pair = {
            "aws_access_key_id": "awsAccessKeyId",
            "aws_secret_access_key": "awsSecretAccessKey",
        }
        yield Keys(
            proc.url,
            {"default": admin["key"], "w2": reader["key"]},
            {
                "default": {k: admin[v] for k, v in pair.items()},
                "w2": {k: reader[v] for k, v in pair.items()},
            },
        )


def _metric_names(answer: dict[str, Any]) -> set[tuple[str, tuple[tuple[str, str], ...]]]:
    return {
        (m["MetricName"], tuple((d["Name"], d["Value"]) for d in m["Dimensions"]))
        for m in answer["Metrics"]
        if all(d["Value"] for d in m["Dimensions"])
    }


def test_list_metrics_pages_500_at_a_time(keys: Keys) -> None:
    cloudwatch = keys.cloudwatch("default")
    try:
        pages, token, first_token = [], None, ""
        while True:
            answer = cloudwatch.list_metrics(**({"NextToken": token} if token else {}))
            pages.append(answer["Metrics"])
            token = answer.get("NextToken")
            if token is None:
                break
            first_token = first_token or token
        assert len(pages) >= 2 and all(len(p) == 500 for p in pages[:-1])
        found = [
            (m["MetricName"], tuple((d["Name"], d["Value"]) for d in m["Dimensions"]))
            for page in pages
            for m in page
        ]
        assert len(found) == len(set(found))
        api = keys.api("default", "GET", "/api/metrics/list?since=14d")
        assert set(found) == _metric_names(api)
        # a token serves the request that made it, nothing else
        with pytest.raises(ClientError) as caught:
            cloudwatch.list_metrics(MetricName="Invocations", NextToken=first_token)
        assert caught.value.response["Error"]["Code"] == "InvalidParameterValue"
        other = keys.cloudwatch("w2")
        try:
            with pytest.raises(ClientError) as caught:
                other.list_metrics(NextToken=first_token)
            assert caught.value.response["Error"]["Code"] == "InvalidParameterValue"
        finally:
            other.close()
    finally:
        cloudwatch.close()


def test_each_key_reads_its_own_workspace(keys: Keys) -> None:
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    start, end = now - timedelta(hours=3), now + timedelta(minutes=2)
    query = {
        "Id": "calls",
        "MetricStat": {
            "Metric": {"Namespace": "AWS/Bedrock", "MetricName": "Invocations"},
            "Period": 3600,
            "Stat": "Sum",
        },
    }
    body = {
        "MetricDataQueries": [query],
        "StartTime": int(start.timestamp()),
        "EndTime": int(end.timestamp()),
    }
    totals = {}
    for workspace in ("default", "w2"):
        cloudwatch = keys.cloudwatch(workspace)
        try:
            answer = cloudwatch.get_metric_data(
                MetricDataQueries=[query], StartTime=start, EndTime=end
            )
            [series] = answer["MetricDataResults"]
            [api] = keys.api(workspace, "POST", "/api/metrics", body)["MetricDataResults"]
            assert series["Values"] == api["Values"] and series["Label"] == api["Label"]
            totals[workspace] = sum(series["Values"])
            statistics = cloudwatch.get_metric_statistics(
                Namespace="AWS/Bedrock",
                MetricName="Invocations",
                StartTime=start,
                EndTime=end,
                Period=3600,
                Statistics=["Sum"],
            )
            assert sum(p["Sum"] for p in statistics["Datapoints"]) == totals[workspace]
            models = {
                d["Value"]
                for m in cloudwatch.list_metrics(Dimensions=[{"Name": "ModelId"}])["Metrics"]
                for d in m["Dimensions"]
                if d["Name"] == "ModelId"
            }
            assert models == ({W2_MODEL} if workspace == "w2" else set(MODELS))
        finally:
            cloudwatch.close()
    assert totals == {"default": 60, "w2": 5}
