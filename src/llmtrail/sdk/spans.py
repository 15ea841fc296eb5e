"""Spans: the one being recorded (`Span`), the finished snapshot that is exported
(`FinishedSpan`), and which span is current.

The current span lives in a `contextvars.ContextVar`, so nesting follows the code's own
structure in threads and in asyncio tasks alike (a task started inside a span inherits it).
A `Span` is mutable while its code runs; `Span.end` freezes it into a `FinishedSpan`, a plain
value that the exporter's thread encodes later without touching the app's objects again.
Inputs and outputs are serialised to bounded JSON text the moment they are given (see
`payloads`), so the app may change or drop its objects afterwards.
"""

from __future__ import annotations

import traceback
from collections.abc import Mapping, Sequence
from contextvars import ContextVar, Token
from dataclasses import dataclass, field
from typing import Any, Final, Literal, Protocol

from llmtrail.sdk.ids import INVALID_SPAN_ID, INVALID_TRACE_ID, format_traceparent
from llmtrail.sdk.payloads import ItemCollector, bounded, json_text

SpanKind = Literal["workflow", "agent", "tool", "task", "retrieval", "embedding", "llm"]
SPAN_KINDS: Final = ("workflow", "agent", "tool", "task", "retrieval", "embedding", "llm")
Status = Literal["OK", "ERROR", "CANCELLED"]
AttributeValue = str | bool | int | float | Sequence[str] | Sequence[int] | Sequence[float]


class _Unset:
    def __repr__(self) -> str:
        return "UNSET"


UNSET: Final = _Unset()
"""Marks an `annotate` argument that was not given (None is a value one may record)."""


@dataclass(frozen=True, slots=True)
class ExceptionInfo:
    """An exception that ended or passed through a span."""

    type: str
    message: str
    stacktrace: str
    time_ns: int


@dataclass(frozen=True, slots=True)
class FinishedSpan:
    """A span as exported: plain values only, encoded to OTLP by `otlp_json`."""

    trace_id: str
    span_id: str
    parent_span_id: str | None
    name: str
    kind: SpanKind
    start_ns: int
    end_ns: int
    status: Status = "OK"
    session_id: str | None = None
    input: str | None = None
    output: str | None = None
    truncated: tuple[str, ...] = ()
    output_items: int | None = None
    model: str | None = None
    usage: Mapping[str, int] = field(default_factory=dict)
    metadata: Mapping[str, Any] = field(default_factory=dict)
    tags: tuple[str, ...] = ()
    attributes: Mapping[str, AttributeValue] = field(default_factory=dict)
    exception: ExceptionInfo | None = None


class SpanSink(Protocol):
    """What a span needs from its tracer: the time and a place to send itself when done."""

    def now_ns(self) -> int:
        """The current time in nanoseconds since the epoch."""
        ...

    def submit(self, span: FinishedSpan) -> None:
        """Queue a finished span for export; never blocks, never raises."""
        ...


def exception_type_name(exc: BaseException) -> str:
    """``ValueError`` for builtins, ``package.module.Class`` for everything else."""
    cls = type(exc)
    if cls.__module__ == "builtins":
        return cls.__qualname__
    return f"{cls.__module__}.{cls.__qualname__}"


def _message(exc: BaseException) -> str:
    try:
        return str(exc)
    except Exception:
        return f"<unprintable {type(exc).__name__}>"


