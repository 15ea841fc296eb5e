"""What the ``logs`` tests share (no tests here): llmtrail's own answers to compare with —
``GET /api/records`` and ``POST /api/query`` — and the clients the tests use."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from tests.aws.conftest import REGION, AwsServer
from tests.harness import call

GROUP = "/aws/bedrock/modelinvocations"
STREAM = "aws/bedrock/modelinvocations"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
FOREVER = "9998-12-31T00:00:00Z"  # the last day llmtrail timestamps reach


def iso(ms: int) -> str:
    """RFC 3339 of epoch milliseconds (llmtrail's API takes those)."""
    return (EPOCH + timedelta(milliseconds=ms)).isoformat().replace("+00:00", "Z")


def ms_of_text(text: str) -> int:
    """Epoch milliseconds of a query value (``YYYY-MM-DD HH:MM:SS.mmm``) or an RFC 3339
    timestamp."""
    when = datetime.fromisoformat(text.replace("Z", "+00:00").replace(" ", "T"))
    when = when if when.tzinfo else when.replace(tzinfo=UTC)
    return (when - EPOCH) // timedelta(milliseconds=1)


def api_records(url: str, **params: Any) -> list[Any]:
    """Every record ``GET /api/records`` lists for ``params``, oldest first (the stream's
    order: it lists newest first by timestamp, then recordId)."""
    out: list[dict[str, Any]] = []
    cursor = None
    while True:
        query = {**params, "limit": 1000, **({"cursor": cursor} if cursor else {})}
        status, page = call(url, "GET", "/api/records?" + urlencode(query))
        assert status == 200, page
        out += page["records"]
        cursor = page.get("nextCursor")
        if not cursor:
            return out[::-1]


def api_query(url: str, text: str, start: Any = 0, end: Any = FOREVER, **more: Any) -> Any:
    """``POST /api/query``'s answer (``GetQueryResults``' shape)."""
    status, answer = call(
        url, "POST", "/api/query", {"queryString": text, "startTime": start, "endTime": end, **more}
    )
    assert status == 200, answer
    return answer


def rows_of(answer: dict[str, Any]) -> list[dict[str, str]]:
    """Result rows as ``{field: value}``, fields without a value left out (as CloudWatch
    leaves them out of a row)."""
    return [
        {f["field"]: f["value"] for f in row if f.get("value") is not None}
        for row in answer["results"]
    ]


def finished(logs: Any, query_id: str, timeout: float = 30.0) -> Any:
    """GetQueryResults once the query has ended (polling as AWS's examples do)."""
    deadline = time.monotonic() + timeout
    while True:
        answer = logs.get_query_results(queryId=query_id)
        if answer["status"] not in ("Scheduled", "Running"):
            return answer
        assert time.monotonic() < deadline, answer
        time.sleep(0.05)


def code(caught: pytest.ExceptionInfo[ClientError]) -> str:
    return str(caught.value.response["Error"]["Code"])


def unchecked_client(url: str) -> Any:
    """A logs client that leaves validation to the server: botocore checks the model on the
    client by default; other SDKs and hand-made requests do not."""
    return boto3.client(
        "logs",
        endpoint_url=url,
        region_name=REGION,
        aws_access_key_id="AKIAEXAMPLEOPENMODE",
        aws_secret_access_key="not-checked-in-open-mode",
        config=Config(retries={"max_attempts": 1}, parameter_validation=False),
    )


def logs_client(aws_server: AwsServer) -> Iterator[Any]:
    """For a ``logs`` fixture: a boto3 logs client on the shared server, once what earlier
    tests sent is stored (so that both sides of a comparison see the same records)."""
    aws_server.proc.settle()
    client = aws_server.client("logs")
    yield client
    client.close()


def unchecked_logs(aws_server: AwsServer) -> Iterator[Any]:
    """For an ``unchecked`` fixture."""
    client = unchecked_client(aws_server.url)
    yield client
    client.close()
