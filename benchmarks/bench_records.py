"""Realistic ~1 KB Bedrock-shaped invocation records for the ingest benchmark.

Shaped like ``tests/fixtures/bedrock-invocation-logs.jsonl``: ``requestMetadata`` with a few
promoted keys, small request and response bodies, token counts. Deterministic in ``(run, i)``
so the server run and the in-process stages see the same records; ``requestId`` is unique per
index within a run.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

_MODELS = (
    "us.anthropic.claude-sonnet-4-5-20250929-v1:0",
    "amazon.nova-lite-v1:0",
    "anthropic.claude-3-haiku-20240307-v1:0",
    "meta.llama3-1-70b-instruct-v1:0",
)
_OPERATIONS = ("Converse", "ConverseStream", "InvokeModel", "Converse")
_APPS = ("CustomerServiceApp", "SearchAssistant", "BillingBot", "DocSummarizer")
_TEAMS = ("customer-support", "search", "billing", "platform")
_QUESTIONS = (
    "What is the capital of Japan and what is it known for?",
    "Summarise the refund policy for annual plans in two sentences.",
    "Which invoices for tenant 4711 are still unpaid this quarter?",
    "Translate the following product description into German, keep it short.",
)
_ANSWERS = (
    "The capital of Japan is Tokyo, known for its food, transit and neighbourhoods.",
    "Annual plans can be refunded pro rata within 30 days; after that no refund applies.",
    "Three invoices are unpaid: 2026-0412, 2026-0419 and 2026-0431, totalling 1,204 EUR.",
    "Ein leichter, robuster Rucksack fuer den Alltag mit gepolstertem Laptopfach.",
)
_BASE = datetime(2026, 11, 20, 8, 0, 0, tzinfo=UTC)


def make_record(run: str, i: int) -> dict[str, Any]:
    """Record ``i`` of run ``run`` (``run`` is 8 hex digits; it keeps requestIds unique)."""
    k = i % 4
    ts = _BASE + timedelta(milliseconds=i * 7)
    question, answer = _QUESTIONS[k], _ANSWERS[(i // 4) % 4]
    in_tokens, out_tokens = 180 + i % 97, 40 + i % 53
    return {
        "schemaType": "ModelInvocationLog",
        "schemaVersion": "1.0",
        "timestamp": ts.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts.microsecond // 1000:03d}Z",
        "accountId": "123456789012",
        "identity": {"arn": f"arn:aws:iam::123456789012:user/app-{i % 50}"},
        "region": "us-east-1",
        "requestId": f"{run}-{i >> 32 & 0xFFFF:04x}-4{i >> 20 & 0xFFF:03x}-8000-{i:012x}",
        "operation": _OPERATIONS[(i // 3) % 4],
        "modelId": _MODELS[k],
        "requestMetadata": {
            "application_name": _APPS[k],
            "environment": "production" if i % 10 else "staging",
            "team": _TEAMS[(i // 2) % 4],
            "tenant_id": f"tenant-{i % 1000}",
            "user_id": f"user-{i % 5000}",
        },
        "input": {
            "inputContentType": "application/json",
            "inputBodyJson": {
                "messages": [{"role": "user", "content": [{"text": question}]}],
                "inferenceConfig": {"maxTokens": 512, "temperature": 0.7, "topP": 0.9},
            },
            "inputTokenCount": in_tokens,
            "cacheReadInputTokenCount": 0,
            "cacheWriteInputTokenCount": 0,
        },
        "output": {
            "outputContentType": "application/json",
            "outputBodyJson": {
                "output": {"message": {"role": "assistant", "content": [{"text": answer}]}},
                "stopReason": "end_turn",
                "usage": {
                    "inputTokens": in_tokens,
                    "outputTokens": out_tokens,
                    "totalTokens": in_tokens + out_tokens,
                },
                "metrics": {"latencyMs": 300 + i % 1700},
            },
            "outputTokenCount": out_tokens,
        },
    }


def ndjson_bodies(run: str, total: int, per_body: int) -> list[bytes]:
    """``total`` records as NDJSON request bodies of ``per_body`` records each."""
    bodies = []
    for start in range(0, total, per_body):
        end = min(total, start + per_body)
        bodies.append(b"\n".join(orjson.dumps(make_record(run, i)) for i in range(start, end)))
    return bodies
