"""End to end against a running server: inputs that used to leave a poisoned state.

- A 5-million-character prompt through every wire format (the official openai, anthropic and
  boto3 clients; upstream `sim`, and an OpenAI-format upstream that reports no usage so the
  gateway counts offline) gives an OK record with token counts and its body in the object
  store — not a 500, not a record without them. A body over ``limits.max_request_bytes`` is a
  413 in the route's own error shape.
- The same prompt arriving as an ingested record or an OTLP span keeps its body and counts.
- A gzip body of several members (``cat a.gz b.gz``) on ``POST /api/records``,
  ``POST /v1/traces`` and ``llmtrail ingest FILE.gz`` is read whole: every member's records
  are stored. Bytes after the last member are refused, naming the field, and the limit on
  the decompressed size holds across members.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import random
import subprocess
import sys
import time
import urllib.error
import uuid
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anthropic
import boto3
import botocore.exceptions
import httpx
import openai
import pytest
from botocore.config import Config
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans
from opentelemetry.proto.trace.v1.trace_pb2 import Span as PbSpan

from llmtrail.testing.openai_upstream import OpenAIUpstream
from tests.harness import ServerProcess

MAX_REQUEST_BYTES = 8_000_000  # raised from nothing: the default (32 MiB) would do as well
MAX_INGEST_BYTES = 16_000_000
PROMPT_CHARS = 5_000_000
# words that are one token each, with or without the space before them, in o200k_base
WORDS = ["the", "quick", "brown", "fox", "over", "a", "lazy", "dog", "while", "logging", "every",
         "model", "call", "with", "its", "cost"]  # fmt: skip
RECORD_WAIT_S = 120.0  # how long to wait for a record to be stored (not a timed assertion)


def prompt_of(chars: int, seed: int) -> str:
    """Exactly ``chars`` characters of `WORDS` drawn at random, one space between each."""
    rng = random.Random(seed)
    text = " ".join(rng.choice(WORDS) for _ in range(chars // 3))[: chars - 12]
    text = text[: text.rfind(" ")]
    rest = chars - len(text)  # filled with whole words: " a" is 2 characters, " over" 5
    return text + (" over" if rest % 2 else "") + " a" * ((rest - 5 * (rest % 2)) // 2)


PROMPT = prompt_of(PROMPT_CHARS, 1)
PROMPT_WORDS = len(PROMPT.split(" "))


def test_the_prompt_is_made_of_single_token_words() -> None:
    """What the counts below are checked against: one token per word, so a prompt of N words
    is N tokens plus each format's few tokens of message overhead."""
    with warnings.catch_warnings():  # bpe-openai loads its data with a deprecated importlib API
        warnings.filterwarnings("ignore", "open_binary is deprecated", DeprecationWarning)
        import bpe_openai

        encoding = bpe_openai.get_encoding("o200k_base")
    assert len(PROMPT) == PROMPT_CHARS and PROMPT_WORDS > 900_000
    for word in WORDS:
        assert len(encoding.encode_ordinary(word)) == len(encoding.encode_ordinary(" " + word)) == 1


class BigOpenAIUpstream(OpenAIUpstream):
    """The OpenAI-format fake, reading bodies as large as the gateway forwards."""

    client_max_size = 64 * 2**20


@pytest.fixture(scope="module")
def upstream() -> Iterator[OpenAIUpstream]:
    with BigOpenAIUpstream(response_bytes=300) as up:
        yield up


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, upstream: OpenAIUpstream
) -> Iterator[ServerProcess]:
    config = f"""
[providers.up]
type = "openai"
base_url = "{upstream.base_url}"

[[routes]]
match = "nousage"
provider = "up"

[limits]
max_request_bytes = {MAX_REQUEST_BYTES}
max_ingest_bytes = {MAX_INGEST_BYTES}
"""
    with ServerProcess(tmp_path_factory.mktemp("large") / "data", config=config) as proc:
        yield proc


def stored_object(server: ServerProcess, uri: str) -> bytes:
    """The decompressed bytes of an offloaded body, read from the data directory."""
    assert uri.startswith("s3://llmtrail/AWSLogs/") and uri.endswith(".json.gz")
    path = Path(server.data_dir) / "objects" / uri.removeprefix("s3://llmtrail/")
    return gzip.decompress(path.read_bytes())


