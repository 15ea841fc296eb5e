"""The llmtrail Python SDK: traces of agents, sent to an llmtrail server as OpenTelemetry spans.

    from llmtrail import sdk

    sdk.configure(url="http://127.0.0.1:7788", app="support-bot")

    @sdk.agent
    def answer(question: str) -> str:
        docs = search(question)                      # a @sdk.retrieval span
        return client.chat.completions.create(...)   # the gateway's record joins the trace

Built to be light and harmless: it imports only the standard library and orjson (never the
server, the stores, aiohttp or OpenTelemetry), records spans in a ``ContextVar``, and sends
them as OTLP/HTTP JSON from one daemon thread through a bounded queue, so an app never waits
for, or fails because of, its observability. See ``docs/sdk.md``.
"""

from llmtrail.sdk.decorators import (
    SpanDecorator,
    agent,
    embedding,
    llm,
    retrieval,
    task,
    tool,
    workflow,
)
from llmtrail.sdk.ids import IdGenerator, RandomIds, format_traceparent, parse_traceparent
from llmtrail.sdk.lifecycle import configure, flush, shutdown, stats
from llmtrail.sdk.propagation import instrument_boto3, outgoing_headers
from llmtrail.sdk.scope import span
from llmtrail.sdk.spans import (
    SPAN_KINDS,
    FinishedSpan,
    Span,
    annotate,
    current_span,
    current_traceparent,
)

__all__ = [
    "SPAN_KINDS",
    "FinishedSpan",
    "IdGenerator",
    "RandomIds",
    "Span",
    "SpanDecorator",
    "agent",
    "annotate",
    "configure",
    "current_span",
    "current_traceparent",
    "embedding",
    "flush",
    "format_traceparent",
    "instrument_boto3",
    "llm",
    "outgoing_headers",
    "parse_traceparent",
    "retrieval",
    "shutdown",
    "span",
    "stats",
    "task",
    "tool",
    "workflow",
]
