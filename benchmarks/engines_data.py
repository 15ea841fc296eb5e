"""Invocation records with realistic bodies for the engines benchmark (ingest and bytes).

Bytes per record mean something only on records shaped like real ones, so each record here is
what a gateway captures: Bedrock's ``ModelInvocationLog`` keys plus llmtrail's (latency, time
to first token, trace, cost), ``requestMetadata`` with the promoted keys and, on a tenth, a key
nobody promoted, and request and response bodies in the wire format of the model's provider
(Bedrock Converse or InvokeModel, OpenAI chat completions and embeddings, Anthropic messages):
a system prompt per application (the same text every time, as in real traffic), one to three
turns of user text, the answer, usage. Models, applications, tenants, users and errors are
`query_data`'s, with its weights.

The text is English-like: words drawn one at a time by their frequency in the docstrings of
Python's standard library (about 7,000 words). Having no grammar, it compresses a little
worse than real prose (a fair, not flattering, input for bytes per record). Lengths follow the
token counts (about four characters a token, long prompts cut at 6,000 characters).

Records are `InvocationRecord` objects made by `InvocationRecord.from_dict` as the ingest API
makes them, in time order over one day; the same ``seed`` gives the same records.
"""

from __future__ import annotations

import functools
import random
import re
import sysconfig
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import metrics_data
import query_data
from llmtrail.record import InvocationRecord

START = datetime(2026, 11, 22, tzinfo=UTC)
SPAN = timedelta(days=1)
MAX_PROMPT_CHARS = 6_000
MAX_ANSWER_CHARS = 4_000
QUESTION_OPENERS = ("Can you", "Please", "How do I", "Why does", "Summarise", "Explain", "List")


@functools.cache
def vocabulary() -> tuple[tuple[str, ...], tuple[int, ...]]:
    """Words of the standard library's docstrings and their cumulative counts."""
    counts: Counter[str] = Counter()
    for path in sorted(Path(sysconfig.get_paths()["stdlib"]).glob("*.py")):
        for doc in re.findall(r'"""(.*?)"""', path.read_text(errors="ignore"), re.S):
            counts.update(word.lower() for word in re.findall(r"[A-Za-z]{2,}", doc))
    words = tuple(sorted(counts, key=lambda w: (-counts[w], w)))
    total, cumulative = 0, []
    for word in words:
        total += counts[word]
        cumulative.append(total)
    return words, tuple(cumulative)