def wait_for(server: ServerProcess, request_id: str) -> dict[str, Any]:
    return server.wait_for_record(request_id, timeout=RECORD_WAIT_S)


# -- one wire format each: (request id, input tokens, output tokens) as the client saw them ---

Call = Callable[[ServerProcess, str], tuple[str, int | None, int | None]]


def _openai(server: ServerProcess) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.url + "/v1", api_key="sk-x", max_retries=0, timeout=300)


def openai_chat(server: ServerProcess, prompt: str) -> tuple[str, int | None, int | None]:
    with _openai(server) as client:
        raw = client.chat.completions.with_raw_response.create(
            model="sim/large", messages=[{"role": "user", "content": prompt}]
        )
        usage = raw.parse().usage
    assert usage is not None
    return raw.headers["x-llmtrail-request-id"], usage.prompt_tokens, usage.completion_tokens


def openai_stream(server: ServerProcess, prompt: str) -> tuple[str, int | None, int | None]:
    with _openai(server) as client:
        raw = client.chat.completions.with_raw_response.create(
            model="sim/large",
            messages=[{"role": "user", "content": prompt}],
            stream=True,
            stream_options={"include_usage": True},
        )
        chunks = list(raw.parse())
    usage = chunks[-1].usage
    assert len(chunks) > 1 and usage is not None
    return raw.headers["x-llmtrail-request-id"], usage.prompt_tokens, usage.completion_tokens


def openai_upstream_without_usage(
    server: ServerProcess, prompt: str
) -> tuple[str, int | None, int | None]:
    with _openai(server) as client:
        raw = client.chat.completions.with_raw_response.create(
            model="nousage", messages=[{"role": "user", "content": prompt}]
        )
        assert raw.parse().usage is None  # the gateway counts both sides offline
    return raw.headers["x-llmtrail-request-id"], None, None


def _anthropic(server: ServerProcess) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=server.url, api_key="sk-x", max_retries=0, timeout=300)


def anthropic_messages(server: ServerProcess, prompt: str) -> tuple[str, int | None, int | None]:
    with _anthropic(server) as client:
        raw = client.messages.with_raw_response.create(
            model="sim/claude", max_tokens=200, messages=[{"role": "user", "content": prompt}]
        )
        usage = raw.parse().usage
    return raw.headers["x-llmtrail-request-id"], usage.input_tokens, usage.output_tokens


def anthropic_stream(server: ServerProcess, prompt: str) -> tuple[str, int | None, int | None]:
    with (
        _anthropic(server) as client,
        client.messages.stream(
            model="sim/claude", max_tokens=200, messages=[{"role": "user", "content": prompt}]
        ) as stream,
    ):
        usage = stream.get_final_message().usage
        request_id = stream.response.headers["x-llmtrail-request-id"]
    return request_id, usage.input_tokens, usage.output_tokens


@contextlib.contextmanager
def _bedrock(server: ServerProcess) -> Iterator[Any]:
    client = boto3.client(
        "bedrock-runtime",
        endpoint_url=server.url,
        region_name="us-east-1",
        aws_access_key_id="AKIALARGEINPUTS00001",
        aws_secret_access_key="large/inputs/secret",
        config=Config(retries={"max_attempts": 1}, read_timeout=300),
    )
    try:
        yield client
    finally:
        client.close()


def bedrock_converse(server: ServerProcess, prompt: str) -> tuple[str, int | None, int | None]:
    with _bedrock(server) as client:
        response = client.converse(
            modelId="sim/nova-lite", messages=[{"role": "user", "content": [{"text": prompt}]}]
        )
    usage = response["usage"]
    return response["ResponseMetadata"]["RequestId"], usage["inputTokens"], usage["outputTokens"]


def bedrock_converse_stream(
    server: ServerProcess, prompt: str
) -> tuple[str, int | None, int | None]:
    with _bedrock(server) as client:
        response = client.converse_stream(
            modelId="sim/nova-lite", messages=[{"role": "user", "content": [{"text": prompt}]}]
        )
        events = list(response["stream"])
    usage = next(e["metadata"]["usage"] for e in events if "metadata" in e)
    return response["ResponseMetadata"]["RequestId"], usage["inputTokens"], usage["outputTokens"]


