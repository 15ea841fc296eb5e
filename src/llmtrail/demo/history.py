"""Past calls as the gateway would have recorded them, for ``POST /api/records``.

The gateway stamps each call with the time it happens, so days of history cannot go through
it; instead each planned call is rendered here into the record the gateway writes for the same
call answered by ``sim``: the request body the application sends (`wire`), the answer ``sim``
gives it (its own pure planners and renderers, so replies, tool calls and token counts are
what a live call gets), Bedrock's ``ModelInvocationLog`` keys and llmtrail's additions
(provider, resolvedModelId, latencyMs, timeToFirstTokenMs, stopReason, status, error, trace,
identity, inferenceProfile, allow-listed requestHeaders). Cost, characters, recordId,
workspace and source are left to the server, which derives them at ingest as it does for any
record (source ``ingest``: these records did not pass through the gateway).
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from llmtrail.capture.gateway.bedrock.models import error_code_for_status
from llmtrail.capture.gateway.call import RECORDED_HEADERS
from llmtrail.capture.gateway.providers.sim import anthropic_wire, bedrock_wire, openai_wire
from llmtrail.capture.gateway.providers.sim.plan import Reply, SimVoice, plan_reply
from llmtrail.capture.gateway.providers.sim.prompt_cache import PromptCache
from llmtrail.capture.tokens import count_tokens
from llmtrail.demo.cast import ROUTES, UNKNOWN_MODEL
from llmtrail.demo.wire import HttpRequest, Request, Turn, http_request
from llmtrail.record import SCHEMA_TYPE, SCHEMA_VERSION, format_timestamp

FAULT_STATUS = {"throttle": 429, "server_error": 500, "unknown_model": 404}
_OPENAI_ERRORS = {429: "rate_limit_exceeded"}


@dataclass(frozen=True)
class Account:
    """Where the server says it runs (from an inference profile's ARN), for the records'
    ``accountId`` and ``region``; None when unknown."""

    account_id: str | None = None
    region: str | None = None

    @classmethod
    def from_arn(cls, arn: str | None) -> Account:
        parts = (arn or "").split(":")
        return cls(parts[4], parts[3]) if len(parts) > 5 else cls()


@dataclass(frozen=True)
class Profiled:
    """A call that names an inference profile: the model behind it and the record's block."""

    model: str
    block: dict[str, Any]


def record(
    req: Request,
    turns: list[Turn],
    at: datetime,
    latency_ms: int,
    ttft_ms: int,
    words: int,
    fault: str | None,
    cache: PromptCache,
    account: Account,
    profile: Profiled | None = None,
    trace: dict[str, str] | None = None,
) -> tuple[dict[str, Any], Turn]:
    """The record of one past call and the assistant's turn it answered with."""
    http = http_request(req, turns)
    _, operation, stream = ROUTES[req.route]
    target = profile.model if profile else req.model
    doc: dict[str, Any] = {
        "schemaType": SCHEMA_TYPE,
        "schemaVersion": SCHEMA_VERSION,
        "timestamp": format_timestamp(at),
        "accountId": account.account_id,
        "region": account.region,
        "requestId": str(uuid.uuid4()),
        "operation": operation,
        "modelId": req.model,
        "identity": {"arn": _identity(http)},
        "requestMetadata": dict(req.metadata),
        "input": {"inputContentType": "application/json", "inputBodyJson": http.body},
        "output": {"outputContentType": "application/json"},
        "latencyMs": latency_ms,
        "trace": trace,
        "identityType": "sigv4_claimed" if ROUTES[req.route][0] == "bedrock" else "api_key_hash",
        "inferenceProfile": profile.block if profile else None,
        "requestHeaders": {k: v for k, v in http.headers.items() if k in RECORDED_HEADERS},
    }
    reply = Turn("assistant")
    status = FAULT_STATUS.get(fault or "")
    if status is not None:
        _failed(doc, req, status)
    else:
        upstream = target.split("/", 1)[1] if target.startswith("sim/") else target
        doc.update(provider="sim", resolvedModelId=upstream, status="OK")
        reply = _answered(doc, http, operation, upstream, words, cache, at)
        if stream:
            doc["timeToFirstTokenMs"] = ttft_ms
    return {k: v for k, v in doc.items() if v is not None}, reply


def _answered(
    doc: dict[str, Any],
    http: HttpRequest,
    operation: str,
    model: str,
    words: int,
    cache: PromptCache,
    at: datetime,
) -> Turn:
    body, inp, out = http.body, doc["input"], doc["output"]
    rid = hashlib.blake2b(doc["requestId"].encode(), digest_size=6).hexdigest()
    if operation == "Embeddings":
        count = sum(count_tokens(str(text), model) for text in body["input"])
        usage = {"prompt_tokens": count, "total_tokens": count}
        data = [{"object": "embedding", "index": i} for i in range(len(body["input"]))]
        out["outputBodyJson"] = {"object": "list", "model": model, "usage": usage, "data": data}
        inp["inputTokenCount"], out["outputTokenCount"] = count, 0
        return Turn("assistant")
    voice = SimVoice(model, words)
    if operation == "ChatCompletions":
        reply = plan_reply(openai_wire.conversation(body), voice, model=model, cache=cache)
        answer = openai_wire.completion(f"chatcmpl-sim{rid}", model, reply)
        answer["created"] = int(at.timestamp())
        inp["inputTokenCount"] = reply.usage.prompt_tokens
        out["outputTokenCount"] = reply.usage.output_tokens
        doc.update(responseId=answer["id"], stopReason=answer["choices"][0]["finish_reason"])
    elif operation == "Messages":
        reply = plan_reply(anthropic_wire.conversation(body), voice, model=model, cache=cache)
        answer = anthropic_wire.message(f"msg_sim{rid}", model, reply)
        inp["inputTokenCount"] = reply.usage.input_tokens
        inp["cacheReadInputTokenCount"] = reply.usage.cache_read
        inp["cacheWriteInputTokenCount"] = reply.usage.cache_write
        out["outputTokenCount"] = reply.usage.output_tokens
        doc.update(responseId=answer["id"], stopReason=answer["stop_reason"])
    elif operation.startswith("Converse"):
        conv = bedrock_wire.converse_conversation(body)
        reply = plan_reply(conv, voice, model=model, cache=cache)
        answer = bedrock_wire.converse(reply, doc["latencyMs"])
        inp["inputTokenCount"], out["outputTokenCount"] = (
            reply.usage.input_tokens,
            reply.usage.output_tokens,
        )
        doc["stopReason"] = answer["stopReason"]
    else:
        kind = bedrock_wire.family(body) or "anthropic"
        conv = bedrock_wire.invoke_conversation(kind, body)
        reply = plan_reply(conv, voice, model=model, cache=cache)
        answer = bedrock_wire.invoke(kind, f"msg_bdrk_sim{rid}", model, reply)
        inp["inputTokenCount"], out["outputTokenCount"] = (
            reply.usage.input_tokens,
            reply.usage.output_tokens,
        )
        doc["stopReason"] = answer.get("stop_reason") or answer.get("stopReason")
        if isinstance(answer.get("id"), str) and operation == "InvokeModel":
            doc["responseId"] = answer["id"]
    out["outputBodyJson"] = answer
    return _turn(reply)


def _turn(reply: Reply) -> Turn:
    call = reply.tool_call
    if call is None:
        return Turn("assistant", reply.text)
    return Turn("assistant", reply.text, call.id, call.name, call.input)


def _failed(doc: dict[str, Any], req: Request, status: int) -> None:
    wire = ROUTES[req.route][0]
    doc["status"] = "ERROR"
    doc["errorCode"] = error_code_for_status(status, None)
    if status == 404:
        message = f"The model `{UNKNOWN_MODEL}` does not exist or no route matches it"
        doc["error"] = {"type": "model_not_found", "message": message, "httpStatus": 404}
        return
    message = f"sim: injected error {status}"
    target = req.model.split("/", 1)[1] if req.model.startswith("sim/") else None
    doc.update(provider="sim", resolvedModelId=target)
    if wire == "anthropic":
        body = anthropic_wire.error(status, message)
        kind = body["error"]["type"]
    elif wire == "bedrock":
        kind, body = bedrock_wire.error(status, message)
    else:
        kind = _OPENAI_ERRORS.get(status, "server_error")
        body = {"error": {"message": message, "type": kind, "param": None, "code": kind}}
    doc["output"]["outputBodyJson"] = body
    doc["error"] = {"type": kind, "message": message, "httpStatus": status}


def _identity(http: HttpRequest) -> str:
    auth = http.headers.get("authorization", "")
    if auth.startswith("AWS4-HMAC-SHA256"):
        key = auth.split("Credential=", 1)[1].split("/", 1)[0]
        return f"llmtrail:aws-access-key/{key}"
    key = http.headers.get("x-api-key") or auth.removeprefix("Bearer ")
    return f"llmtrail:apikey/sha256:{hashlib.sha256(key.encode()).hexdigest()[:16]}"


def ndjson(docs: list[dict[str, Any]]) -> bytes:
    return "\n".join(json.dumps(d, separators=(",", ":")) for d in docs).encode()
