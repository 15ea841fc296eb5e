"""The control-plane state a new user's pages need, made through the server's own API:
application inference profiles with cost tags, prices for the demo's ``sim`` models (priced
like the models they stand for, so cost differs by model), saved Logs Insights queries, and
monthly budgets — one of them close to its limit, sized from what the demo spent.

Everything is idempotent: a profile that exists is reused by name, prices, saved queries and
budgets are replaced under fixed names, so running the demo twice does not pile them up.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from decimal import ROUND_UP, Decimal
from typing import Any

from llmtrail.demo.cast import PROFILES

# USD per million tokens: (input, output, cache read, cache write)
PRICES = {
    "gpt-4o-mini": ("0.15", "0.60", "0.075", None),
    "gpt-4o": ("2.50", "10.00", "1.25", None),
    "claude-sonnet-4": ("3.00", "15.00", "0.30", "3.75"),
    "claude-haiku-4-5": ("1.00", "5.00", "0.10", "1.25"),
    "nova-lite": ("0.06", "0.24", "0.015", None),
    "llama-3-70b": ("0.72", "0.72", None, None),
    "text-embedding-3-small": ("0.02", None, None, None),
}
SAVED_QUERIES = {
    "demo/errors-by-model": (
        "filter status = 'ERROR' | stats count(*) as errors by modelId, errorCode "
        "| sort errors desc",
        "Failed calls by model and error code",
    ),
    "demo/tokens-by-application": (
        "stats sum(input.inputTokenCount) as input, sum(output.outputTokenCount) as output "
        "by requestMetadata.application_name | sort output desc",
        "Input and output tokens per application",
    ),
    "demo/slow-calls": (
        "fields @timestamp, modelId, latencyMs, requestMetadata.application_name "
        "| filter latencyMs > 3000 | sort latencyMs desc | limit 50",
        "Calls slower than 3 s",
    ),
    "demo/ab-test": (
        "filter ispresent(requestMetadata.variant) | stats count(*) as calls, "
        "avg(latencyMs) as avg_latency, avg(output.outputTokenCount) as avg_output "
        "by requestMetadata.variant",
        "The support bot's prompt A/B test",
    ),
}
# name, dimension, value, limit as a multiple of what was spent this month
BUDGETS = (
    ("demo-claims-cost-center", "requestMetadata.cost_center", "CC-3100", Decimal("1.08")),
    ("demo-support-bot", "requestMetadata.application_name", "support-bot", Decimal("3")),
    ("demo-tenant-acme", "requestMetadata.tenant_id", "acme", Decimal("1.7")),
)


class Api:
    """JSON calls to the server's management API."""

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")

    def call(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            self.url + path, data=data, method=method, headers={"content-type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=120) as response:
            return json.loads(response.read())


def ensure_profiles(api: Api) -> dict[str, dict[str, Any]]:
    """The demo's profiles by name (``inferenceProfileArn``, tags), created when missing."""
    listed = api.call("GET", "/api/profiles?typeEquals=APPLICATION&maxResults=1000")
    have = {p["inferenceProfileName"]: p for p in listed.get("inferenceProfileSummaries", [])}
    out = {}
    for profile in PROFILES:
        if profile.name in have:
            arn = have[profile.name]["inferenceProfileArn"]
            path = "/api/profiles/" + urllib.parse.quote(arn, safe="") + "/tags"
            tags = {t["key"]: t["value"] for t in api.call("GET", path).get("tags", [])}
        else:
            body = {
                "inferenceProfileName": profile.name,
                "description": f"llmtrail demo: {profile.name}",
                "modelSource": {"copyFrom": profile.copy_from},
                "tags": [{"key": k, "value": v} for k, v in profile.tags],
            }
            arn = api.call("POST", "/api/profiles", body)["inferenceProfileArn"]
            tags = dict(profile.tags)
        out[profile.name] = {"arn": arn, "tags": tags}
    return out


def put_prices(api: Api) -> None:
    keys = ("input_mtok", "output_mtok", "cache_read_mtok", "cache_write_mtok")
    for model, rates in PRICES.items():
        api.call(
            "PUT",
            "/api/prices",
            {
                "id": f"demo-sim-{model}",
                "provider": "sim",
                "model": model,
                "prices": {k: v for k, v in zip(keys, rates, strict=True) if v is not None},
                "effective_from": "2024-01-01",
                "note": "llmtrail demo: the sim model priced like the model it stands for",
            },
        )


def put_saved_queries(api: Api) -> None:
    for name, (query, description) in SAVED_QUERIES.items():
        path = "/api/saved-queries/" + urllib.parse.quote(name, safe="/")
        api.call("PUT", path, {"queryString": query, "description": description})


def put_budgets(api: Api) -> list[dict[str, Any]]:
    """The budgets, each limit sized from what its records cost this month."""
    out = []
    for name, dimension, value, multiple in BUDGETS:
        body = {"name": name, "dimension": dimension, "value": value, "action": "notify"}
        first = api.call("PUT", "/api/budgets", {**body, "limitUsd": "1000000"})
        spent = Decimal(first.get("spentUsd") or "0")
        cents = Decimal("0.01") if spent >= 10 else Decimal("0.0001")
        limit = max(cents, (spent * multiple).quantize(cents, ROUND_UP))
        out.append(api.call("PUT", "/api/budgets", {**body, "limitUsd": str(limit)}))
    return out


def readable(exc: Exception) -> str:
    if isinstance(exc, urllib.error.HTTPError):
        try:
            detail = json.loads(exc.read()).get("detail", "")
        except (ValueError, AttributeError):
            detail = ""
        return f"HTTP {exc.code} {detail}".strip()
    return str(exc)