CALLS: dict[str, Call] = {
    "openai": openai_chat,
    "openai-stream": openai_stream,
    "openai-upstream-without-usage": openai_upstream_without_usage,
    "anthropic": anthropic_messages,
    "anthropic-stream": anthropic_stream,
    "bedrock-converse": bedrock_converse,
    "bedrock-converse-stream": bedrock_converse_stream,
}


@pytest.mark.parametrize("kind", sorted(CALLS))
def test_a_5m_character_prompt_is_recorded_with_counts_and_its_body(
    server: ServerProcess, kind: str
) -> None:
    request_id, input_tokens, output_tokens = CALLS[kind](server, PROMPT)
    record = wait_for(server, request_id)
    assert record["status"] == "OK", record.get("error")
    counted_in = record["input"]["inputTokenCount"]
    counted_out = record["output"]["outputTokenCount"]
    # every word counted (a count of one chunk would be ~1% of this), plus message overhead
    assert PROMPT_WORDS <= counted_in <= PROMPT_WORDS + 20
    assert counted_out > 0
    if input_tokens is not None:  # what the client was told is what the record says
        assert (counted_in, counted_out) == (input_tokens, output_tokens)
    else:
        assert record["tokenCountEstimated"] is True
    assert "inputBodyJson" not in record["input"]  # offloaded, over 100 KB
    body = stored_object(server, record["input"]["inputBodyS3Path"])
    assert PROMPT.encode() in body


PAYLOAD_TOO_LARGE = f"is larger than the limit of {MAX_REQUEST_BYTES} bytes"


def test_a_prompt_over_max_request_bytes_is_a_413_in_each_routes_shape(
    server: ServerProcess,
) -> None:
    prompt = prompt_of(MAX_REQUEST_BYTES + 100_000, 2)
    with pytest.raises(openai.APIStatusError) as from_openai:
        openai_chat(server, prompt)
    assert from_openai.value.status_code == 413
    assert from_openai.value.body == {
        "message": f"body: {PAYLOAD_TOO_LARGE}",
        "type": "invalid_request_error",
        "param": "body",
        "code": "invalid_request_error",
    }
    with pytest.raises(anthropic.APIStatusError) as from_anthropic:
        anthropic_messages(server, prompt)
    assert from_anthropic.value.status_code == 413
    assert from_anthropic.value.body == {
        "type": "error",
        "error": {"type": "request_too_large", "message": f"body: {PAYLOAD_TOO_LARGE}"},
    }
    with pytest.raises(botocore.exceptions.ClientError) as from_bedrock:
        bedrock_converse(server, prompt)
    answer = from_bedrock.value.response
    assert answer["ResponseMetadata"]["HTTPStatusCode"] == 413
    assert answer["Error"] == {
        "Code": "ValidationException",
        "Message": f"body: {PAYLOAD_TOO_LARGE}",
    }


def test_a_5m_character_prompt_ingested_as_a_record_keeps_body_and_counts(
    server: ServerProcess,
) -> None:
    request_id = f"large-ingest-{uuid.uuid4()}"
    doc = {
        "requestId": request_id,
        "timestamp": "2026-11-23T10:00:00Z",
        "modelId": "gpt-4o-mini",
        "operation": "ChatCompletions",
        "input": {
            "inputBodyJson": {"messages": [{"role": "user", "content": PROMPT}]},
            "inputTokenCount": PROMPT_WORDS + 7,
        },
        "output": {"outputBodyJson": {"choices": []}, "outputTokenCount": 3},
    }
    answer = httpx.post(server.url + "/api/records", content=json.dumps(doc), timeout=300)
    assert answer.status_code == 200 and answer.json()["stored"] == 1, answer.text
    record = wait_for(server, request_id)
    assert record["input"]["inputTokenCount"] == PROMPT_WORDS + 7
    assert record["output"]["outputTokenCount"] == 3
    assert PROMPT.encode() in stored_object(server, record["input"]["inputBodyS3Path"])


# -- OTLP helpers ----------------------------------------------------------------------------


def _attribute(key: str, value: str | int) -> KeyValue:
    if isinstance(value, int):
        return KeyValue(key=key, value=AnyValue(int_value=value))
    return KeyValue(key=key, value=AnyValue(string_value=value))


