"""Real traffic for the web UI's tests: gateway calls to ``sim`` through the official
clients (metadata in the body and the ``x-llmtrail-metadata`` header, a session-only call,
an agent turn with a tool call, a failing model), records ingested with ``POST
/api/records`` in Bedrock Converse shape, and an OTLP trace whose workflow and tool spans
wrap a gateway call."""

from __future__ import annotations

import json
import secrets
import time
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import anthropic
import openai
import pytest

from tests.harness import ServerProcess, call

APPS = ("web-app-a", "web-app-b")
TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}


@dataclass
class Traffic:
    """What was sent, to find it again on the pages."""

    trace_id: str = ""
    tool_input: str = ""
    tool_output: str = ""
    session_only: str = ""
    ingested_trace: str = ""
    request_ids: list[str] = field(default_factory=list)


def _otlp_value(value: Any) -> dict[str, Any]:
    return {"stringValue": value}


def _span(
    trace: str,
    span: str,
    parent: str,
    name: str,
    kind: str,
    start: int,
    end: int,
    attrs: dict[str, str],
) -> dict[str, Any]:
    return {
        "traceId": trace,
        "spanId": span,
        "parentSpanId": parent,
        "name": name,
        "kind": 1,
        "startTimeUnixNano": str(start),
        "endTimeUnixNano": str(end),
        "attributes": [
            {"key": "openinference.span.kind", "value": _otlp_value(kind)},
            *({"key": k, "value": _otlp_value(v)} for k, v in attrs.items()),
        ],
    }


def send_otlp(url: str, spans: list[dict[str, Any]], service: str) -> None:
    body = {
        "resourceSpans": [
            {
                "resource": {
                    "attributes": [{"key": "service.name", "value": _otlp_value(service)}]
                },
                "scopeSpans": [{"scope": {"name": "tests.web"}, "spans": spans}],
            }
        ]
    }
    request = urllib.request.Request(
        url + "/v1/traces",
        data=json.dumps(body).encode(),
        headers={"content-type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        assert answer.status == 200, answer.read()


def converse_record(index: int, trace_id: str, now: datetime) -> dict[str, Any]:
    """An imported Bedrock Converse record with a tool round trip in its bodies."""
    return {
        "schemaType": "ModelInvocationLog",
        "schemaVersion": "1.0",
        "timestamp": (now - timedelta(minutes=5, seconds=index)).isoformat(),
        "requestId": f"web-ingested-{trace_id[:8]}-{index}",
        "operation": "Converse",
        "modelId": "anthropic.claude-3-haiku-20240307-v1:0",
        "requestMetadata": {"application_name": APPS[1], "cost_center": "cc-7"},
        "input": {
            "inputContentType": "application/json",
            "inputBodyJson": {
                "system": [{"text": "You are terse."}],
                "messages": [
                    {"role": "user", "content": [{"text": "Weather in Oslo?"}]},
                    {
                        "role": "assistant",
                        "content": [
                            {
                                "toolUse": {
                                    "toolUseId": "tu-1",
                                    "name": "get_weather",
                                    "input": {"city": "Oslo"},
                                }
                            }
                        ],
                    },
                    {
                        "role": "user",
                        "content": [
                            {
                                "toolResult": {
                                    "toolUseId": "tu-1",
                                    "content": [{"json": {"celsius": -3}}],
                                }
                            }
                        ],
                    },
                ],
            },
            "inputTokenCount": 40 + index,
        },
        "output": {
            "outputContentType": "application/json",
            "outputBodyJson": {
                "output": {"message": {"role": "assistant", "content": [{"text": "-3 °C."}]}},
                "stopReason": "end_turn",
            },
            "outputTokenCount": 5 + index,
        },
        "latencyMs": 300 + index,
        "trace": {"traceId": trace_id, "spanId": secrets.token_hex(8)},
    }


def fill(server: ServerProcess) -> Traffic:
    """Send everything, wait until it is stored, and say what was sent."""
    traffic = Traffic()
    now = datetime.now(UTC)
    client = openai.OpenAI(base_url=server.url + "/v1", api_key="sk-test", max_retries=0)
    with client:
        for i in range(6):
            answer = client.chat.completions.create(
                model="sim/echo",
                messages=[{"role": "user", "content": f"Summarise ticket {i}"}],
                metadata={"application_name": APPS[i % 2], "cost_center": f"cc-{i % 3}"},
            )
            traffic.request_ids.append(answer.id)
        traffic.session_only = "web-session-" + secrets.token_hex(4)
        for i in range(2):
            client.chat.completions.create(
                model="sim/echo",
                messages=[{"role": "user", "content": f"Session turn {i}"}],
                extra_headers={
                    "x-llmtrail-session-id": traffic.session_only,
                    "x-llmtrail-metadata": json.dumps({"application_name": APPS[0]}),
                },
            )
        with pytest.raises(openai.InternalServerError):
            client.chat.completions.create(
                model="sim/error-500", messages=[{"role": "user", "content": "fail"}]
            )
        # an agent: workflow span → tool span and a model call that asks for the tool
        trace, workflow, tool = secrets.token_hex(16), secrets.token_hex(8), secrets.token_hex(8)
        traffic.trace_id = trace
        start = time.time_ns()
        client.chat.completions.create(
            model="sim/agent",
            messages=[{"role": "user", "content": "Please call get_weather for Paris"}],
            tools=[TOOL],  # type: ignore[list-item]
            metadata={"application_name": APPS[0]},
            extra_headers={"traceparent": f"00-{trace}-{workflow}-01"},
        )
        tool_start = time.time_ns()
        traffic.tool_input = json.dumps({"city": "Paris"})
        traffic.tool_output = json.dumps({"celsius": 21, "sky": "clear"})
        end = time.time_ns() + 5_000_000
    anthropic_client = anthropic.Anthropic(base_url=server.url, api_key="sk-test", max_retries=0)
    with anthropic_client:
        anthropic_client.messages.create(
            model="sim/claude",
            max_tokens=100,
            system="Be brief.",
            messages=[{"role": "user", "content": "Hello from Anthropic"}],
            metadata={"user_id": "u-1"},
        )
    send_otlp(
        server.url,
        [
            _span(
                trace,
                workflow,
                "",
                "handle-question",
                "CHAIN",
                start - 1_000_000,
                end,
                {"input.value": "Weather in Paris?", "output.value": "21 °C and clear"},
            ),
            _span(
                trace,
                tool,
                workflow,
                "get_weather",
                "TOOL",
                tool_start,
                end - 1_000_000,
                {"input.value": traffic.tool_input, "output.value": traffic.tool_output},
            ),
        ],
        "web-agent",
    )
    traffic.ingested_trace = secrets.token_hex(16)
    records = [converse_record(i, traffic.ingested_trace, now) for i in range(3)]
    status, answer = call(server.url, "POST", "/api/records", records)
    assert status == 200, answer
    server.settle()
    return traffic
