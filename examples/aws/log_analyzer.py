"""Analyze Amazon Bedrock model-invocation logs with CloudWatch Logs Insights (boto3): for one
model over the last 24 hours, the invocations, average and p95 latency, error rate and
tokens, and how the invocations of that window spread over every model.

Written for AWS, exactly as one would write it there. To run it against llmtrail instead,
give the server's address as ``--endpoint-url``; nothing else changes::

    python log_analyzer.py --model-id anthropic.claude-3-haiku-20240307-v1:0
    python log_analyzer.py --endpoint-url http://127.0.0.1:8080 --model-id sim/fast

It prints one JSON report. Exit status 0 when the queries completed, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from typing import Any

import boto3

DEFAULT_LOG_GROUP = "/aws/bedrock/modelinvocations"
TERMINAL = ("Complete", "Failed", "Cancelled", "Timeout", "Unknown")
# model ids, inference-profile ids and ARNs: nothing that could end a quoted string
MODEL_ID = re.compile(r"[A-Za-z0-9._:/\-]{1,2048}")

MODEL_QUERY = """
filter modelId = "{model_id}"
| stats count(*) as invocations,
        count(errorCode) as errors,
        avg(latencyMs) as avgLatencyMs,
        pct(latencyMs, 95) as p95LatencyMs,
        sum(input.inputTokenCount) as inputTokens,
        sum(output.outputTokenCount) as outputTokens
"""
USAGE_QUERY = """
stats count(*) as invocations,
      sum(input.inputTokenCount) as inputTokens,
      sum(output.outputTokenCount) as outputTokens
  by modelId
| sort invocations desc
"""


class QueryFailed(Exception):
    """A Logs Insights query ended in another status than Complete."""


def logs_client(endpoint_url: str | None, region: str) -> Any:
    """The CloudWatch Logs client; ``endpoint_url`` None means AWS itself."""
    return boto3.client("logs", region_name=region, endpoint_url=endpoint_url)


def run_query(
    logs: Any, log_group: str, query: str, start: int, end: int, poll_s: float = 0.5
) -> list[dict[str, str]]:
    """Run a Logs Insights query over ``[start, end]`` (epoch seconds) and wait for it; its
    rows as ``{field: value}``."""
    query_id = logs.start_query(
        logGroupName=log_group, startTime=start, endTime=end, queryString=query
    )["queryId"]
    while True:
        answer = logs.get_query_results(queryId=query_id)
        if answer["status"] in TERMINAL:
            break
        time.sleep(poll_s)
    if answer["status"] != "Complete":
        raise QueryFailed(f"query {query_id} ended {answer['status']}")
    return [{f["field"]: f["value"] for f in row if "value" in f} for row in answer["results"]]


def number(row: dict[str, str], field: str) -> float | None:
    value = row.get(field)
    return None if value is None else float(value)


def model_figures(logs: Any, log_group: str, model_id: str, start: int, end: int) -> Any:
    """Invocations, errors, error rate, latency and tokens of ``model_id``."""
    rows = run_query(logs, log_group, MODEL_QUERY.format(model_id=model_id), start, end)
    row = rows[0] if rows else {}
    invocations = int(number(row, "invocations") or 0)
    errors = int(number(row, "errors") or 0)
    return {
        "modelId": model_id,
        "invocations": invocations,
        "errors": errors,
        "errorRate": errors / invocations if invocations else None,
        "avgLatencyMs": number(row, "avgLatencyMs"),
        "p95LatencyMs": number(row, "p95LatencyMs"),
        "inputTokens": int(number(row, "inputTokens") or 0),
        "outputTokens": int(number(row, "outputTokens") or 0),
    }


def model_usage(logs: Any, log_group: str, start: int, end: int) -> list[dict[str, Any]]:
    """Invocations and tokens per model, most used first, with each model's share."""
    rows = run_query(logs, log_group, USAGE_QUERY, start, end)
    total = sum(int(number(r, "invocations") or 0) for r in rows)
    return [
        {
            "modelId": r.get("modelId"),
            "invocations": int(number(r, "invocations") or 0),
            "share": int(number(r, "invocations") or 0) / total if total else None,
            "inputTokens": int(number(r, "inputTokens") or 0),
            "outputTokens": int(number(r, "outputTokens") or 0),
        }
        for r in rows
    ]


def analyze(logs: Any, log_group: str, model_id: str, hours: int) -> dict[str, Any]:
    end = int(time.time())
    start = end - hours * 3600
    return {
        "logGroup": log_group,
        "window": {"startTime": start, "endTime": end, "hours": hours},
        "model": model_figures(logs, log_group, model_id, start, end),
        "usageByModel": model_usage(logs, log_group, start, end),
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--endpoint-url", help="a CloudWatch Logs-compatible endpoint")
    parser.add_argument("--region", default="us-east-1")
    parser.add_argument("--log-group", default=DEFAULT_LOG_GROUP)
    parser.add_argument("--model-id", required=True, help="the model id the calls named")
    parser.add_argument("--hours", type=int, default=24, help="how far back to look")
    args = parser.parse_args(argv)
    if not MODEL_ID.fullmatch(args.model_id):
        parser.error("--model-id may hold letters, digits and . _ : / - only")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logs = logs_client(args.endpoint_url, args.region)
    try:
        report = analyze(logs, args.log_group, args.model_id, args.hours)
    except QueryFailed as exc:
        print(f"log_analyzer: {exc}", file=sys.stderr)
        return 1
    json.dump(report, sys.stdout, indent=2, sort_keys=True)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
