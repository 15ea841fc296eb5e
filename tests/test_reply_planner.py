"""``sim`` and the local test upstreams plan their replies with one planner and one prompt
cache (`llmtrail.capture.gateway.providers.sim.plan`): given the same voice, the built-in
``sim`` provider and a test upstream answer the same request with the same text, tool call,
stop reason and token counts, and a repeated cached prefix is a cache write then a cache read
on both. The upstreams are real servers on 127.0.0.1; ``sim`` is the provider the gateway
runs, called through its `Provider` interface."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import closing
from typing import Any

import boto3
import httpx
import orjson
import pytest
from botocore.config import Config

from llmtrail.capture.gateway.providers.base import UpstreamRequest
from llmtrail.capture.gateway.providers.sim import SimProvider
from llmtrail.capture.gateway.providers.sim.plan import SimVoice
from llmtrail.config import ProviderConfig
from llmtrail.testing.anthropic_upstream import AnthropicUpstream
from llmtrail.testing.bedrock_upstream import BedrockUpstream
from llmtrail.testing.openai_upstream import OpenAIUpstream

MODEL = "claude-sim"
LONG = "You answer questions about the weather in European cities, briefly. " * 30
WEATHER = {
    "name": "get_weather",
    "description": "Current weather for a city",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
        "required": ["city", "days"],
    },
}


def sim_answer(provider: SimProvider, wire_format: str, path: str, body: dict[str, Any]) -> Any:
    request = UpstreamRequest(wire_format, path, body, model=MODEL)
    response = asyncio.run(provider.send(request))
    assert response.status == 200 and response.body is not None
    return orjson.loads(response.body)


@pytest.fixture
def sim() -> SimProvider:
    return SimProvider(ProviderConfig(name="sim", type="sim"))


# -- Anthropic Messages ----------------------------------------------------------------------


@pytest.fixture
def anthropic_upstream() -> Iterator[AnthropicUpstream]:
    with AnthropicUpstream(voice=SimVoice(MODEL)) as up:
        yield up


def upstream_message(upstream: AnthropicUpstream, body: dict[str, Any]) -> Any:
    headers = {"x-api-key": "sk-ant-test", "anthropic-version": "2023-06-01"}
    response = httpx.post(upstream.url + "/v1/messages", json=body, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def planned(message: dict[str, Any]) -> dict[str, Any]:
    """What the planner decided in a Messages answer: everything but the ids."""
    content = [{k: v for k, v in b.items() if k != "id"} for b in message["content"]]
    return {"content": content, "stop_reason": message["stop_reason"], "usage": message["usage"]}


def test_a_cached_prefix_is_written_then_read_with_the_same_counts(
    sim: SimProvider, anthropic_upstream: AnthropicUpstream
) -> None:
    system = [{"type": "text", "text": LONG, "cache_control": {"type": "ephemeral"}}]
    answers = []
    for question in ("What is the weather like in Lisbon?", "And in Oslo?"):
        body = {
            "model": MODEL,
            "max_tokens": 400,
            "system": system,
            "messages": [{"role": "user", "content": question}],
        }
        from_sim = planned(sim_answer(sim, "anthropic", "/v1/messages", body))
        assert from_sim == planned(upstream_message(anthropic_upstream, body))
        answers.append(from_sim)
    first, second = (a["usage"] for a in answers)
    assert first["cache_creation_input_tokens"] > 200 and first["cache_read_input_tokens"] == 0
    assert second["cache_read_input_tokens"] == first["cache_creation_input_tokens"]
    assert second["cache_creation_input_tokens"] == 0
    assert answers[0]["content"] != answers[1]["content"]  # the text follows the prompt


def test_an_agent_loop_plans_the_same_tool_call_and_answer(
    sim: SimProvider, anthropic_upstream: AnthropicUpstream
) -> None:
    messages: list[Any] = [{"role": "user", "content": "Use get_weather for 3 days in Rome"}]
    body = {"model": MODEL, "max_tokens": 300, "tools": [WEATHER], "messages": messages}
    first = sim_answer(sim, "anthropic", "/v1/messages", body)
    assert planned(first) == planned(upstream_message(anthropic_upstream, body))
    assert first["stop_reason"] == "tool_use"
    use = first["content"][-1]
    assert use["input"] == {"city": "Use get_weather for 3 days in Rome", "days": 3}
    result = {"type": "tool_result", "tool_use_id": use["id"], "content": "21C, clear"}
    messages += [
        {"role": "assistant", "content": first["content"]},
        {"role": "user", "content": [result]},
    ]
    second = sim_answer(sim, "anthropic", "/v1/messages", body)
    assert planned(second) == planned(upstream_message(anthropic_upstream, body))
    assert second["content"][0]["text"].startswith("The get_weather tool returned: 21C, clear.")


def test_max_tokens_cuts_the_same_answer(
    sim: SimProvider, anthropic_upstream: AnthropicUpstream
) -> None:
    body = {
        "model": MODEL,
        "max_tokens": 7,
        "messages": [{"role": "user", "content": "Tell me everything about logging."}],
    }
    from_sim = planned(sim_answer(sim, "anthropic", "/v1/messages", body))
    assert from_sim == planned(upstream_message(anthropic_upstream, body))
    assert from_sim["stop_reason"] == "max_tokens" and from_sim["usage"]["output_tokens"] <= 7


# -- OpenAI chat completions -----------------------------------------------------------------


def test_a_chat_completion_is_planned_the_same(sim: SimProvider) -> None:
    body = {
        "model": MODEL,
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Why do gateways record latency?"},
        ],
    }
    from_sim = sim_answer(sim, "openai", "/chat/completions", body)
    with OpenAIUpstream(voice=SimVoice(MODEL)) as upstream:
        answer = httpx.post(upstream.base_url + "/chat/completions", json=body).json()
    assert from_sim["usage"] == answer["usage"]
    assert from_sim["usage"]["prompt_tokens"] > 10
    choices = [from_sim["choices"][0], answer["choices"][0]]
    assert [c["finish_reason"] for c in choices] == ["stop", "stop"]
    assert choices[0]["message"]["content"] == choices[1]["message"]["content"]


# -- Bedrock Converse ------------------------------------------------------------------------


@pytest.fixture
def bedrock() -> Iterator[tuple[BedrockUpstream, Any]]:
    with BedrockUpstream(voice=SimVoice(MODEL)) as up:
        client = boto3.client(
            "bedrock-runtime",
            endpoint_url=up.endpoint_url,
            region_name="us-east-1",
            aws_access_key_id=up.access_key_id,
            aws_secret_access_key=up.secret_access_key,
            config=Config(retries={"total_max_attempts": 1}),
        )
        with closing(client):
            yield up, client


def test_converse_with_a_cache_point_is_planned_the_same(
    sim: SimProvider, bedrock: tuple[BedrockUpstream, Any]
) -> None:
    _, client = bedrock
    system = [{"text": LONG}, {"cachePoint": {"type": "default"}}]
    reads, writes = [], []
    for question in ("Weather in Porto?", "Weather in Bergen?"):
        messages = [{"role": "user", "content": [{"text": question}]}]
        from_sim = sim_answer(
            sim, "bedrock", f"/model/{MODEL}/converse", {"system": system, "messages": messages}
        )
        answer = client.converse(modelId=MODEL, system=system, messages=messages)
        assert from_sim["output"] == answer["output"]
        assert from_sim["stopReason"] == answer["stopReason"] == "end_turn"
        use, up_use = from_sim["usage"], answer["usage"]
        for key in ("inputTokens", "outputTokens", "totalTokens"):
            assert use[key] == up_use[key], key
        for key, seen in (("cacheReadInputTokens", reads), ("cacheWriteInputTokens", writes)):
            assert use.get(key, 0) == up_use[key], key
            seen.append(up_use[key])
    assert writes[0] == reads[1] > 200 and reads[0] == writes[1] == 0
