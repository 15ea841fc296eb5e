"""The records the query tests run on: the Bedrock fixture plus generated ones.

Generated records are deterministic (a seeded generator, fixed timestamps) and built to
exercise the compiler: ties on timestamp and latency, missing fields, a non-promoted
``requestMetadata`` key, bodies with message lists, unknown keys and money in ``extra``,
errors, another workspace, and records exactly on the time range's edges.
"""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from llmtrail.record import InvocationRecord, format_timestamp
from tests.conftest import bedrock_fixture_lines

START = datetime(2026, 3, 1, tzinfo=UTC)
END = datetime(2026, 3, 3, tzinfo=UTC)
WIDE_START = datetime(2020, 1, 1, tzinfo=UTC)
WIDE_END = datetime(2030, 1, 1, tzinfo=UTC)
WORKSPACE = "default"
OTHER_WORKSPACE = "other"

APPS = ["chat", "search", "support", "billing"]
MODELS = ["anthropic.claude-3-haiku", "amazon.nova-lite-v1:0", "gpt-4o-mini", "llama3"]
TENANTS = ["t-1", "t-2", "t-3"]
USERS = [f"u-{i}" for i in range(9)]


def generated_docs(count: int = 240, seed: int = 7, prefix: str = "gen") -> list[dict[str, Any]]:
    """Record documents spread over ``START`` .. ``END`` (a few on the edges)."""
    rng = random.Random(seed)
    docs = []
    for i in range(count):
        moment = START + timedelta(milliseconds=rng.randrange(0, 2 * 86_400_000))
        if i % 17 == 0:  # ties on the timestamp
            moment = START + timedelta(hours=5)
        if i == 1:
            moment = START  # included: the range starts here
        if i == 2:
            moment = END  # excluded: the range ends before
        if i == 3:
            moment = END - timedelta(microseconds=1)
        status_error = i % 11 == 0
        meta = {
            "application_name": rng.choice(APPS),
            "tenant_id": rng.choice(TENANTS),
            "user_id": rng.choice(USERS),
            "project": rng.choice(["apollo", "zeus", "hera"]),
        }
        if i % 13 == 0:
            del meta["user_id"]
        doc: dict[str, Any] = {
            "schemaType": "ModelInvocationLog",
            "schemaVersion": "1.0",
            "timestamp": format_timestamp(moment),
            "requestId": f"{prefix}-{i:04d}",
            "operation": rng.choice(["Converse", "ChatCompletions"]),
            "modelId": rng.choice(MODELS),
            "requestMetadata": meta,
            "input": {
                "inputTokenCount": rng.randint(1, 2000),
                "inputBodyJson": {
                    "messages": [
                        {"role": "user", "content": f"question {i}"},
                        {"role": "assistant", "content": "earlier answer"},
                    ][: 1 + i % 2]
                },
            },
            "output": {
                "outputTokenCount": rng.randint(1, 800),
                "outputBodyJson": {"stopReason": rng.choice(["end_turn", "max_tokens"])},
            },
            "latencyMs": 100 * rng.randint(1, 30),
            "provider": rng.choice(["bedrock", "openai"]),
            "cost": {"totalUsd": float(Decimal(rng.randint(0, 10**6)) / Decimal(10**6))},
            "custom": {"score": rng.randint(0, 9), "label": f"user=u{i % 5}, method:GET"},
        }
        if i % 7 == 0:
            del doc["latencyMs"]
        if status_error:
            doc["errorCode"] = rng.choice(["ThrottlingException", "ValidationException"])
            doc["error"] = {"type": "upstream", "message": "throttled", "httpStatus": 429}
        if i % 19 == 0:
            doc["custom"]["nothing"] = None
        docs.append(doc)
    return docs


def load_records() -> list[InvocationRecord]:
    """Every record the store gets: fixture, generated, and a few in another workspace."""
    fixture = [InvocationRecord.from_dict(json.loads(line)) for line in bedrock_fixture_lines()]
    generated = [InvocationRecord.from_dict(doc) for doc in generated_docs()]
    other = [
        InvocationRecord.from_dict(doc, workspace=OTHER_WORKSPACE)
        for doc in generated_docs(count=20, seed=99, prefix="other")
    ]
    return fixture + generated + other


def in_range(record: InvocationRecord, start: datetime = START, end: datetime = END) -> bool:
    return record.workspace == WORKSPACE and start <= record.timestamp < end


def get(record: InvocationRecord, dotted: str) -> Any:
    """The value at a dotted path of the record's JSON (None when missing)."""
    cur: Any = record.data
    for part in dotted.split("."):
        if not isinstance(cur, dict):
            return None
        cur = cur.get(part)
    return cur


def newest_first(records: list[InvocationRecord]) -> list[InvocationRecord]:
    """The default order: @timestamp desc, then recordId desc."""
    return sorted(records, key=lambda r: (r.timestamp, r.record_id), reverse=True)


def interpolated_percentile(values: list[float], p: float) -> float | None:
    """The exact percentile with linear interpolation (R-7, Excel PERCENTILE.INC)."""
    if not values:
        return None
    ordered = sorted(values)
    position = (len(ordered) - 1) * p / 100
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)
