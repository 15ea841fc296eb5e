"""Bedrock model ids, InvokeModel bodies and streams per family, Converse, and error codes.

Payloads are golden files in ``tests/fixtures/bedrock``: ``invoke/`` (request, response,
headers, expected usage), ``stream/`` (decoded chunk JSON, expected assembled body and usage)
and ``converse/``, in the shapes AWS documents for each model family.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import MappingProxyType
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llmtrail.capture.gateway.bedrock.models import (
    ConverseStreamAssembler,
    StreamAssembler,
    converse_usage,
    error_code_for_status,
    guess_family,
    header_usage,
    invoke_usage,
)
from llmtrail.capture.gateway.usage import Usage
from llmtrail.model_ids import Arn, ModelRef, model_family, parse_model_id
from tests.test_anthropic_models import mutated

FIXTURES = Path(__file__).parent / "fixtures" / "bedrock"
INVOKE = sorted((FIXTURES / "invoke").glob("*.json"))
STREAMS = sorted((FIXTURES / "stream").glob("*.json"))
FAMILIES = ["anthropic", "amazon-nova", "amazon-titan-text", "meta-llama", "mistral", "cohere"]
FAMILIES += ["ai21", "deepseek", "unknown", "amazon-titan-embed", "cohere-embed", "openai"]


def load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    return data


# --- model ids ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "kind", "family", "base", "prefix"),
    [
        (
            "anthropic.claude-3-5-haiku-20241022-v1:0",
            "foundation-model",
            "anthropic",
            "anthropic.claude-3-5-haiku-20241022-v1:0",
            None,
        ),
        (
            "us.anthropic.claude-3-5-haiku-20241022-v1:0",
            "inference-profile",
            "anthropic",
            "anthropic.claude-3-5-haiku-20241022-v1:0",
            "us",
        ),
        (
            "eu.amazon.nova-lite-v1:0",
            "inference-profile",
            "amazon-nova",
            "amazon.nova-lite-v1:0",
            "eu",
        ),
        (
            "apac.amazon.nova-pro-v1:0",
            "inference-profile",
            "amazon-nova",
            "amazon.nova-pro-v1:0",
            "apac",
        ),
        (
            "jp.anthropic.claude-sonnet-4-5-20250929-v1:0",
            "inference-profile",
            "anthropic",
            "anthropic.claude-sonnet-4-5-20250929-v1:0",
            "jp",
        ),
        (
            "us-gov.anthropic.claude-3-haiku-20240307-v1:0",
            "inference-profile",
            "anthropic",
            "anthropic.claude-3-haiku-20240307-v1:0",
            "us-gov",
        ),
        (
            "global.anthropic.claude-sonnet-4-5-20250929-v1:0",
            "inference-profile",
            "anthropic",
            "anthropic.claude-sonnet-4-5-20250929-v1:0",
            "global",
        ),
        (
            "au.anthropic.claude-sonnet-4-5-20250929-v1:0",
            "inference-profile",
            "anthropic",
            "anthropic.claude-sonnet-4-5-20250929-v1:0",
            "au",
        ),
        (
            "meta.llama3-8b-instruct-v1:0",
            "foundation-model",
            "meta-llama",
            "meta.llama3-8b-instruct-v1:0",
            None,
        ),
        (
            "us.meta.llama3-2-1b-instruct-v1:0",
            "inference-profile",
            "meta-llama",
            "meta.llama3-2-1b-instruct-v1:0",
            "us",
        ),
        (
            "amazon.titan-text-express-v1",
            "foundation-model",
            "amazon-titan-text",
            "amazon.titan-text-express-v1",
            None,
        ),
        (
            "amazon.titan-tg1-large",
            "foundation-model",
            "amazon-titan-text",
            "amazon.titan-tg1-large",
            None,
        ),
        (
            "amazon.titan-embed-text-v2:0",
            "foundation-model",
            "amazon-titan-embed",
            "amazon.titan-embed-text-v2:0",
            None,
        ),
        (
            "amazon.nova-canvas-v1:0",
            "foundation-model",
            "amazon-nova-canvas",
            "amazon.nova-canvas-v1:0",
            None,
        ),
        (
            "mistral.mistral-large-2407-v1:0",
            "foundation-model",
            "mistral",
            "mistral.mistral-large-2407-v1:0",
            None,
        ),
        (
            "cohere.command-r-plus-v1:0",
            "foundation-model",
            "cohere",
            "cohere.command-r-plus-v1:0",
            None,
        ),
        (
            "cohere.embed-multilingual-v3",
            "foundation-model",
            "cohere-embed",
            "cohere.embed-multilingual-v3",
            None,
        ),
        ("ai21.jamba-1-5-mini-v1:0", "foundation-model", "ai21", "ai21.jamba-1-5-mini-v1:0", None),
        ("us.deepseek.r1-v1:0", "inference-profile", "deepseek", "deepseek.r1-v1:0", "us"),
        ("openai.gpt-oss-120b-1:0", "foundation-model", "openai", "openai.gpt-oss-120b-1:0", None),
        ("acme.secret-model-v1:0", "foundation-model", "unknown", "acme.secret-model-v1:0", None),
    ],
)
def test_model_ids_and_cross_region_ids(
    raw: str, kind: str, family: str, base: str, prefix: str | None
) -> None:
    assert parse_model_id(raw) == ModelRef(raw, kind, family, base, prefix)


def test_a_foundation_model_arn() -> None:
    raw = "arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-3-5-haiku-20241022-v1:0"
    ref = parse_model_id(raw)
    assert ref == ModelRef(
        raw=raw,
        kind="foundation-model",
        family="anthropic",
        base_model_id="anthropic.claude-3-5-haiku-20241022-v1:0",
        arn=Arn(
            "aws",
            "bedrock",
            "us-east-1",
            "",
            "foundation-model",
            "anthropic.claude-3-5-haiku-20241022-v1:0",
        ),
    )
    assert ref.provider == "anthropic"


def test_an_inference_profile_arn_names_its_model_and_geography() -> None:
    raw = (
        "arn:aws:bedrock:eu-west-1:123456789012:inference-profile/eu.meta.llama3-2-3b-instruct-v1:0"
    )
    ref = parse_model_id(raw)
    assert (ref.kind, ref.family, ref.base_model_id, ref.region_prefix) == (
        "inference-profile",
        "meta-llama",
        "meta.llama3-2-3b-instruct-v1:0",
        "eu",
    )
    assert ref.arn == Arn(
        "aws",
        "bedrock",
        "eu-west-1",
        "123456789012",
        "inference-profile",
        "eu.meta.llama3-2-3b-instruct-v1:0",
    )


def test_an_application_inference_profile_arn_hides_its_model() -> None:
    raw = "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/k3x9vq2m7z1p"
    ref = parse_model_id(raw)
    assert ref == ModelRef(
        raw=raw,
        kind="application-inference-profile",
        family="unknown",
        arn=Arn(
            "aws",
            "bedrock",
            "us-east-1",
            "123456789012",
            "application-inference-profile",
            "k3x9vq2m7z1p",
        ),
    )
    assert ref.provider is None


@pytest.mark.parametrize(
    ("raw", "kind", "family", "base"),
    [
        (
            "arn:aws-us-gov:bedrock:us-gov-west-1:123456789012:inference-profile/"
            "us-gov.anthropic.claude-3-haiku-20240307-v1:0",
            "inference-profile",
            "anthropic",
            "anthropic.claude-3-haiku-20240307-v1:0",
        ),
        (
            "arn:aws:bedrock:us-east-1:123456789012:provisioned-model/a1b2c3d4e5f6",
            "provisioned-model",
            "unknown",
            None,
        ),
        (
            "arn:aws:bedrock:us-east-1:123456789012:custom-model/"
            "amazon.titan-text-express-v1:0:8k/abc123def456",
            "custom-model",
            "amazon-titan-text",
            "amazon.titan-text-express-v1:0:8k",
        ),
        (
            "arn:aws:bedrock:us-east-1:123456789012:imported-model/a1b2c3d4e5f6",
            "imported-model",
            "unknown",
            None,
        ),
        ("arn:aws:bedrock:us-east-1:123456789012:prompt/PROMPT12345:1", "prompt", "unknown", None),
        (
            "arn:aws:bedrock:us-east-1:123456789012:default-prompt-router/anthropic.claude:1",
            "prompt-router",
            "anthropic",
            "anthropic.claude:1",
        ),
        (
            "arn:aws:sagemaker:us-east-1:123456789012:endpoint/my-endpoint",
            "sagemaker-endpoint",
            "unknown",
            None,
        ),
        ("arn:aws:s3:::bucket/key", "unknown", "unknown", None),
    ],
)
def test_other_arns(raw: str, kind: str, family: str, base: str | None) -> None:
    ref = parse_model_id(raw)
    assert (ref.kind, ref.family, ref.base_model_id) == (kind, family, base)


@pytest.mark.parametrize(
    "raw",
    [
        "",
        " ",
        "claude",
        "anthropic claude",
        "arn:aws",
        "arn:::::",
        "a" * 3000,
        "../etc/passwd",
        "us.",
        ".anthropic",
        "\x00",
    ],
)
def test_what_is_not_a_model_id_is_unknown(raw: str) -> None:
    ref = parse_model_id(raw)
    assert (ref.kind, ref.family, ref.region_prefix) == ("unknown", "unknown", None)
    assert ref.raw == raw


def test_model_family_from_base_ids_and_garbage() -> None:
    assert model_family("amazon.nova-micro-v1:0") == "amazon-nova"
    assert model_family("amazon.titan-image-generator-v2:0") == "amazon-titan-image"
    assert model_family("amazon.unheard-of-v1") == "unknown"
    assert model_family("anthropic") == "unknown"
    assert model_family(None) == "unknown"  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("body", "family"),
    [
        ({"anthropic_version": "bedrock-2023-05-31", "messages": []}, "anthropic"),
        ({"schemaVersion": "messages-v1", "messages": []}, "amazon-nova"),
        ({"messages": [], "inferenceConfig": {"maxTokens": 5}}, "amazon-nova"),
        ({"inputText": "hi", "textGenerationConfig": {}}, "amazon-titan-text"),
        ({"inputText": "hi", "dimensions": 256}, "amazon-titan-embed"),
        ({"texts": ["a"], "input_type": "search_query"}, "cohere-embed"),
        ({"message": "hi", "chat_history": []}, "cohere"),
        ({"prompt": "hi", "max_gen_len": 10}, "meta-llama"),
        ({"prompt": "hi"}, "unknown"),
        (None, "unknown"),
        (["not", "an", "object"], "unknown"),
    ],
)
def test_guess_family_from_request_bodies(body: Any, family: str) -> None:
    assert guess_family(body) == family


# --- InvokeModel bodies ------------------------------------------------------------------


@pytest.mark.parametrize("path", INVOKE, ids=[p.stem for p in INVOKE])
def test_invoke_usage_per_family(path: Path) -> None:
    case = load(path)
    family = parse_model_id(case["model_id"]).family
    usage = invoke_usage(family, case["request"], case["response"], case["headers"])
    assert usage == Usage(**case["expected"])


def test_body_counts_win_and_headers_fill_what_the_body_does_not_say() -> None:
    case = load(FIXTURES / "invoke" / "llama.json")
    headers = {
        "x-amzn-bedrock-input-token-count": "999",
        "x-amzn-bedrock-output-token-count": "9",
        "X-AMZN-BEDROCK-INVOCATION-LATENCY": "41",
    }
    usage = invoke_usage("meta-llama", case["request"], case["response"], headers)
    assert (usage.input_tokens, usage.output_tokens, usage.latency_ms) == (17, 7, 41)
    body = dict(case["response"], prompt_token_count=None)
    assert invoke_usage("meta-llama", None, body, MappingProxyType(headers)).input_tokens == 999


def test_a_body_in_another_shape_than_the_family_is_still_read() -> None:
    case = load(FIXTURES / "invoke" / "titan_text.json")
    usage = invoke_usage("anthropic", None, case["response"], {})
    assert (usage.input_tokens, usage.output_tokens, usage.text) == (9, 3, "\nBlue.")


def test_header_usage_reads_only_plain_non_negative_numbers() -> None:
    assert header_usage({}) == Usage()
    bad = {
        "X-Amzn-Bedrock-Input-Token-Count": "-1",
        "X-Amzn-Bedrock-Output-Token-Count": "1e3",
        "X-Amzn-Bedrock-Cache-Read-Input-Token-Count": "99999999999999999999",
        "X-Amzn-Bedrock-Cache-Write-Input-Token-Count": "٣",
        "X-Amzn-Bedrock-Invocation-Latency": " 12 ",
    }
    assert header_usage(bad) == Usage(latency_ms=12)
    assert header_usage(None) == Usage()  # type: ignore[arg-type]
    assert header_usage({"x-amzn-bedrock-input-token-count": 5}) == Usage()  # type: ignore[dict-item]


@pytest.mark.parametrize("family", FAMILIES)
def test_odd_invoke_bodies_give_unknown_counts_not_errors(family: str) -> None:
    headers = {"X-Amzn-Bedrock-Input-Token-Count": "3"}
    assert invoke_usage(family, None, None, {}) == Usage()
    assert invoke_usage(family, {}, {}, headers) == Usage(input_tokens=3)
    odd_bodies: list[Any] = [
        [],
        "text",
        5,
        {"usage": "lots", "content": 3, "type": "message"},
        {"output": {"message": "hi"}, "usage": {"inputTokens": -1}},
        {"results": [None, {"tokenCount": "x", "outputText": 5}], "inputTextTokenCount": True},
        {"generation": None, "prompt_token_count": 1.5},
        {"outputs": "no"},
        {"choices": [None, 3]},
        {"completions": [{"data": None}]},
        {"generations": [1], "text": 5},
        {"embedding": None, "inputTextTokenCount": "7"},
    ]
    for body in odd_bodies:
        usage = invoke_usage(family, body if isinstance(body, dict) else None, body, headers)
        assert usage.input_tokens in (3, 7)
        assert isinstance(usage.text, str)


# --- InvokeModelWithResponseStream -------------------------------------------------------


@pytest.mark.parametrize("path", STREAMS, ids=[p.stem for p in STREAMS])
def test_stream_assembles_the_non_stream_body(path: Path) -> None:
    case = load(path)
    family = parse_model_id(case["model_id"]).family
    assembler = StreamAssembler(family)
    for chunk in case["chunks"]:
        assembler.add(chunk)
    assert assembler.text == case["expected_text"]
    assert assembler.result() == case["expected_result"]
    assert assembler.usage() == Usage(**case["expected_usage"], text=case["expected_text"])
    assert not assembler.tool_input_malformed
    # the assembled body is in the family's non-stream shape: read as an InvokeModel body
    # it says the same as the stream did (only the invocation metrics are missing)
    plain = invoke_usage(family, None, assembler.result(), {})
    assert plain.text == case["expected_text"]
    assert plain.stop_reason == case["expected_usage"]["stop_reason"]
    orjson.dumps(assembler.result())


def test_invocation_metrics_fill_counts_the_stream_body_lacks() -> None:
    case = load(FIXTURES / "stream" / "mistral.json")
    assembler = StreamAssembler("mistral")
    for chunk in case["chunks"]:
        assembler.add(chunk)
    assert assembler.invocation_metrics == case["chunks"][-1]["amazon-bedrock-invocationMetrics"]
    assert assembler.result() == {"outputs": [{"text": " Lemon juice.", "stop_reason": "stop"}]}
    usage = assembler.usage()
    assert (usage.input_tokens, usage.output_tokens, usage.latency_ms) == (15, 3, 250)


def test_a_stream_cut_short_keeps_what_came() -> None:
    case = load(FIXTURES / "stream" / "anthropic_tool_use.json")
    assembler = StreamAssembler("anthropic")
    for chunk in case["chunks"][:8]:  # ends inside the tool's JSON
        assembler.add(chunk)
    tool = assembler.result()["content"][1]
    assert tool["input"] == '{"city": "San Fra'
    assert assembler.tool_input_malformed
    usage = assembler.usage()
    assert (usage.input_tokens, usage.output_tokens, usage.stop_reason) == (402, 1, None)
    assert usage.text == "Let me check the weather."


def test_odd_chunks_are_absorbed() -> None:
    odd: list[Any] = [
        None,
        [],
        "chunk",
        {},
        {"amazon-bedrock-invocationMetrics": "x"},
        {"p": "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQ"},
    ]
    for family in FAMILIES:
        assembler = StreamAssembler(family)
        for chunk in odd:
            assembler.add(chunk)
        assert assembler.result() == {}
        assert assembler.text == ""
        assert assembler.usage() == Usage()
    assembler = StreamAssembler("unknown")
    assembler.add(
        {"amazon-bedrock-invocationMetrics": {"inputTokenCount": 4, "outputTokenCount": -2}}
    )
    assert assembler.usage() == Usage(input_tokens=4)


def _chunks(family: str, pieces: list[str]) -> list[dict[str, Any]]:
    if family == "amazon-titan-text":
        return [{"outputText": p, "index": 0} for p in pieces]
    if family == "meta-llama":
        return [{"generation": p, "generation_token_count": i} for i, p in enumerate(pieces)]
    if family == "mistral":
        return [{"outputs": [{"text": p, "stop_reason": None}]} for p in pieces]
    if family == "amazon-nova":
        return [
            {"contentBlockDelta": {"delta": {"text": p}, "contentBlockIndex": 0}} for p in pieces
        ]
    if family == "cohere":
        return [{"event_type": "text-generation", "text": p, "is_finished": False} for p in pieces]
    if family == "ai21":
        return [{"choices": [{"index": 0, "delta": {"content": p}}]} for p in pieces]
    start = {"type": "message_start", "message": {"id": "m", "content": [], "usage": {}}}
    deltas = [
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": p}}
        for p in pieces
    ]
    return [
        start,
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        *deltas,
    ]


@settings(max_examples=60, deadline=None)
@given(
    st.sampled_from(
        ["anthropic", "amazon-nova", "amazon-titan-text", "meta-llama", "mistral", "cohere", "ai21"]
    ),
    st.lists(st.text(min_size=1, max_size=10), min_size=1, max_size=15),
)
def test_text_split_across_any_chunks_assembles_to_the_same_text(
    family: str, pieces: list[str]
) -> None:
    assembler = StreamAssembler(family)
    for chunk in _chunks(family, pieces):
        assembler.add(chunk)
    whole = "".join(pieces)
    assert assembler.text == whole
    assert assembler.usage().text == whole
    assert invoke_usage(family, None, assembler.result(), {}).text == whole


@pytest.mark.parametrize("family", FAMILIES)
def test_a_chunk_whose_type_is_not_a_string_never_raises(family: str) -> None:
    # found by the test below: {"type": [...]} reached a set lookup
    assembler = StreamAssembler(family)
    for chunk in ({"type": ["message_start"]}, {"type": {"a": 1}}, {"type": None}):
        assembler.add(chunk)
    orjson.dumps(assembler.result())
    assert isinstance(assembler.usage(), Usage)


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(STREAMS), st.sampled_from(FAMILIES), st.data())
def test_mutated_real_streams_never_raise(path: Path, family: str, data: st.DataObject) -> None:
    assembler = StreamAssembler(family)
    for chunk in mutated(data, load(path)["chunks"]):
        assembler.add(chunk)
    orjson.dumps(assembler.result())
    assert isinstance(assembler.usage(), Usage)
    assert isinstance(assembler.text, str)


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(INVOKE), st.sampled_from(FAMILIES), st.data())
def test_mutated_real_bodies_never_raise(path: Path, family: str, data: st.DataObject) -> None:
    case = load(path)
    request, response, headers = mutated(data, [case["request"], case["response"], case["headers"]])
    usage = invoke_usage(family, request, response, headers)
    for count in (usage.input_tokens, usage.output_tokens, usage.cache_read_tokens):
        assert count is None or isinstance(count, int)
    assert isinstance(usage.text, str)


# --- Converse and ConverseStream ---------------------------------------------------------


def test_converse_usage() -> None:
    case = load(FIXTURES / "converse" / "tool_use_response.json")
    assert converse_usage(case["response"]) == Usage(**case["expected"])
    assert converse_usage({}) == Usage()
    assert converse_usage("x") == Usage()  # type: ignore[arg-type]
    assert (
        converse_usage({"usage": [], "output": {"message": {"content": "x"}}, "metrics": 3})
        == Usage()
    )


def test_converse_stream_assembles_reasoning_text_and_tool_use() -> None:
    case = load(FIXTURES / "converse" / "stream_reasoning_tool_use.json")
    assembler = ConverseStreamAssembler()
    for event in case["events"]:
        assembler.add(event)
    assert assembler.text == case["expected_text"]
    assert assembler.result() == case["expected_result"]
    assert assembler.usage() == Usage(**case["expected_usage"])
    assert converse_usage(assembler.result()) == assembler.usage()
    assert not assembler.tool_input_malformed
    assert assembler.error_code is None


def test_converse_stream_fed_as_event_stream_messages_with_padding() -> None:
    case = load(FIXTURES / "converse" / "stream_reasoning_tool_use.json")
    assembler = ConverseStreamAssembler()
    for event in case["events"]:
        ((name, payload),) = event.items()
        assembler.add_event(name, {**payload, "p": "abcdefghijklmnopqrstuvwxyzABCDEF"})
    assert assembler.result() == case["expected_result"]


def test_a_converse_stream_cut_short_or_failing() -> None:
    case = load(FIXTURES / "converse" / "stream_reasoning_tool_use.json")
    assembler = ConverseStreamAssembler()
    for event in case["events"][:11]:  # ends inside the tool's JSON
        assembler.add(event)
    assembler.add(
        {"modelStreamErrorException": {"message": "Model stream failed", "originalStatusCode": 500}}
    )
    result = assembler.result()
    assert result["output"]["message"]["content"][2]["toolUse"]["input"] == '{"city": "Par'
    assert "stopReason" not in result and "usage" not in result
    assert assembler.tool_input_malformed
    assert (assembler.error_code, assembler.error_message) == (
        "ModelStreamErrorException",
        "Model stream failed",
    )
    assert assembler.usage() == Usage(text="Checking now.")


def test_converse_stream_redacted_reasoning_citations_and_odd_events() -> None:
    assembler = ConverseStreamAssembler()
    for event in [
        {"messageStart": {"role": "assistant"}},
        {
            "contentBlockDelta": {
                "delta": {"reasoningContent": {"redactedContent": b"\x00\x01"}},
                "contentBlockIndex": 0,
            }
        },
        {"contentBlockDelta": {"delta": {"text": "Paris"}, "contentBlockIndex": 1}},
        {
            "contentBlockDelta": {
                "delta": {"citation": {"title": "Atlas", "location": {}}},
                "contentBlockIndex": 1,
            }
        },
        {"contentBlockDelta": {"delta": {"toolUse": {"input": "{}"}}, "contentBlockIndex": 1}},
        {"contentBlockDelta": {"delta": {"text": 5}, "contentBlockIndex": 2}},
        {"contentBlockDelta": {"delta": {"text": "x"}, "contentBlockIndex": -1}},
        {"contentBlockStart": {"start": None, "contentBlockIndex": 3}},
        {"somethingNew": {"x": 1}},
        {"messageStop": "end_turn"},
        {"metadata": {"usage": {"inputTokens": "5", "outputTokens": None}}},
        None,
    ]:
        assembler.add(event)
    assert assembler.result() == {
        "output": {
            "message": {
                "role": "assistant",
                "content": [
                    {"reasoningContent": {"redactedContent": "AAE="}},
                    {
                        "citationsContent": {
                            "content": [{"text": "Paris"}],
                            "citations": [{"title": "Atlas", "location": {}}],
                        }
                    },
                ],
            }
        },
        "usage": {"inputTokens": "5", "outputTokens": None},
    }
    assert assembler.text == "Paris"
    assert assembler.usage() == Usage(input_tokens=5, text="Paris")
    orjson.dumps(assembler.result())


@settings(max_examples=100, deadline=None)
@given(st.lists(st.text(max_size=10), max_size=15), st.lists(st.integers(0, 30), max_size=5))
def test_converse_text_and_tool_input_split_anywhere(pieces: list[str], cuts: list[int]) -> None:
    arguments = {"query": "".join(pieces)[:20], "n": len(pieces)}
    raw = orjson.dumps(arguments).decode()
    points = sorted({min(c, len(raw)) for c in cuts})
    parts = [raw[a:b] for a, b in zip([0, *points], [*points, len(raw)], strict=True)]
    assembler = ConverseStreamAssembler()
    for piece in pieces:
        assembler.add({"contentBlockDelta": {"delta": {"text": piece}, "contentBlockIndex": 0}})
    start = {"toolUse": {"toolUseId": "t1", "name": "search"}}
    assembler.add({"contentBlockStart": {"start": start, "contentBlockIndex": 1}})
    for part in parts:
        assembler.add(
            {"contentBlockDelta": {"delta": {"toolUse": {"input": part}}, "contentBlockIndex": 1}}
        )
    assert assembler.text == "".join(pieces)
    content = assembler.result()["output"]["message"]["content"]
    assert content[-1] == {"toolUse": {"toolUseId": "t1", "name": "search", "input": arguments}}


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_mutated_real_converse_streams_never_raise(data: st.DataObject) -> None:
    case = load(FIXTURES / "converse" / "stream_reasoning_tool_use.json")
    assembler = ConverseStreamAssembler()
    for event in mutated(data, case["events"]):
        assembler.add(event)
    orjson.dumps(assembler.result())
    assert isinstance(assembler.usage(), Usage)
    (response,) = mutated(
        data, [load(FIXTURES / "converse" / "tool_use_response.json")["response"]]
    )
    assert isinstance(converse_usage(response).text, str)


# --- errors ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "error_type", "code"),
    [
        (
            400,
            "ValidationException:http://internal.amazon.com/coral/com.amazon.bedrock/",
            "ValidationException",
        ),
        (
            429,
            "ThrottlingException:http://internal.amazon.com/coral/com.amazon.bedrock/",
            "ThrottlingException",
        ),
        (403, "com.amazon.coral.service#AccessDeniedException", "AccessDeniedException"),
        (400, " ServiceQuotaExceededException ", "ServiceQuotaExceededException"),
        (424, "ModelErrorException", "ModelErrorException"),
        (429, "ModelNotReadyException", "ModelNotReadyException"),
        (400, None, "ValidationException"),
        (401, None, "AccessDeniedException"),
        (403, "", "AccessDeniedException"),
        (404, None, "ResourceNotFoundException"),
        (408, None, "ModelTimeoutException"),
        (424, None, "ModelErrorException"),
        (429, None, "ThrottlingException"),
        (500, None, "InternalServerException"),
        (503, None, "ServiceUnavailableException"),
        (504, None, "ModelTimeoutException"),
        (418, None, "ValidationException"),
        (502, "<html>", "InternalServerException"),
        (200, None, "InternalServerException"),
        (429, "a" * 500, "ThrottlingException"),
        (400, "Bad Type With Spaces", "ValidationException"),
    ],
)
def test_error_code_for_status(status: int, error_type: str | None, code: str) -> None:
    assert error_code_for_status(status, error_type) == code


def test_error_code_for_odd_arguments() -> None:
    assert error_code_for_status("429", None) == "InternalServerException"  # type: ignore[arg-type]
    assert error_code_for_status(True, 5) == "InternalServerException"  # type: ignore[arg-type]
