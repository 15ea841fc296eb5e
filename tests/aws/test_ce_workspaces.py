"""Cost Explorer signed with issued key pairs (SigV4) on a server of its own, with records in
two workspaces and none in a third: each key's GetCostAndUsage, GetDimensionValues and GetTags
read its own workspace only, equal to what ``/api/cost`` and ``/api/records`` answer that
key; a workspace that has recorded nothing answers DataUnavailableException; a page token
of one workspace is refused in another."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from botocore.exceptions import ClientError

from tests.aws.conftest import ACCOUNT, REGION, aws_client
from tests.aws.test_ce_expected import answered, grouped, items, records
from tests.harness import ServerProcess

CONFIG = f'region = "{REGION}"\naccount_id = "{ACCOUNT}"\n'
W2_TENANTS = 260  # two usage types each: more groups than one page holds


def ingest(prefix: str, count: int, model: str, metadata_key: str, provider: str = "sim") -> bytes:
    now = datetime.now(UTC)
    return "\n".join(
        json.dumps(
            {
                "timestamp": (now - timedelta(minutes=i)).isoformat().replace("+00:00", "Z"),
                "requestId": f"{prefix}-{i}",
                "provider": provider,
                "modelId": model,
                "operation": "Converse",
                "requestMetadata": {metadata_key: f"{prefix}-{i:03d}"},
                "input": {"inputTokenCount": 10 + i},
                "output": {"outputTokenCount": 1 + i % 5},
            }
        )
        for i in range(count)
    ).encode()


@dataclass
class Keys:
    url: str
    bearer: dict[str, str]
    pairs: dict[str, dict[str, str]]

    def ce(self, workspace: str) -> Any:
        return aws_client(self.url, "ce", **self.pairs[workspace])

    def headers(self, workspace: str) -> dict[str, str]:
        return {"authorization": f"Bearer {self.bearer[workspace]}"}


def settle(url: str, operator: str, timeout: float = 30) -> None:
    """Wait until the pipeline stored all it accepted (``/metrics``, which only the operator
    reads once keys exist)."""
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


def _key(url: str, bearer: str | None, **spec: Any) -> dict[str, Any]:
    headers = {"authorization": f"Bearer {bearer}"} if bearer else {}
    answer = httpx.post(url + "/api/keys", json=spec, headers=headers, timeout=30)
    assert answer.status_code == 201, answer.text
    return answer.json()  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Keys]:
    root = tmp_path_factory.mktemp("ce-workspaces")
    env = {"LLMTRAIL_SERVER__KEY_REFRESH_S": "1"}
    with ServerProcess(root / "data", config=CONFIG, env=env) as proc:
        admin = _key(proc.url, None, role="admin", name="operator", aws=True)
        made = {
            ws: _key(proc.url, admin["key"], role="reader", workspace=ws, aws=True)
            for ws in ("w2", "w3")
        }
        ingester = _key(proc.url, admin["key"], role="ingester", workspace="w2")
        for bearer, body in (
            (admin["key"], ingest("default", 30, "sim/smart", "team")),
            (
                ingester["key"],
                ingest("w2", W2_TENANTS, "amazon.nova-lite-v1:0", "tenant_id", "bedrock"),
            ),
        ):
            answer = httpx.post(
                proc.url + "/api/records",
                content=body,
                headers={"authorization": f"Bearer {bearer}"},
                timeout=60,
            )
            assert answer.status_code == 200, answer.text
        settle(proc.url, admin["key"])
        pair = {
            "aws_access_key_id": "awsAccessKeyId",
            "aws_secret_access_key": "awsSecretAccessKey",
        }
        everyone = {"default": admin, **made}
        yield Keys(
            proc.url,
            {ws: key["key"] for ws, key in everyone.items()},
            {ws: {k: key[v] for k, v in pair.items()} for ws, key in everyone.items()},
        )


def period() -> dict[str, str]:
    today = datetime.now(UTC).date()
    return {"Start": str(today - timedelta(days=2)), "End": str(today + timedelta(days=1))}


def pages(ce: Any, **request: Any) -> list[Any]:
    out = []
    while True:
        page = ce.get_cost_and_usage(**request)
        out.append(page)
        if "NextPageToken" not in page:
            return out
        request = {**request, "NextPageToken": page["NextPageToken"]}


@pytest.mark.parametrize("workspace", ["default", "w2"])
def test_each_key_reads_its_own_workspace(keys: Keys, workspace: str) -> None:
    ce = keys.ce(workspace)
    try:
        by = [{"Type": "DIMENSION", "Key": "SERVICE"}, {"Type": "DIMENSION", "Key": "USAGE_TYPE"}]
        request = {
            "TimePeriod": period(),
            "Granularity": "DAILY",
            "Metrics": ["UnblendedCost", "UsageQuantity"],
            "GroupBy": by,
        }
        got = answered(pages(ce, **request))
        docs = records(keys.url, period()["Start"], period()["End"], keys.headers(workspace))
        assert {d["requestId"].split("-")[0] for d in docs} == {workspace}
        found = items(docs, account=ACCOUNT, region=REGION)
        assert got == grouped(found, lambda at: at.date().isoformat(), "SERVICE", "USAGE_TYPE")
        answer = httpx.get(
            keys.url + "/api/cost",
            params={"granularity": "MONTHLY", **{k.lower(): v for k, v in period().items()}},
            headers=keys.headers(workspace),
            timeout=60,
        )
        assert answer.status_code == 200, answer.text
        ours = sum(Decimal(r["total"]["costUsd"]) for r in answer.json()["resultsByTime"])
        assert sum(c for c, _ in got.values()) == ours > 0
        services = {k[0] for _, k in got}
        assert services == ({"llmtrail sim"} if workspace == "default" else {"Amazon Bedrock"})
        tags = ce.get_tags(TimePeriod=period())["Tags"]
        assert ("team" in tags, "tenant_id" in tags) == (
            (True, False) if workspace == "default" else (False, True)
        )
        values = ce.get_dimension_values(TimePeriod=period(), Dimension="SERVICE")
        assert [v["Value"] for v in values["DimensionValues"]] == sorted(services)
    finally:
        ce.close()


def test_a_workspace_without_records_has_no_data_yet(keys: Keys) -> None:
    ce = keys.ce("w3")
    try:
        asks: tuple[Callable[[], Any], ...] = (
            lambda: ce.get_cost_and_usage(
                TimePeriod=period(), Granularity="DAILY", Metrics=["UnblendedCost"]
            ),
            lambda: ce.get_tags(TimePeriod=period()),
            lambda: ce.get_dimension_values(TimePeriod=period(), Dimension="SERVICE"),
        )
        for ask in asks:
            with pytest.raises(ClientError) as caught:
                ask()
            error = caught.value.response["Error"]
            assert error["Code"] == "DataUnavailableException", error
            assert error["Message"].startswith("Data is not available.")
    finally:
        ce.close()


def test_a_page_token_of_one_workspace_is_refused_in_another(keys: Keys) -> None:
    w2, default = keys.ce("w2"), keys.ce("default")
    try:
        by = [{"Type": "TAG", "Key": "tenant_id"}, {"Type": "DIMENSION", "Key": "USAGE_TYPE"}]
        request = {
            "TimePeriod": period(),
            "Granularity": "MONTHLY",
            "Metrics": ["UnblendedCost"],
            "GroupBy": by,
        }
        first = w2.get_cost_and_usage(**request)
        token = first["NextPageToken"]
        assert w2.get_cost_and_usage(**request, NextPageToken=token)["ResultsByTime"]
        with pytest.raises(ClientError) as caught:
            default.get_cost_and_usage(**request, NextPageToken=token)
        assert caught.value.response["Error"]["Code"] == "InvalidNextTokenException"
    finally:
        w2.close()
        default.close()