class Text:
    """Sentences of words drawn by frequency, from one seeded generator."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.words, self.weights = vocabulary()

    def chars(self, n: int) -> str:
        """About ``n`` characters of sentences."""
        out: list[str] = []
        size = 0
        while size < n:
            k = self.rng.randint(6, 22)
            words = self.rng.choices(self.words, cum_weights=self.weights, k=k)
            sentence = " ".join(words).capitalize() + self.rng.choice((".", ".", ".", "?", ":"))
            out.append(sentence)
            size += len(sentence) + 1
        return " ".join(out)


def _system_prompts(seed: int) -> dict[str, str]:
    """One system prompt per application, the same in every call it makes."""
    text = Text(random.Random(f"{seed}-system"))
    return {
        app: f"You are {app}, an assistant of ACME Corp. " + text.chars(200 + 40 * i)
        for i, app in enumerate(query_data.APPS)
    }


def _bodies(
    provider: str,
    operation: str,
    model: str,
    turns: list[str],
    system: str,
    answer: str | None,
    tokens: tuple[int, int],
    stop: str,
    latency: int,
    rng: random.Random,
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """The request body and (when it answered) the response body, as ``provider`` speaks."""
    tokens_in, tokens_out = tokens
    roles = ["user" if i % 2 == 0 else "assistant" for i in range(len(turns))]
    if operation == "Embeddings":
        request: dict[str, Any] = {"model": model, "input": turns[0], "encoding_format": "float"}
        usage = {"prompt_tokens": tokens_in, "total_tokens": tokens_in}
        return request, None if answer is None else {
            "object": "list",
            "model": model,
            "usage": usage,
        }
    response: dict[str, Any]
    if provider == "bedrock" and operation in ("Converse", "ConverseStream"):
        request = {
            "system": [{"text": system}],
            "messages": [
                {"role": r, "content": [{"text": t}]} for r, t in zip(roles, turns, strict=True)
            ],
            "inferenceConfig": {"maxTokens": 1024, "temperature": 0.5, "topP": 0.9},
        }
        response = {
            "output": {"message": {"role": "assistant", "content": [{"text": answer}]}},
            "stopReason": stop,
            "usage": {
                "inputTokens": tokens_in,
                "outputTokens": tokens_out,
                "totalTokens": tokens_in + tokens_out,
            },
            "metrics": {"latencyMs": latency},
        }
    elif provider == "bedrock":  # InvokeModel: the model's own body
        prompt = system + "\n\n" + "\n\n".join(turns)
        request = {"prompt": prompt, "max_gen_len": 1024, "temperature": 0.5}
        response = {
            "generation": answer,
            "prompt_token_count": tokens_in,
            "generation_token_count": tokens_out,
            "stop_reason": "stop",
        }
    elif provider == "anthropic" or operation == "Messages":
        request = {
            "model": model,
            "max_tokens": 1024,
            "system": system,
            "messages": [{"role": r, "content": t} for r, t in zip(roles, turns, strict=True)],
        }
        response = {
            "id": f"msg_{rng.getrandbits(96):024x}",
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [{"type": "text", "text": answer}],
            "stop_reason": stop,
            "usage": {"input_tokens": tokens_in, "output_tokens": tokens_out},
        }
    else:  # OpenAI chat completions
        request = {
            "model": model,
            "messages": [{"role": "system", "content": system}]
            + [{"role": r, "content": t} for r, t in zip(roles, turns, strict=True)],
            "temperature": 0.5,
        }
        response = {
            "id": f"chatcmpl-{rng.getrandbits(120):030x}",
            "object": "chat.completion",
            "created": 1763769600 + rng.randrange(86400),
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": answer},
                    "finish_reason": "stop" if stop == "end_turn" else "length",
                }
            ],
            "usage": {
                "prompt_tokens": tokens_in,
                "completion_tokens": tokens_out,
                "total_tokens": tokens_in + tokens_out,
            },
        }
    return request, None if answer is None else response


def make_records(count: int, seed: int = 1) -> list[InvocationRecord]:
    """``count`` records in time order over one day from `START`."""
    rng = random.Random(seed)
    text = Text(rng)
    systems = _system_prompts(seed)
    models = query_data.MODELS
    step = SPAN / max(count, 1)
    errors = query_data.ERRORS
    out = []
    for i in range(count):
        app_i = min(int(rng.paretovariate(1.1)) - 1, len(query_data.APPS) - 1)
        app = query_data.APPS[app_i]
        model_id, provider, resolved, ops, mean_out, per_token = rng.choices(
            models, weights=query_data.MODEL_WEIGHTS
        )[0]
        operation = rng.choice(ops)
        failed = rng.random() < query_data.ERROR_RATE
        embedding = operation == "Embeddings"
        turns_n = 1 if embedding else rng.choice((1, 1, 1, 2, 3))
        turns = [
            f"{rng.choice(QUESTION_OPENERS)} "
            + text.chars(min(int(rng.lognormvariate(5.6, 0.9)), MAX_PROMPT_CHARS))
            for _ in range(turns_n)
        ]
        system = systems[app]
        tokens_in = (len(system) + sum(len(t) for t in turns)) // 4
        tokens_out = 0 if embedding else max(1, int(rng.lognormvariate(0, 0.6) * mean_out))
        answer = None if failed else text.chars(min(tokens_out * 4, MAX_ANSWER_CHARS))
        if embedding and not failed:
            answer = ""
        latency = int(80 + tokens_out * per_token * rng.lognormvariate(0, 0.25))
        stop = rng.choices(query_data.STOP_REASONS, (0.85, 0.1, 0.05))[0]
        request, response = _bodies(
            provider,
            operation,
            resolved,
            turns,
            system,
            answer,
            (tokens_in, tokens_out),
            stop,
            latency,
            rng,
        )
        ts = START + step * i + timedelta(microseconds=rng.randrange(1000))
        tenant = min(int(rng.paretovariate(0.9)) - 1, query_data.TENANTS - 1)
        metadata = {
            "application_name": app,
            "tenant_id": query_data.TENANT_NAMES[tenant],
            "user_id": query_data.USER_NAMES[(tenant * 50 + rng.randrange(50)) % query_data.USERS],
            "team": query_data.TEAMS[query_data.APP_TEAM[app_i]],
            "cost_center": query_data.COST_CENTERS[query_data.APP_TEAM[app_i]],
            "environment": "staging" if rng.random() < 0.1 else "production",
        }
        if rng.random() < 0.1:
            metadata["feature"] = rng.choice(query_data.FEATURES)
        doc: dict[str, Any] = {
            "schemaType": "ModelInvocationLog",
            "schemaVersion": "1.0",
            "timestamp": ts.isoformat(timespec="microseconds").replace("+00:00", "Z"),
            "accountId": "123456789012",
            "identity": {"arn": f"arn:aws:iam::123456789012:role/{app}"},
            "region": rng.choices(query_data.REGIONS, (0.7, 0.2, 0.1))[0],
            "requestId": f"{rng.getrandbits(128):032x}",
            "operation": operation,
            "modelId": model_id,
            "requestMetadata": metadata,
            "input": {
                "inputContentType": "application/json",
                "inputBodyJson": request,
                "inputTokenCount": tokens_in,
                "cacheReadInputTokenCount": 0,
                "cacheWriteInputTokenCount": 0,
            },
            "output": {"outputContentType": "application/json"},
            "resolvedModelId": resolved,
            "latencyMs": latency,
        }
        rid = doc["requestId"]
        doc["requestId"] = f"{rid[:8]}-{rid[8:12]}-{rid[12:16]}-{rid[16:20]}-{rid[20:]}"
        if operation in query_data.STREAMING:
            doc["timeToFirstTokenMs"] = int(latency * rng.uniform(0.05, 0.3))
        if rng.random() < 0.5:
            doc["trace"] = {
                "traceId": f"{rng.getrandbits(128):032x}",
                "spanId": f"{rng.getrandbits(64):016x}",
            }
        if failed:
            code, status, message, _ = rng.choices(errors, [e[3] for e in errors])[0]
            doc["errorCode"] = code
            doc["error"] = {"type": code, "message": message, "httpStatus": status}
        else:
            doc["output"]["outputBodyJson"] = response
            doc["output"]["outputTokenCount"] = tokens_out
            doc["stopReason"] = stop
            price_in, price_out = metrics_data.PRICES[model_id]
            cost_in = round(tokens_in * price_in / 1e6, 9)
            cost_out = round(tokens_out * price_out / 1e6, 9)
            doc["cost"] = {
                "inputUsd": f"{cost_in:.9f}",
                "outputUsd": f"{cost_out:.9f}",
                "totalUsd": f"{cost_in + cost_out:.9f}",
                "priceVersion": "2026-11-01",
            }
        out.append(InvocationRecord.from_dict(doc, source="gateway", now=ts))
    return out
