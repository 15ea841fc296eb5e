"""``traceparent`` on the official clients' calls made inside a span: openai and anthropic
(through httpx) and boto3 (botocore's ``before-send``), against a real local server that
records the headers it received."""

from __future__ import annotations

import asyncio
from typing import Any

import anthropic
import boto3
import botocore.session
import openai

from llmtrail import sdk
from tests.sdk.collector import Collector
from tests.sdk.conftest import deterministic, exported

MESSAGES: list[Any] = [{"role": "user", "content": "hi"}]


def expected_traceparent(span: dict[str, Any]) -> str:
    return f"00-{span['traceId']}-{span['spanId']}-01"


def test_openai_calls_inside_a_span_carry_its_traceparent(traced: Collector) -> None:
    with openai.OpenAI(base_url=traced.url + "/v1", api_key="sk-test", max_retries=0) as client:

        @sdk.llm(name="ask")
        def ask() -> Any:
            return client.chat.completions.create(model="gpt-test", messages=MESSAGES)

        answer = ask()
        client.chat.completions.create(model="gpt-test", messages=MESSAGES)  # outside any span
    assert answer.choices[0].message.content == "hi"
    inside, outside = traced.calls()
    span = exported(traced)[0]
    assert inside.headers["traceparent"] == expected_traceparent(span)
    assert "traceparent" not in outside.headers
    assert "x-llmtrail-session-id" not in inside.headers
    # the returned ChatCompletion told the span its model, usage, response id and messages
    attrs = span["attrs"]
    assert attrs["gen_ai.request.model"] == "gpt-test"
    assert attrs["gen_ai.response.id"] == "chatcmpl-1"
    assert (attrs["gen_ai.usage.input_tokens"], attrs["gen_ai.usage.output_tokens"]) == (3, 1)
    assert attrs["gen_ai.response.finish_reasons"] == ["stop"]


def test_async_openai_and_a_session(collector: Collector) -> None:
    deterministic(collector, session_id="session-42")

    async def main() -> None:
        async with openai.AsyncOpenAI(
            base_url=collector.url + "/v1", api_key="sk-test", max_retries=0
        ) as client:
            async with sdk.span("turn", kind="agent"):
                await client.chat.completions.create(model="gpt-test", messages=MESSAGES)
            await client.chat.completions.create(model="gpt-test", messages=MESSAGES)

    asyncio.run(main())
    inside, outside = collector.calls()
    span = exported(collector)[0]
    assert inside.headers["traceparent"] == expected_traceparent(span)
    assert inside.headers["x-llmtrail-session-id"] == "session-42"
    assert "traceparent" not in outside.headers
    assert "x-llmtrail-session-id" not in outside.headers  # nothing outside a span


def test_a_traceparent_the_caller_set_is_kept(traced: Collector) -> None:
    own = "00-11111111111111111111111111111111-2222222222222222-01"
    with (
        openai.OpenAI(base_url=traced.url + "/v1", api_key="sk-test", max_retries=0) as client,
        sdk.span("turn"),
    ):
        client.chat.completions.create(
            model="gpt-test", messages=MESSAGES, extra_headers={"traceparent": own}
        )
    [call] = traced.calls()
    assert call.headers["traceparent"] == own


def test_anthropic_calls_carry_the_traceparent(traced: Collector) -> None:
    with anthropic.Anthropic(base_url=traced.url, api_key="sk-ant-test", max_retries=0) as client:

        @sdk.llm(name="ask")
        def ask() -> Any:
            return client.messages.create(model="claude-test", max_tokens=10, messages=MESSAGES)

        message = ask()
    assert message.content[0].text == "hi"
    [call] = traced.calls()
    assert call.path == "/v1/messages"
    span = exported(traced)[0]
    assert call.headers["traceparent"] == expected_traceparent(span)
    attrs = span["attrs"]
    assert attrs["gen_ai.response.id"] == "msg_1"
    assert attrs["gen_ai.request.model"] == "claude-test"
    assert attrs["gen_ai.output.messages"] == (
        '[{"role":"assistant","parts":[{"type":"text","content":"hi"}],"finish_reason":"end_turn"}]'
    )


def bedrock_options(url: str) -> dict[str, Any]:
    return {
        "region_name": "us-east-1",
        "endpoint_url": url,
        "aws_access_key_id": "AKIDEXAMPLE",
        "aws_secret_access_key": "secret",
    }


def converse(client: Any) -> Any:
    return client.converse(
        modelId="anthropic.claude-test", messages=[{"role": "user", "content": [{"text": "hi"}]}]
    )


def test_boto3_clients_created_after_configure_carry_the_traceparent(
    traced: Collector,
) -> None:
    client = boto3.client("bedrock-runtime", **bedrock_options(traced.url))

    @sdk.llm(name="ask")
    def ask() -> Any:
        return converse(client)

    response = ask()
    converse(client)  # outside any span
    client.close()
    assert response["output"]["message"]["content"] == [{"text": "hi"}]
    inside, outside = traced.calls()
    assert inside.path == "/model/anthropic.claude-test/converse"
    assert inside.headers["authorization"].startswith("AWS4-HMAC-SHA256")
    span = exported(traced)[0]
    assert inside.headers["traceparent"] == expected_traceparent(span)
    assert "traceparent" not in outside.headers
    assert (
        span["attrs"]["gen_ai.usage.input_tokens"],
        span["attrs"]["gen_ai.usage.output_tokens"],
    ) == (3, 1)


def test_instrument_boto3_covers_a_client_created_before_configure(traced: Collector) -> None:
    unpatched = botocore.session.Session.create_client.__wrapped__
    client = unpatched(botocore.session.Session(), "bedrock-runtime", **bedrock_options(traced.url))
    with sdk.span("before"):
        converse(client)
    assert sdk.instrument_boto3(client) is client
    sdk.instrument_boto3(client)  # twice is once
    with sdk.span("after"):
        converse(client)
    client.close()
    before, after = traced.calls()
    assert "traceparent" not in before.headers
    spans = {s["name"]: s for s in exported(traced)}
    assert after.headers["traceparent"] == expected_traceparent(spans["after"])


def test_outgoing_headers_and_current_traceparent(collector: Collector) -> None:
    assert sdk.outgoing_headers() == {}
    deterministic(collector, session_id="s-1")
    assert sdk.outgoing_headers() == {}  # outside any span
    with sdk.span("a") as span:
        assert sdk.current_traceparent() == span.traceparent
        assert sdk.outgoing_headers() == {
            "traceparent": span.traceparent,
            "x-llmtrail-session-id": "s-1",
        }
        assert sdk.parse_traceparent(span.traceparent) == (span.trace_id, span.span_id, True)
    deterministic(collector, propagate=False)
    with sdk.span("b"):
        assert sdk.outgoing_headers() == {}