def model_call_export(
    trace_id: str, span_id: str, prompt: str = "hello", input_tokens: int = 5
) -> ExportTraceServiceRequest:
    """An OTLP export of one GenAI chat span (a model call: it becomes a record)."""
    now = time.time_ns()
    attributes: dict[str, str | int] = {
        "gen_ai.operation.name": "chat",
        "gen_ai.system": "openai",
        "gen_ai.request.model": "gpt-4o-mini",
        "gen_ai.usage.input_tokens": input_tokens,
        "gen_ai.usage.output_tokens": 2,
        "gen_ai.input.messages": json.dumps([{"role": "user", "content": prompt}]),
    }
    span = PbSpan(
        trace_id=bytes.fromhex(trace_id),
        span_id=bytes.fromhex(span_id),
        name="chat gpt-4o-mini",
        kind=PbSpan.SPAN_KIND_CLIENT,
        start_time_unix_nano=now - 1_000_000,
        end_time_unix_nano=now,
        attributes=[_attribute(k, v) for k, v in attributes.items()],
    )
    return ExportTraceServiceRequest(
        resource_spans=[ResourceSpans(scope_spans=[ScopeSpans(spans=[span])])]
    )


def post_traces(
    server: ServerProcess, body: bytes, content_type: str, gzipped: bool = True
) -> httpx.Response:
    headers = {"content-type": content_type}
    if gzipped:
        headers["content-encoding"] = "gzip"
    return httpx.post(server.url + "/v1/traces", content=body, headers=headers, timeout=300)


def new_ids() -> tuple[str, str]:
    return uuid.uuid4().hex, uuid.uuid4().hex[:16]


def test_a_5m_character_prompt_in_an_otlp_span_keeps_body_and_counts(
    server: ServerProcess,
) -> None:
    trace_id, span_id = new_ids()
    export = model_call_export(trace_id, span_id, PROMPT, PROMPT_WORDS + 7)
    answer = post_traces(
        server, gzip.compress(export.SerializeToString()), "application/x-protobuf"
    )
    assert answer.status_code == 200, answer.content
    record = wait_for(server, f"otlp-{trace_id}-{span_id}")
    assert record["input"]["inputTokenCount"] == PROMPT_WORDS + 7
    assert record["output"]["outputTokenCount"] == 2
    assert PROMPT.encode() in stored_object(server, record["input"]["inputBodyS3Path"])


# -- multi-member gzip -----------------------------------------------------------------------


def ingest_line(request_id: str) -> bytes:
    doc = {"requestId": request_id, "timestamp": "2026-11-23T10:00:00Z", "modelId": "m"}
    return json.dumps(doc).encode() + b"\n"


def not_stored(server: ServerProcess, request_id: str) -> bool:
    try:
        server.get(f"/api/records/{request_id}")
    except urllib.error.HTTPError as exc:
        return exc.code == 404
    return False


@pytest.mark.parametrize("header", [True, False], ids=["content-encoding", "sniffed"])
def test_every_gzip_member_of_an_ingest_body_is_stored(server: ServerProcess, header: bool) -> None:
    first, second = f"member-1-{uuid.uuid4()}", f"member-2-{uuid.uuid4()}"
    body = gzip.compress(ingest_line(first)) + gzip.compress(ingest_line(second))
    headers = {"content-encoding": "gzip"} if header else {}
    answer = httpx.post(server.url + "/api/records", content=body, headers=headers, timeout=60)
    assert answer.status_code == 200, answer.text
    assert answer.json()["stored"] == 2
    assert wait_for(server, first)["requestId"] == first
    assert wait_for(server, second)["requestId"] == second


def test_bytes_after_the_last_gzip_member_are_refused_whole(server: ServerProcess) -> None:
    first, second = f"garbage-1-{uuid.uuid4()}", f"garbage-2-{uuid.uuid4()}"
    body = gzip.compress(ingest_line(first)) + gzip.compress(ingest_line(second)) + b"trailing"
    answer = httpx.post(
        server.url + "/api/records", content=body, headers={"content-encoding": "gzip"}
    )
    assert answer.status_code == 400
    problem = answer.json()
    assert problem["field"] == "body"
    assert "8 bytes after gzip member 2 that are not another gzip member" in problem["detail"]
    server.settle()
    assert not_stored(server, first) and not_stored(server, second)


