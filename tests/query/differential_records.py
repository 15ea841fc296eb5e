"""Realistic generated records for the differential test: the same list goes into DuckDB and
into ClickHouse, record ids included, so that ties in time break alike on both.

Seeded and built from fixed timestamps, so every run loads the very same rows. They cover
what queries read differently per engine: six applications, tenants and users (promoted
``requestMetadata`` keys) beside keys only in the map (``feature``, ``project`` and the dotted
``region.zone``); Bedrock, OpenAI and Anthropic operations and models; token counts with
cache reads; latencies and time to first token (sometimes missing); money as exact decimals;
errors with code, type, message and HTTP status, and some cancelled calls; trace ids; request
and response bodies with nested JSON (messages whose ``content`` is text or a list of blocks,
tool use, usage, numbers, booleans, nulls); unknown keys at several depths; inference profile
tags; ties on the timestamp; records exactly on the range's edges; another workspace.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from llmtrail.record import InvocationRecord, format_timestamp

START = datetime(2026, 5, 4, tzinfo=UTC)  # a Monday: weeks and days line up with the range
END = START + timedelta(days=3)
WORKSPACE = "default"
OTHER_WORKSPACE = "elsewhere"

APPS = ("CustomerServiceApp", "SearchAssistant", "BillingBot", "DocSummarizer", "CodeReviewer")
TEAMS = ("support", "search", "billing", "platform")
TENANTS = tuple(f"tenant-{i:02d}" for i in range(12))
USERS = tuple(f"user-{i:03d}" for i in range(40))
FEATURES = ("summarize", "classify", "draft", "translate")
# model id, provider, its operations
MODELS = (
    ("anthropic.claude-3-haiku-20240307-v1:0", "bedrock", ("Converse", "InvokeModel")),
    ("us.anthropic.claude-sonnet-4-5-20250929-v1:0", "bedrock", ("Converse", "ConverseStream")),
    ("amazon.nova-lite-v1:0", "bedrock", ("Converse", "ConverseStream")),
    ("gpt-4o-mini", "openai", ("ChatCompletions",)),
    ("text-embedding-3-small", "openai", ("Embeddings",)),
    ("claude-haiku-4-5", "anthropic", ("Messages",)),
)
ERRORS = (
    ("ThrottlingException", 429, "Too many requests, please wait before trying again."),
    ("ValidationException", 400, "Input is too long for requested model."),
    ("ModelTimeoutException", 408, "Model has timed out in processing the request."),
    ("InternalServerException", 500, "The server encountered an internal error."),
)
WORDS = ("refund", "invoice", "weather", "résumé", "translate", "bug", "deploy", "café", "π")


def _message(rng: random.Random, role: str, i: int) -> dict[str, Any]:
    text = " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 6))) + f" #{i}"
    if rng.random() < 0.5:
        return {"role": role, "content": text}
    blocks: list[dict[str, Any]] = [{"type": "text", "text": text}]
    if role == "assistant" and rng.random() < 0.3:
        blocks.append({"type": "tool_use", "name": "lookup", "input": {"q": text[:8], "n": i}})
    return {"role": role, "content": blocks}


def _doc(rng: random.Random, i: int, moment: datetime, prefix: str) -> dict[str, Any]:
    model, provider, operations = rng.choice(MODELS)
    operation = rng.choice(operations)
    app = rng.randrange(len(APPS))
    in_tokens = rng.randint(1, 4000)
    out_tokens = 0 if operation == "Embeddings" else rng.randint(1, 1500)
    meta: dict[str, str] = {
        "application_name": APPS[app],
        "tenant_id": rng.choice(TENANTS),
        "user_id": rng.choice(USERS),
        "team": TEAMS[app % len(TEAMS)],
        "project": rng.choice(("apollo", "zeus", "hera")),
    }
    if rng.random() < 0.3:
        meta["feature"] = rng.choice(FEATURES)
    if rng.random() < 0.1:
        meta["region.zone"] = rng.choice(("a", "b"))
    if i % 13 == 0:
        del meta["user_id"]
    turns = [_message(rng, ("user", "assistant")[t % 2], i) for t in range(1 + i % 4)]
    price_in, price_out = Decimal(rng.randint(1, 300)) / 10**8, Decimal(rng.randint(1, 900)) / 10**8
    cost_in, cost_out = price_in * in_tokens, price_out * out_tokens
    doc: dict[str, Any] = {
        "schemaType": "ModelInvocationLog",
        "schemaVersion": "1.0",
        "timestamp": format_timestamp(moment),
        "requestId": f"{prefix}-{i:05d}",
        "accountId": "123456789012",
        "region": rng.choice(("us-east-1", "us-west-2", "eu-central-1")),
        "operation": operation,
        "modelId": model,
        "provider": provider,
        "requestMetadata": meta,
        "input": {
            "inputContentType": "application/json",
            "inputTokenCount": in_tokens,
            "cacheReadInputTokenCount": in_tokens // 2 if rng.random() < 0.3 else 0,
            "inputBodyJson": {
                "messages": turns,
                "temperature": rng.choice((0, 0.2, 0.7, 1)),
                "max_tokens": rng.choice((256, 1024, 4096)),
                "stream": operation.endswith("Stream"),
            },
        },
        "output": {
            "outputContentType": "application/json",
            "outputTokenCount": out_tokens,
            "outputBodyJson": {
                "output": {"message": _message(rng, "assistant", i)},
                "stopReason": rng.choice(("end_turn", "max_tokens", "tool_use")),
                "usage": {"inputTokens": in_tokens, "outputTokens": out_tokens},
                "metrics": {"latencyMs": rng.randint(50, 9000)},
            },
        },
        "latencyMs": rng.randint(20, 12_000),
        "cost": {
            "inputUsd": str(cost_in),
            "outputUsd": str(cost_out),
            "totalUsd": str(cost_in + cost_out),
            "priceVersion": "2026-05",
        },
        "custom": {
            "score": rng.randint(0, 9),
            "ratio": rng.choice((0.5, 1.25, 3.0)),
            "flag": rng.random() < 0.5,
            "label": f"user=u{i % 5}, method:{rng.choice(('GET', 'POST'))}",
            "nested": {"depth": {"value": rng.randint(-5, 5)}},
        },
        "source": rng.choice(("gateway", "sdk", "import")),
    }
    if operation.endswith("Stream") or rng.random() < 0.3:
        doc["timeToFirstTokenMs"] = rng.randint(40, 900)
    if i % 9 == 0:
        del doc["latencyMs"]
    if i % 17 == 0:
        del doc["output"]["outputBodyJson"]
    if rng.random() < 0.5:
        doc["trace"] = {"traceId": f"{rng.getrandbits(128):032x}", "spanId": f"{i:016x}"}
    if rng.random() < 0.2:
        doc["inferenceProfile"] = {"name": "claims", "tags": {"dept": rng.choice(("a", "b"))}}
    if i % 23 == 0:
        doc["custom"]["nothing"] = None
    if rng.random() < 0.1:
        code, status, message = rng.choice(ERRORS)
        doc.update(errorCode=code, status="ERROR")
        doc["error"] = {"type": code, "message": message, "httpStatus": status}
        doc["output"].pop("outputTokenCount")
    elif rng.random() < 0.03:
        doc["status"] = "CANCELLED"
        doc["error"] = {"type": "client_disconnected", "message": " client went away "}
    return doc


def generated_records(count: int = 1500, seed: int = 20260504) -> list[InvocationRecord]:
    """``count`` records in ``[START, END)`` of `WORKSPACE` (plus a few on the edges and in
    `OTHER_WORKSPACE`), the same for the same seed."""
    rng = random.Random(seed)
    span_ms = int((END - START).total_seconds() * 1000)
    records = []
    for i in range(count):
        moment = START + timedelta(milliseconds=rng.randrange(span_ms), microseconds=i % 7)
        if i % 29 == 0:  # ties on the timestamp
            moment = START + timedelta(hours=7, minutes=30)
        if i in (1, 2):
            moment = START if i == 1 else END  # the first is in the range, the second not
        records.append(InvocationRecord.from_dict(_doc(rng, i, moment, "req")))
    other = [
        InvocationRecord.from_dict(
            _doc(rng, i, START + timedelta(hours=i), "other"), workspace=OTHER_WORKSPACE
        )
        for i in range(30)
    ]
    return records + other
