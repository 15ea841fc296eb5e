"""The demo's calls in each wire format: a conversation of neutral `Turn`s becomes the HTTP
request an application would send (path, headers, JSON body), and an answer becomes the next
`Turn`.

Metadata and identity travel as each route takes them (DESIGN.md, *Metadata on each route*,
*Identity*): on Bedrock routes ``requestMetadata`` in the Converse body or InvokeModel's
``X-Amzn-Bedrock-Request-Metadata`` header and a SigV4 ``Authorization`` naming an access key
(claimed, as llmtrail records it: the demo signs nothing); on OpenAI and Anthropic routes the
``x-llmtrail-metadata`` header, or OpenAI's own body ``metadata`` and ``user``, and a bearer or
``x-api-key`` key of the application. Pure functions: the same turns give the same request,
which is how `history` renders the bodies the gateway would have logged.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from llmtrail.demo.cast import ROUTES, Tool

USER_AGENT = "llmtrail-demo/0.1"
ANTHROPIC_VERSION = "2023-06-01"
BEDROCK_ANTHROPIC_VERSION = "bedrock-2023-05-31"
MAX_TOKENS = 1024


@dataclass(frozen=True)
class Turn:
    """One message of a conversation, in no wire format: a user's or assistant's text, an
    assistant's tool call, or a tool's result."""

    role: str  # "user" | "assistant" | "tool"
    text: str = ""
    call_id: str = ""  # the tool call an assistant makes, or a tool result answers
    tool: str = ""
    arguments: dict[str, Any] = field(default_factory=dict)
    failed: bool = False  # a tool result that is an error


@dataclass(frozen=True)
class HttpRequest:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]


@dataclass(frozen=True)
class Request:
    """Everything a call needs besides the conversation."""

    route: str  # a key of cast.ROUTES
    model: str  # what the caller names: a model id or a profile ARN
    app: str
    metadata: dict[str, str]
    metadata_in_header: bool = True
    system: str = ""
    tools: tuple[Tool, ...] = ()
    sim: dict[str, int] = field(default_factory=dict)  # x-llmtrail-sim options
    session_id: str | None = None
    traceparent: str | None = None
    cache_system: bool = False  # Anthropic prompt caching of the system prompt


def http_request(req: Request, turns: list[Turn]) -> HttpRequest:
    """The request ``req`` sends with the conversation ``turns``."""
    wire, operation, stream = ROUTES[req.route]
    headers = {
        "content-type": "application/json",
        "accept": "*/*",
        "user-agent": f"{USER_AGENT} ({req.app})",
    }
    if req.sim:
        headers["x-llmtrail-sim"] = ",".join(f"{k}={v}" for k, v in sorted(req.sim.items()))
    if req.session_id:
        headers["x-llmtrail-session-id"] = req.session_id
    if req.traceparent:
        headers["traceparent"] = req.traceparent
    if wire == "bedrock":
        return _bedrock(req, turns, operation, stream, headers)
    if wire == "anthropic":
        headers["x-api-key"] = f"sk-ant-demo-{req.app}"
        headers["anthropic-version"] = ANTHROPIC_VERSION
        headers["x-llmtrail-metadata"] = json.dumps(req.metadata)
        return HttpRequest("/v1/messages", headers, _anthropic(req, turns, stream))
    headers["authorization"] = f"Bearer sk-demo-{req.app}"
    body: dict[str, Any]
    if operation == "Embeddings":
        body = {"model": req.model, "input": [t.text for t in turns if t.role == "user"]}
        path = "/v1/embeddings"
    else:
        body = {"model": req.model, "messages": _openai_messages(req.system, turns)}
        if req.tools:
            body["tools"] = [{"type": "function", "function": _function(t)} for t in req.tools]
        if stream:
            body.update(stream=True, stream_options={"include_usage": True})
        path = "/v1/chat/completions"
    if req.metadata_in_header:
        headers["x-llmtrail-metadata"] = json.dumps(req.metadata)
    else:
        body["metadata"] = {k: v for k, v in req.metadata.items() if k != "user_id"}
        body["user"] = req.metadata.get("user_id", "")
    return HttpRequest(path, headers, body)


def reply_turn(route: str, answer: Any) -> Turn:
    """The assistant's turn in a (non-stream) answer of ``route``'s wire format."""
    wire = ROUTES[route][0]
    if not isinstance(answer, dict):
        return Turn("assistant")
    if wire == "openai":
        message = (answer.get("choices") or [{}])[0].get("message") or {}
        for call in message.get("tool_calls") or []:
            function = call.get("function") or {}
            arguments = json.loads(function.get("arguments") or "{}")
            return Turn("assistant", "", call.get("id", ""), function.get("name", ""), arguments)
        return Turn("assistant", message.get("content") or "")
    blocks = answer.get("content")
    if wire == "bedrock":
        blocks = ((answer.get("output") or {}).get("message") or {}).get("content")
    text = []
    for block in blocks or []:
        if block.get("type") == "tool_use":
            return Turn("assistant", "", block["id"], block["name"], block.get("input") or {})
        if "toolUse" in block:
            use = block["toolUse"]
            return Turn("assistant", "", use["toolUseId"], use["name"], use.get("input") or {})
        if isinstance(block.get("text"), str):
            text.append(block["text"])
    return Turn("assistant", " ".join(text))


def _function(tool: Tool) -> dict[str, Any]:
    return {"name": tool.name, "description": tool.description, "parameters": _schema(tool)}


def _schema(tool: Tool) -> dict[str, Any]:
    properties = {tool.argument: {"type": "string", "description": tool.description}}
    return {"type": "object", "properties": properties, "required": [tool.argument]}


def _openai_messages(system: str, turns: list[Turn]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = [{"role": "system", "content": system}] if system else []
    for turn in turns:
        if turn.role == "tool":
            out.append({"role": "tool", "tool_call_id": turn.call_id, "content": turn.text})
        elif turn.tool:
            function = {"name": turn.tool, "arguments": json.dumps(turn.arguments)}
            call = {"id": turn.call_id, "type": "function", "function": function}
            out.append({"role": "assistant", "content": None, "tool_calls": [call]})
        else:
            out.append({"role": turn.role, "content": turn.text})
    return out


def _anthropic(req: Request, turns: list[Turn], stream: bool) -> dict[str, Any]:
    body: dict[str, Any] = {"model": req.model, "max_tokens": MAX_TOKENS}
    if req.system:
        block: dict[str, Any] = {"type": "text", "text": req.system}
        if req.cache_system:
            block["cache_control"] = {"type": "ephemeral"}
        body["system"] = [block]
    body["messages"] = _anthropic_messages(turns)
    if req.tools:
        body["tools"] = [
            {"name": t.name, "description": t.description, "input_schema": _schema(t)}
            for t in req.tools
        ]
    if stream:
        body["stream"] = True
    if "user_id" in req.metadata:
        body["metadata"] = {"user_id": req.metadata["user_id"]}
    return body


def _anthropic_messages(turns: list[Turn]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for turn in turns:
        if turn.role == "tool":
            result: dict[str, Any] = {
                "type": "tool_result",
                "tool_use_id": turn.call_id,
                "content": turn.text,
            }
            if turn.failed:
                result["is_error"] = True
            out.append({"role": "user", "content": [result]})
        elif turn.tool:
            use = {"type": "tool_use", "id": turn.call_id, "name": turn.tool}
            out.append({"role": "assistant", "content": [{**use, "input": turn.arguments}]})
        else:
            out.append({"role": turn.role, "content": turn.text})
    return out


def _bedrock(
    req: Request, turns: list[Turn], operation: str, stream: bool, headers: dict[str, str]
) -> HttpRequest:
    key = "AKIADEMO" + "".join(ch for ch in req.app.upper() if ch.isalpha())[:12]
    headers["authorization"] = (
        f"AWS4-HMAC-SHA256 Credential={key}/20260101/us-east-1/bedrock/aws4_request, "
        "SignedHeaders=content-type;host, Signature=" + "0" * 64
    )
    segment = quote(req.model, safe="")
    if operation.startswith("Converse"):
        body: dict[str, Any] = {"messages": _converse_messages(turns)}
        if req.system:
            body["system"] = [{"text": req.system}]
        body["inferenceConfig"] = {"maxTokens": MAX_TOKENS, "temperature": 0.2}
        if req.tools:
            specs = [
                {
                    "toolSpec": {
                        "name": t.name,
                        "description": t.description,
                        "inputSchema": {"json": _schema(t)},
                    }
                }
                for t in req.tools
            ]
            body["toolConfig"] = {"tools": specs}
        body["requestMetadata"] = dict(req.metadata)
        action = "converse-stream" if stream else "converse"
        return HttpRequest(f"/model/{segment}/{action}", headers, body)
    headers["x-amzn-bedrock-request-metadata"] = json.dumps(req.metadata)
    prompt = " ".join(t.text for t in turns if t.role == "user")
    if "llama" in req.model:
        body = {
            "prompt": "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\n"
            f"{prompt}<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n",
            "max_gen_len": 512,
            "temperature": 0.3,
        }
    else:
        body = {
            "anthropic_version": BEDROCK_ANTHROPIC_VERSION,
            "max_tokens": MAX_TOKENS,
            "messages": [{"role": "user", "content": [{"type": "text", "text": prompt}]}],
        }
        if req.system:
            body["system"] = req.system
    action = "invoke-with-response-stream" if stream else "invoke"
    return HttpRequest(f"/model/{segment}/{action}", headers, body)


def _converse_messages(turns: list[Turn]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for turn in turns:
        if turn.role == "tool":
            result: dict[str, Any] = {"toolUseId": turn.call_id, "content": [{"text": turn.text}]}
            if turn.failed:
                result["status"] = "error"
            out.append({"role": "user", "content": [{"toolResult": result}]})
        elif turn.tool:
            use = {"toolUseId": turn.call_id, "name": turn.tool, "input": turn.arguments}
            out.append({"role": "assistant", "content": [{"toolUse": use}]})
        else:
            out.append({"role": turn.role, "content": [{"text": turn.text}]})
    return out
