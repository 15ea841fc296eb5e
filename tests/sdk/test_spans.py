"""Spans recorded by the decorators and ``span()``: nesting, async, generators, exceptions,
annotate — checked in the OTLP JSON a real local server received."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncGenerator, Generator, Iterator
from typing import Any

import pytest

from llmtrail import sdk
from tests.sdk.collector import Collector
from tests.sdk.conftest import deterministic, exported

TRACE_1 = f"{1:032x}"


def by_name(spans: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {s["name"]: s for s in spans}


def test_a_call_is_one_whole_span(traced: Collector) -> None:
    @sdk.tool
    def add(a: int, b: int) -> int:
        return a + b

    assert add(1, b=2) == 3
    [span] = exported(traced)
    del span["attrs"], span["resource"]
    assert span == {
        "traceId": TRACE_1,
        "spanId": f"{1:016x}",
        "name": "test_a_call_is_one_whole_span.<locals>.add",
        "kind": 1,
        "startTimeUnixNano": "1000000000",
        "endTimeUnixNano": "1000001000",
        "attributes": [
            {"key": "llmtrail.span.kind", "value": {"stringValue": "tool"}},
            {"key": "gen_ai.operation.name", "value": {"stringValue": "execute_tool"}},
            {
                "key": "gen_ai.tool.name",
                "value": {"stringValue": "test_a_call_is_one_whole_span.<locals>.add"},
            },
            {"key": "llmtrail.input", "value": {"stringValue": '{"a":1,"b":2}'}},
            {"key": "llmtrail.output", "value": {"stringValue": "3"}},
        ],
        "status": {},
    }
    [post] = traced.trace_posts()
    resource = post.json()["resourceSpans"][0]["resource"]["attributes"]
    assert {"key": "service.name", "value": {"stringValue": "test-app"}} in resource


def test_nesting_follows_the_calls(traced: Collector) -> None:
    @sdk.retrieval(name="search")
    def search(query: str) -> list[str]:
        return [f"doc about {query}"]

    @sdk.llm(name="answer")
    def answer(query: str, docs: list[str]) -> str:
        return "42"

    @sdk.agent(name="planner")
    def plan(query: str) -> str:
        return answer(query, search(query))

    @sdk.workflow(name="handle")
    def handle(query: str) -> str:
        return plan(query)

    assert handle("life") == "42"
    spans = exported(traced)
    assert [s["name"] for s in spans] == ["search", "answer", "planner", "handle"]
    named = by_name(spans)
    assert {s["traceId"] for s in spans} == {TRACE_1}
    assert "parentSpanId" not in named["handle"]
    assert named["planner"]["parentSpanId"] == named["handle"]["spanId"]
    assert named["search"]["parentSpanId"] == named["planner"]["spanId"]
    assert named["answer"]["parentSpanId"] == named["planner"]["spanId"]
    kinds = {s["name"]: s["attrs"]["llmtrail.span.kind"] for s in spans}
    assert kinds == {
        "search": "retrieval",
        "answer": "llm",
        "planner": "agent",
        "handle": "workflow",
    }
    assert named["answer"]["kind"] == 3  # CLIENT: a model call
    assert named["search"]["attrs"]["llmtrail.output"] == '["doc about life"]'
    # a second call is a new trace
    handle("again")
    assert {s["traceId"] for s in exported(traced)} == {TRACE_1, f"{2:032x}"}


def test_async_functions_and_concurrent_tasks_nest(traced: Collector) -> None:
    @sdk.tool
    async def fetch(n: int) -> int:
        await asyncio.sleep(0)
        return n * 10

    @sdk.agent(name="gather")
    async def gather() -> list[int]:
        return list(await asyncio.gather(fetch(1), fetch(2)))

    assert inspect.iscoroutinefunction(gather)
    assert asyncio.run(gather()) == [10, 20]
    named = {(s["name"], s["attrs"].get("llmtrail.input")): s for s in exported(traced)}
    root = named[("gather", "{}")]
    for n in (1, 2):
        child = named[
            ("test_async_functions_and_concurrent_tasks_nest.<locals>.fetch", f'{{"n":{n}}}')
        ]
        assert child["parentSpanId"] == root["spanId"]
        assert child["attrs"]["llmtrail.output"] == str(n * 10)


def test_a_generator_span_covers_its_iteration_and_records_the_items(traced: Collector) -> None:
    seen_by_consumer: list[str | None] = []

    @sdk.tool(name="inner")
    def inner() -> str:
        return "x"

    @sdk.llm(name="stream")
    def stream(prompt: str) -> Iterator[str]:
        yield "Hel"
        yield inner() + "lo"

    @sdk.workflow(name="outer")
    def outer() -> str:
        text = ""
        for chunk in stream("hi"):
            span = sdk.current_span()
            seen_by_consumer.append(span.name if span else None)
            text += chunk
        return text

    assert inspect.isgeneratorfunction(stream)
    assert outer() == "Helxlo"
    assert seen_by_consumer == ["outer", "outer"]  # the generator's span is not the consumer's
    named = by_name(exported(traced))
    assert named["stream"]["parentSpanId"] == named["outer"]["spanId"]
    assert named["inner"]["parentSpanId"] == named["stream"]["spanId"]
    attrs = named["stream"]["attrs"]
    assert attrs["llmtrail.output"] == '["Hel","xlo"]'
    assert attrs["llmtrail.output.items"] == 2
    assert '"content":"Helxlo"' in attrs["gen_ai.output.messages"]
    assert named["stream"]["endTimeUnixNano"] < named["outer"]["endTimeUnixNano"]


def test_a_generator_closed_early_ends_its_span_and_send_passes_through(
    traced: Collector,
) -> None:
    @sdk.task(name="echo")
    def echo() -> Generator[int, int | None, None]:
        received = 0
        while True:
            got = yield received
            received = got if got is not None else received + 1

    gen = echo()
    assert next(gen) == 0
    assert gen.send(41) == 41
    assert next(gen) == 42
    gen.close()
    for _ in echo():
        break  # the abandoned generator is closed when collected
    closed, abandoned = exported(traced)
    assert closed["attrs"]["llmtrail.generator.closed_early"] is True
    assert closed["attrs"]["llmtrail.output"] == "[0,41,42]"
    assert closed["status"] == {}
    assert abandoned["attrs"]["llmtrail.generator.closed_early"] is True
    assert abandoned["attrs"]["llmtrail.output"] == "[0]"


def test_an_async_generator_span(traced: Collector) -> None:
    @sdk.llm(name="astream")
    async def astream(n: int) -> AsyncGenerator[int, None]:
        for i in range(n):
            await asyncio.sleep(0)
            yield i

    async def consume() -> tuple[list[int], int]:
        got = [i async for i in astream(3)]
        agen = astream(10)
        first = await agen.__anext__()
        await agen.aclose()
        return got, first

    assert inspect.isasyncgenfunction(astream)
    assert asyncio.run(consume()) == ([0, 1, 2], 0)
    full, closed = exported(traced)
    assert full["attrs"]["llmtrail.output"] == "[0,1,2]"
    assert "llmtrail.generator.closed_early" not in full["attrs"]
    assert closed["attrs"]["llmtrail.output"] == "[0]"
    assert closed["attrs"]["llmtrail.generator.closed_early"] is True


class QuotaExceeded(Exception):
    pass


def test_exceptions_are_recorded_and_reraised_unchanged(traced: Collector) -> None:
    error = QuotaExceeded("over the limit")

    @sdk.tool(name="charge")
    def charge() -> None:
        raise error

    @sdk.agent(name="shop")
    def shop() -> None:
        charge()

    with pytest.raises(QuotaExceeded) as caught:
        shop()
    assert caught.value is error
    named = by_name(exported(traced))
    for name in ("charge", "shop"):
        span = named[name]
        assert span["status"] == {
            "code": 2,
            "message": "tests.sdk.test_spans.QuotaExceeded: over the limit",
        }
        assert span["attrs"]["error.type"] == "tests.sdk.test_spans.QuotaExceeded"
        [event] = span["events"]
        assert event["name"] == "exception"
        details = {kv["key"]: kv["value"]["stringValue"] for kv in event["attributes"]}
        assert details["exception.type"] == "tests.sdk.test_spans.QuotaExceeded"
        assert details["exception.message"] == "over the limit"
        assert details["exception.stacktrace"].startswith("Traceback (most recent call last)")
        assert "in charge" in details["exception.stacktrace"]
        assert details["exception.stacktrace"].rstrip().endswith("QuotaExceeded: over the limit")


def test_errors_in_generators_and_async_code(traced: Collector) -> None:
    @sdk.task(name="fails_midway")
    def fails_midway() -> Iterator[int]:
        yield 1
        raise ValueError("midway")

    @sdk.task(name="afails")
    async def afails() -> None:
        raise KeyError("k")

    with pytest.raises(ValueError, match="midway"):
        list(fails_midway())
    with pytest.raises(KeyError):
        asyncio.run(afails())
    named = by_name(exported(traced))
    assert named["fails_midway"]["attrs"]["error.type"] == "ValueError"
    assert named["fails_midway"]["attrs"]["llmtrail.output"] == "[1]"
    assert named["afails"]["status"]["code"] == 2


def test_cancellation_is_not_an_error(traced: Collector) -> None:
    @sdk.task(name="slow")
    async def slow() -> None:
        await asyncio.sleep(3600)

    async def main() -> None:
        job = asyncio.ensure_future(slow())
        await asyncio.sleep(0)
        job.cancel()
        with pytest.raises(asyncio.CancelledError):
            await job

    asyncio.run(main())
    [span] = exported(traced)
    assert span["status"] == {}
    assert span["attrs"]["llmtrail.status"] == "CANCELLED"
    assert span["attrs"]["error.type"] == "asyncio.exceptions.CancelledError"


def test_annotate_sets_input_output_metadata_tags_usage_and_model(traced: Collector) -> None:
    @sdk.llm(name="call")
    def call(secret: str) -> str:
        assert sdk.annotate(
            input={"messages": [{"role": "user", "content": "hello"}]},
            metadata={"tenant": "acme", "attempt": 2, "extra": {"a": 1}},
            tags=["prod", "beta"],
            usage={"input_tokens": 11, "output_tokens": 7, "cache_read_input_tokens": 5},
            model="gpt-test",
        )
        sdk.annotate(output="explicit", tags=["prod"])
        return "returned"

    assert call("do not record") == "returned"
    assert not sdk.annotate(output="nowhere")  # outside any span
    [span] = exported(traced)
    attrs = span["attrs"]
    assert attrs["llmtrail.input"] == '{"messages":[{"role":"user","content":"hello"}]}'
    assert attrs["llmtrail.output"] == '"explicit"'
    assert attrs["llmtrail.tags"] == ["prod", "beta"]
    assert attrs["llmtrail.metadata.tenant"] == "acme"
    assert attrs["llmtrail.metadata.attempt"] == 2
    assert attrs["llmtrail.metadata.extra"] == '{"a":1}'
    assert attrs["gen_ai.request.model"] == "gpt-test"
    assert attrs["gen_ai.usage.input_tokens"] == 11
    assert attrs["gen_ai.usage.output_tokens"] == 7
    assert attrs["gen_ai.usage.cache_read.input_tokens"] == 5
    assert attrs["gen_ai.input.messages"] == (
        '[{"role":"user","parts":[{"type":"text","content":"hello"}]}]'
    )


def test_span_context_manager_sync_and_async(traced: Collector) -> None:
    with sdk.span("load", kind="retrieval", input={"q": 1}, tags=["t"]) as outer:
        assert sdk.current_span() is outer
        outer.annotate(output=["a"])
        outer.set_attribute("gen_ai.data_source.id", "kb")

        async def inner() -> str | None:
            async with sdk.span("think", kind="agent") as s:
                s.annotate(metadata={"step": "1"})
                return sdk.current_traceparent()

        traceparent = asyncio.run(inner())
    assert sdk.current_span() is None
    named = by_name(exported(traced))
    assert named["think"]["parentSpanId"] == named["load"]["spanId"]
    assert traceparent == f"00-{TRACE_1}-{named['think']['spanId']}-01"
    load = named["load"]["attrs"]
    assert load["llmtrail.input"] == '{"q":1}'
    assert load["llmtrail.output"] == '["a"]'
    assert load["gen_ai.data_source.id"] == "kb"
    assert load["llmtrail.tags"] == ["t"]
    with pytest.raises(ValueError, match="span kind must be one of"):
        sdk.span("x", kind="chain")


def test_traceparent_continues_a_remote_trace_and_sessions_are_inherited(
    collector: Collector,
) -> None:
    deterministic(collector, session_id="configured-session")
    remote = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    with (
        sdk.span("request", kind="workflow", traceparent=remote, session_id="user-7"),
        sdk.span("step"),
    ):
        pass
    with sdk.span("other"):
        pass
    named = by_name(exported(collector))
    assert named["request"]["traceId"] == "0af7651916cd43dd8448eb211c80319c"
    assert named["request"]["parentSpanId"] == "b7ad6b7169203331"
    assert named["step"]["traceId"] == "0af7651916cd43dd8448eb211c80319c"
    assert named["request"]["attrs"]["session.id"] == "user-7"
    assert named["step"]["attrs"]["session.id"] == "user-7"
    assert named["other"]["attrs"]["session.id"] == "configured-session"


def test_capture_switches_names_and_methods(traced: Collector) -> None:
    class Agent:
        @sdk.agent
        def run(self, task: str, **options: Any) -> str:
            return task.upper()

        @sdk.tool(capture_input=False, capture_output=False)
        def secret(self, password: str) -> str:
            return password

    agent = Agent()
    assert agent.run("go", fast=True) == "GO"
    assert agent.secret("hunter2") == "hunter2"
    assert Agent.run.__name__ == "run"
    named = by_name(exported(traced))
    run = named["test_capture_switches_names_and_methods.<locals>.Agent.run"]["attrs"]
    assert run["llmtrail.input"] == '{"task":"go","fast":true}'  # no self, kwargs flattened
    secret = named["test_capture_switches_names_and_methods.<locals>.Agent.secret"]["attrs"]
    assert "llmtrail.input" not in secret
    assert "llmtrail.output" not in secret


def test_values_are_bounded(collector: Collector) -> None:
    deterministic(collector, max_value_chars=50)

    @sdk.task(name="big")
    def big(text: str) -> str:
        return text

    @sdk.task(name="many")
    def many() -> Iterator[str]:
        for _ in range(100):
            yield "0123456789"

    big("x" * 500)
    assert len(list(many())) == 100
    named = by_name(exported(collector))
    attrs = named["big"]["attrs"]
    assert attrs["llmtrail.input"].startswith('{"text":"xxx')
    assert attrs["llmtrail.input"].endswith("…[truncated 461 chars]")
    assert attrs["llmtrail.input.truncated"] is True
    assert attrs["llmtrail.output.truncated"] is True
    items = named["many"]["attrs"]
    assert items["llmtrail.output"] == '["0123456789","0123456789","0123456789"]'
    assert items["llmtrail.output.items"] == 100
    assert items["llmtrail.output.truncated"] is True


def test_unconfigured_or_disabled_sdk_records_nothing(collector: Collector) -> None:
    @sdk.agent
    def work(n: int) -> int:
        assert sdk.current_traceparent() is None
        assert not sdk.annotate(output=1)
        return n + 1

    @sdk.task
    def gen() -> Iterator[int]:
        yield 1

    assert work(1) == 2
    assert list(gen()) == [1]
    with sdk.span("block") as s:
        s.annotate(output="ignored")
        assert not s.recording
    sdk.configure(url=collector.url, enabled=False)
    assert work(2) == 3
    assert sdk.flush() is True
    assert collector.requests == []