class Span:
    """A span being recorded. Get the current one with `current_span`; change it with
    `annotate`; it ends when its decorator, generator or ``with`` block does."""

    __slots__ = (
        "_ended",
        "_exception",
        "_input",
        "_input_explicit",
        "_max_chars",
        "_output",
        "_output_explicit",
        "_output_items",
        "_sink",
        "_status",
        "_truncated",
        "attributes",
        "kind",
        "metadata",
        "model",
        "name",
        "parent_span_id",
        "session_id",
        "span_id",
        "start_ns",
        "tags",
        "trace_id",
        "usage",
    )

    def __init__(
        self,
        sink: SpanSink | None,
        *,
        name: str,
        kind: SpanKind,
        trace_id: str,
        span_id: str,
        parent_span_id: str | None,
        start_ns: int,
        session_id: str | None = None,
        max_chars: int = 32_768,
    ) -> None:
        self._sink = sink
        self.name = name
        self.kind: SpanKind = kind
        self.trace_id = trace_id
        self.span_id = span_id
        self.parent_span_id = parent_span_id
        self.start_ns = start_ns
        self.session_id = session_id
        self._max_chars = max_chars
        self._input: str | None = None
        self._output: str | None = None
        self._input_explicit = False
        self._output_explicit = False
        self._output_items: int | None = None
        self._truncated: set[str] = set()
        self._status: Status = "OK"
        self._exception: ExceptionInfo | None = None
        self._ended = False
        self.model: str | None = None
        self.usage: dict[str, int] = {}
        self.metadata: dict[str, Any] = {}
        self.tags: list[str] = []
        self.attributes: dict[str, AttributeValue] = {}

    @classmethod
    def inert(cls, name: str = "", kind: SpanKind = "task") -> Span:
        """A span that records nothing: what `span()` gives while the SDK is off."""
        return cls(
            None,
            name=name,
            kind=kind,
            trace_id=INVALID_TRACE_ID,
            span_id=INVALID_SPAN_ID,
            parent_span_id=None,
            start_ns=0,
        )

    @property
    def recording(self) -> bool:
        """Whether this span will be exported (False for inert and ended spans)."""
        return self._sink is not None and not self._ended

    @property
    def max_value_chars(self) -> int:
        """The most characters an input or output of this span keeps."""
        return self._max_chars

    @property
    def traceparent(self) -> str:
        """The W3C ``traceparent`` that makes a downstream call this span's child."""
        return format_traceparent(self.trace_id, self.span_id)

    def annotate(
        self,
        *,
        input: Any = UNSET,
        output: Any = UNSET,
        metadata: Mapping[str, Any] | None = None,
        tags: Sequence[str] | None = None,
        usage: Mapping[str, int] | None = None,
        model: str | None = None,
    ) -> None:
        """Set this span's input or output (winning over what its decorator captured), add
        metadata keys, tags and token usage (``input_tokens``, ``output_tokens``, …), and name
        the model."""
        if not self.recording:
            return
        if input is not UNSET:
            self._set_input(input, explicit=True)
        if output is not UNSET:
            self._set_output(output, explicit=True)
        if metadata:
            self.metadata.update(metadata)
        if tags:
            self.tags.extend(t for t in tags if t not in self.tags)
        if usage:
            self.usage.update(
                {k: v for k, v in usage.items() if isinstance(v, int) and not isinstance(v, bool)}
            )
        if model is not None:
            self.model = model

    def set_attribute(self, key: str, value: AttributeValue) -> None:
        """Set one raw OpenTelemetry attribute (e.g. ``gen_ai.request.temperature``)."""
        if self.recording:
            self.attributes[key] = value

    def record_exception(self, exc: BaseException) -> None:
        """Record ``exc`` (type, message, stack trace); an `Exception` makes the span an error,
        anything else (cancellation, exit) marks it cancelled."""
        if not self.recording or self._sink is None:
            return
        self._status = "ERROR" if isinstance(exc, Exception) else "CANCELLED"
        try:
            stacktrace = "".join(traceback.format_exception(exc))
        except Exception:
            stacktrace = ""
        self._exception = ExceptionInfo(
            type=exception_type_name(exc),
            message=bounded(_message(exc), self._max_chars)[0],
            stacktrace=bounded(stacktrace, self._max_chars)[0],
            time_ns=self._sink.now_ns(),
        )

    def capture_input(self, value: Any) -> None:
        """The input its decorator saw; ignored once `annotate` set one."""
        if self.recording and not self._input_explicit:
            self._set_input(value, explicit=False)

    def capture_output(self, value: Any) -> None:
        """The output its decorator saw; ignored once `annotate` set one."""
        if self.recording and not self._output_explicit:
            self._set_output(value, explicit=False)

    def capture_items(self, items: ItemCollector) -> None:
        """A generator's yielded items as its output; ignored once `annotate` set one."""
        if not self.recording or self._output_explicit:
            return
        self._output = items.text()
        self._output_items = items.count
        if items.truncated:
            self._truncated.add("output")

    def end(self) -> None:
        """Finish the span and hand it to the exporter; later calls do nothing."""
        if not self.recording or self._sink is None:
            return
        self._ended = True
        self._sink.submit(
            FinishedSpan(
                trace_id=self.trace_id,
                span_id=self.span_id,
                parent_span_id=self.parent_span_id,
                name=self.name,
                kind=self.kind,
                start_ns=self.start_ns,
                end_ns=self._sink.now_ns(),
                status=self._status,
                session_id=self.session_id,
                input=self._input,
                output=self._output,
                truncated=tuple(sorted(self._truncated)),
                output_items=self._output_items,
                model=self.model,
                usage=dict(self.usage),
                metadata=dict(self.metadata),
                tags=tuple(self.tags),
                attributes=dict(self.attributes),
                exception=self._exception,
            )
        )

    def _set_input(self, value: Any, *, explicit: bool) -> None:
        self._input, cut = bounded(json_text(value), self._max_chars)
        self._input_explicit = explicit
        self._mark("input", cut)

    def _set_output(self, value: Any, *, explicit: bool) -> None:
        self._output, cut = bounded(json_text(value), self._max_chars)
        self._output_explicit = explicit
        self._output_items = None
        self._mark("output", cut)

    def _mark(self, part: str, cut: bool) -> None:
        if cut:
            self._truncated.add(part)
        else:
            self._truncated.discard(part)


_CURRENT: ContextVar[Span | None] = ContextVar("llmtrail_current_span", default=None)


def current_span() -> Span | None:
    """The span the calling code runs in, or None outside any span."""
    return _CURRENT.get()


def enter_span(span: Span) -> Token[Span | None]:
    """Make ``span`` current; pass the token to `exit_span` to restore the previous one."""
    return _CURRENT.set(span)


def exit_span(token: Token[Span | None]) -> None:
    """Restore the span that was current before `enter_span`."""
    _CURRENT.reset(token)


def annotate(
    *,
    input: Any = UNSET,
    output: Any = UNSET,
    metadata: Mapping[str, Any] | None = None,
    tags: Sequence[str] | None = None,
    usage: Mapping[str, int] | None = None,
    model: str | None = None,
) -> bool:
    """`Span.annotate` on the current span; False (and nothing recorded) outside any span."""
    span = _CURRENT.get()
    if span is None or not span.recording:
        return False
    span.annotate(
        input=input, output=output, metadata=metadata, tags=tags, usage=usage, model=model
    )
    return True


def current_traceparent() -> str | None:
    """The ``traceparent`` header for a call made now (the current span as parent), or None
    outside any span."""
    span = _CURRENT.get()
    if span is None or not span.recording:
        return None
    return span.traceparent