def test_the_ingest_limit_holds_across_gzip_members(server: ServerProcess) -> None:
    half = gzip.compress(b" " * (MAX_INGEST_BYTES // 2 + 1))  # each alone is under the limit
    answer = httpx.post(
        server.url + "/api/records", content=half + half, headers={"content-encoding": "gzip"}
    )
    assert answer.status_code == 413
    assert answer.json()["field"] == "body"
    assert f"limit of {MAX_INGEST_BYTES} bytes" in answer.json()["detail"]


def test_every_gzip_member_of_an_otlp_protobuf_body_is_read(server: ServerProcess) -> None:
    (t1, s1), (t2, s2) = new_ids(), new_ids()
    # protobuf messages concatenated are one message with both requests' spans
    body = gzip.compress(model_call_export(t1, s1).SerializeToString()) + gzip.compress(
        model_call_export(t2, s2).SerializeToString()
    )
    answer = post_traces(server, body, "application/x-protobuf")
    assert answer.status_code == 200, answer.content
    assert wait_for(server, f"otlp-{t1}-{s1}")["trace"]["traceId"] == t1
    assert wait_for(server, f"otlp-{t2}-{s2}")["trace"]["traceId"] == t2


def test_an_otlp_json_body_split_across_gzip_members_is_read(server: ServerProcess) -> None:
    trace_id, span_id = new_ids()
    now = time.time_ns()
    span = {
        "traceId": trace_id,  # OTLP/JSON: ids in hex, times as strings
        "spanId": span_id,
        "name": "chat gpt-4o-mini",
        "kind": 3,
        "startTimeUnixNano": str(now - 1_000_000),
        "endTimeUnixNano": str(now),
        "attributes": [
            {"key": "gen_ai.operation.name", "value": {"stringValue": "chat"}},
            {"key": "gen_ai.system", "value": {"stringValue": "openai"}},
            {"key": "gen_ai.request.model", "value": {"stringValue": "gpt-4o-mini"}},
            {"key": "gen_ai.usage.input_tokens", "value": {"intValue": "5"}},
        ],
    }
    text = json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": [span]}]}]}).encode()
    cut = len(text) // 2  # a shipper that flushes a member mid-document
    body = gzip.compress(text[:cut]) + gzip.compress(text[cut:])
    answer = post_traces(server, body, "application/json")
    assert answer.status_code == 200, answer.text
    record = wait_for(server, f"otlp-{trace_id}-{span_id}")
    assert record["input"]["inputTokenCount"] == 5


def test_bytes_after_the_last_gzip_member_of_an_otlp_body_are_refused(
    server: ServerProcess,
) -> None:
    trace_id, span_id = new_ids()
    body = gzip.compress(model_call_export(trace_id, span_id).SerializeToString()) + b"\n\n"
    answer = post_traces(server, body, "application/json")
    assert answer.status_code == 400
    status = answer.json()
    assert status["code"] == 3  # INVALID_ARGUMENT
    (detail,) = status["details"]
    assert detail["fieldViolations"][0]["field"] == "body"
    assert "2 bytes after gzip member 1" in detail["fieldViolations"][0]["description"]
    server.settle()
    assert not_stored(server, f"otlp-{trace_id}-{span_id}")


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "llmtrail", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=dict(os.environ),
    )


def test_cli_ingest_reads_every_member_of_a_gzip_file(
    server: ServerProcess, tmp_path: Path
) -> None:
    first, second = f"cli-1-{uuid.uuid4()}", f"cli-2-{uuid.uuid4()}"
    source = tmp_path / "logs.json.gz"  # what `cat a.json.gz b.json.gz` makes
    source.write_bytes(gzip.compress(ingest_line(first)) + gzip.compress(ingest_line(second)))
    done = run_cli("ingest", str(source), "--url", server.url)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["stored"] == 2
    assert wait_for(server, first) and wait_for(server, second)


def test_cli_ingest_refuses_a_gzip_file_with_trailing_bytes(
    server: ServerProcess, tmp_path: Path
) -> None:
    request_id = f"cli-garbage-{uuid.uuid4()}"
    source = tmp_path / "broken.json.gz"
    source.write_bytes(gzip.compress(ingest_line(request_id)) + b"not gzip")
    done = run_cli("ingest", str(source), "--url", server.url)
    assert done.returncode == 1
    assert "file: has 8 bytes after gzip member 1 that are not another gzip member" in done.stderr
    assert not_stored(server, request_id)
