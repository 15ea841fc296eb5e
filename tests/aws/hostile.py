"""Sending hostile bytes to the AWS-shaped APIs, for tests/aws/test_hostile_*.py: requests
go out as raw HTTP (boto3 would refuse most of them before they leave) and answers come back
decoded by their Content-Type — JSON or CBOR, anything else (a plain-text 500, Starlette's
405) fails the test at once."""

from __future__ import annotations

import base64
import http.client
import json
import time
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import cbor2

from llmtrail.security.principal import OPEN
from llmtrail.security.secret import load_secret
from llmtrail.server.aws.operations import AwsCall
from llmtrail.server.aws.tokens import page_token

LOGS = "Logs_20140328."
CE = "AWSInsightsIndexService."
GROUP = "/aws/bedrock/modelinvocations"
STREAM = GROUP[1:]
CBOR_PATH = "/service/GraniteServiceVersion20100801/operation/"
JSON_TYPE = "application/x-amz-json-1.1"
SERIALIZATION = "SerializationException"
COST = {
    "TimePeriod": {"Start": "2026-11-01", "End": "2026-12-01"},
    "Granularity": "MONTHLY",
    "Metrics": ["UnblendedCost"],
}


@dataclass
class Reply:
    status: int
    error: str | None  # __type, else x-amzn-ErrorType
    message: str
    data: Any


class Wire:
    """Bytes to the server at ``url``, its answers decoded."""

    def __init__(self, url: str, **headers: str) -> None:
        parts = urllib.parse.urlsplit(url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.headers = headers  # sent with every request (e.g. a key)

    def send(self, method: str, path: str, body: bytes = b"", **headers: str) -> Reply:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=60)
        try:
            conn.request(method, path, body=body, headers={**self.headers, **headers})
            answer = conn.getresponse()
            raw = answer.read()
            kind = answer.getheader("content-type") or ""
            assert "json" in kind or "cbor" in kind, (answer.status, kind, raw[:200])
            data = cbor2.loads(raw) if "cbor" in kind else json.loads(raw)
            error = data.get("__type") or answer.getheader("x-amzn-errortype")
            return Reply(answer.status, error, str(data.get("message", "")), data)
        finally:
            conn.close()

    def json(self, target: str, body: Any, content_type: str = JSON_TYPE) -> Reply:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        headers = {"x-amz-target": target, "content-type": content_type}
        return self.send("POST", "/", raw, **headers)

    def cbor(self, operation: str, body: Any, content_type: str = "application/cbor") -> Reply:
        raw = body if isinstance(body, bytes) else cbor2.dumps(body)
        headers = {"content-type": content_type, "smithy-protocol": "rpc-v2-cbor"}
        return self.send("POST", CBOR_PATH + operation, raw, **headers)

    def rest(self, method: str, path: str, body: Any = None) -> Reply:
        if body is None:
            return self.send(method, path)
        raw = json.dumps(body).encode()
        return self.send(method, path, raw, **{"content-type": "application/json"})

    def alive(self) -> None:
        """A good request on each protocol is still answered."""
        assert self.json(LOGS + "DescribeLogGroups", {}).status == 200
        assert self.cbor("ListDashboards", {}).status == 200
        assert self.rest("GET", "/inference-profiles?maxResults=1").status == 200


def now() -> int:
    return int(time.time())


def metric_query(i: int = 1, period: Any = 60) -> dict[str, Any]:
    metric = {"Namespace": "AWS/Bedrock", "MetricName": "Invocations"}
    return {"Id": f"m{i}", "MetricStat": {"Metric": metric, "Period": period, "Stat": "Sum"}}


def metric_data(**changes: Any) -> dict[str, Any]:
    """A good GetMetricData request over the last day, with ``changes``."""
    return {
        "MetricDataQueries": [metric_query()],
        "StartTime": cbor2.CBORTag(1, now() - 86400),
        "EndTime": cbor2.CBORTag(1, now() + 60),
        **changes,
    }


def metric_bytes(**changes: Any) -> bytes:
    return cbor2.dumps(metric_data(**changes))


def nested_not(depth: int) -> dict[str, Any]:
    """A Cost Explorer filter ``depth`` Nots deep."""
    expression: dict[str, Any] = {"Dimensions": {"Key": "SERVICE", "Values": ["x"]}}
    for _ in range(depth):
        expression = {"Not": expression}
    return expression


def unsigned_token(operation: str, state: Any, workspace: str = "default") -> str:
    """A token as they were before the server signed them: base64 JSON anyone could write."""
    data = json.dumps({"op": operation, "ws": workspace, "s": state}).encode()
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def signed_token(data_dir: Path, operation: str, state: Any) -> str:
    """A token of the default workspace the server at ``data_dir`` accepts: made by the
    server's own `page_token` with the secret kept in its data directory."""
    runtime = SimpleNamespace(secret=load_secret(data_dir, ""))
    call = AwsCall("logs", operation, {}, OPEN, runtime, "us-east-1", "123456789012", "t")
    return page_token(call, state)
