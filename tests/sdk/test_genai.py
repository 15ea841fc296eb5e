"""The pure mapping from a finished span to OpenTelemetry GenAI attributes, and the OTLP
``AnyValue`` encoding — data in, data out."""

from __future__ import annotations

import orjson

from llmtrail.sdk.genai import input_messages, response_facts, span_attributes
from llmtrail.sdk.otlp_json import any_value
from llmtrail.sdk.spans import ExceptionInfo, FinishedSpan


def finished(**fields: object) -> FinishedSpan:
    base: dict[str, object] = {
        "trace_id": "1" * 32,
        "span_id": "2" * 16,
        "parent_span_id": None,
        "name": "call",
        "kind": "llm",
        "start_ns": 1,
        "end_ns": 2,
    }
    base.update(fields)
    return FinishedSpan(**base)  # type: ignore[arg-type]


def test_kinds_name_their_operation() -> None:
    operations = {
        kind: span_attributes(finished(kind=kind)).get("gen_ai.operation.name")
        for kind in ("workflow", "agent", "tool", "task", "retrieval", "embedding", "llm")
    }
    assert operations == {
        "workflow": "invoke_workflow",
        "agent": "invoke_agent",
        "tool": "execute_tool",
        "task": None,
        "retrieval": "retrieval",
        "embedding": "embeddings",
        "llm": "chat",
    }
    assert span_attributes(finished(kind="agent", name="planner"))["gen_ai.agent.name"] == "planner"


def test_usage_keys_of_every_provider_map_to_the_conventions() -> None:
    attrs = span_attributes(
        finished(
            usage={
                "prompt_tokens": 1,
                "completion_tokens": 2,
                "cacheReadInputTokens": 3,
                "cache_creation_input_tokens": 4,
                "reasoning_tokens": 5,
                "total_tokens": 15,
            }
        )
    )
    assert {k: v for k, v in attrs.items() if "usage" in k} == {
        "gen_ai.usage.input_tokens": 1,
        "gen_ai.usage.output_tokens": 2,
        "gen_ai.usage.cache_read.input_tokens": 3,
        "gen_ai.usage.cache_creation.input_tokens": 4,
        "gen_ai.usage.reasoning.output_tokens": 5,
        "llmtrail.usage.total_tokens": 15,
    }


def test_an_openai_response_with_tool_calls() -> None:
    response = {
        "id": "chatcmpl-9",
        "model": "gpt-4o-2024",
        "choices": [
            {
                "message": {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "id": "call_1",
                            "type": "function",
                            "function": {"name": "weather", "arguments": '{"city":"Oslo"}'},
                        }
                    ],
                },
                "finish_reason": "tool_calls",
            }
        ],
        "usage": {
            "prompt_tokens": 9,
            "completion_tokens": 4,
            "prompt_tokens_details": {"cached_tokens": 2},
        },
    }
    arguments = {"model": "gpt-4o", "messages": [{"role": "system", "content": "be brief"}]}
    attrs = span_attributes(
        finished(input=orjson.dumps(arguments).decode(), output=orjson.dumps(response).decode())
    )
    assert attrs["gen_ai.request.model"] == "gpt-4o"
    assert attrs["gen_ai.response.model"] == "gpt-4o-2024"
    assert attrs["gen_ai.response.id"] == "chatcmpl-9"
    assert attrs["gen_ai.usage.input_tokens"] == 9
    assert attrs["gen_ai.usage.cache_read.input_tokens"] == 2
    assert attrs["gen_ai.response.finish_reasons"] == ["tool_calls"]
    assert orjson.loads(str(attrs["gen_ai.output.messages"])) == [
        {
            "role": "assistant",
            "parts": [
                {
                    "type": "tool_call",
                    "id": "call_1",
                    "name": "weather",
                    "arguments": {"city": "Oslo"},
                }
            ],
            "finish_reason": "tool_calls",
        }
    ]
    assert orjson.loads(str(attrs["gen_ai.input.messages"])) == [
        {"role": "system", "parts": [{"type": "text", "content": "be brief"}]}
    ]


def test_anthropic_and_converse_messages() -> None:
    anthropic_input = {
        "system": "be kind",
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "weather?"}]},
            {
                "role": "assistant",
                "content": [{"type": "tool_use", "id": "t1", "name": "w", "input": {}}],
            },
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "sun"}],
            },
        ],
    }
    assert [m["parts"][0]["type"] for m in input_messages(anthropic_input)] == [
        "text",
        "tool_call",
        "tool_call_response",
    ]
    attrs = span_attributes(finished(input=orjson.dumps(anthropic_input).decode()))
    assert attrs["gen_ai.system_instructions"] == '[{"type":"text","content":"be kind"}]'
    converse = {
        "output": {
            "message": {
                "role": "assistant",
                "content": [
                    {"text": "sunny"},
                    {"toolUse": {"toolUseId": "u", "name": "n", "input": {"a": 1}}},
                ],
            }
        },
        "stopReason": "tool_use",
        "usage": {"inputTokens": 5, "outputTokens": 6},
    }
    facts = response_facts(converse)
    assert facts["usage"] == {"inputTokens": 5, "outputTokens": 6}
    assert facts["messages"] == [
        {
            "role": "assistant",
            "parts": [
                {"type": "text", "content": "sunny"},
                {"type": "tool_call", "id": "u", "name": "n", "arguments": {"a": 1}},
            ],
            "finish_reason": "tool_use",
        }
    ]
    assert response_facts(12) == {}
    assert input_messages({"a": 1, "b": "x"}) == []


def test_explicit_values_win_and_errors_are_named() -> None:
    attrs = span_attributes(
        finished(
            kind="llm",
            model="explicit-model",
            usage={"input_tokens": 100},
            output='{"model":"from-response","usage":{"input_tokens":1}}',
            session_id="s",
            exception=ExceptionInfo("ValueError", "x", "tb", 3),
            status="ERROR",
            attributes={"gen_ai.request.temperature": 0.2},
        )
    )
    assert attrs["gen_ai.request.model"] == "explicit-model"
    assert attrs["gen_ai.response.model"] == "from-response"
    assert attrs["gen_ai.usage.input_tokens"] == 100
    assert attrs["session.id"] == "s"
    assert attrs["error.type"] == "ValueError"
    assert attrs["gen_ai.request.temperature"] == 0.2
    # a tool's output is not read as a model response
    tool = span_attributes(finished(kind="tool", output='{"model":"m","usage":{"input_tokens":1}}'))
    assert "gen_ai.response.model" not in tool and "gen_ai.usage.input_tokens" not in tool


def test_any_value_encoding() -> None:
    assert any_value("s") == {"stringValue": "s"}
    assert any_value(True) == {"boolValue": True}
    assert any_value(2**63) == {"stringValue": str(2**63)}
    assert any_value(-(2**63)) == {"intValue": str(-(2**63))}
    assert any_value(float("inf")) == {"doubleValue": "Infinity"}
    assert any_value([1, "a"]) == {
        "arrayValue": {"values": [{"intValue": "1"}, {"stringValue": "a"}]}
    }
    assert any_value({"k": 1}) == {"stringValue": '{"k":1}'}
