"""``@workflow``, ``@agent``, ``@tool``, ``@task``, ``@retrieval``, ``@embedding``, ``@llm``:
each call of the decorated function becomes a span of that kind.

One wrapper per shape of function, chosen once at decoration time, so that the wrapped
function keeps its shape (``inspect.iscoroutinefunction`` and friends still answer the
same): plain, ``async``, generator and async generator. A generator's span covers its whole
iteration — it ends when the generator is exhausted, raises or is closed — and is current
only while the generator's own code runs, never in the consumer's code between items; its
output is the list of yielded items, bounded. ``send``, ``throw`` and ``close`` are passed
through. Exceptions are recorded and re-raised unchanged. With no active tracer the span is
inert and the function runs as if undecorated.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import AsyncGenerator, Callable, Generator
from typing import Any, TypeVar, cast, overload

from llmtrail.sdk.payloads import ItemCollector, call_arguments, signature_of
from llmtrail.sdk.scope import check_kind, start_span
from llmtrail.sdk.spans import Span, SpanKind, enter_span, exit_span

F = TypeVar("F", bound=Callable[..., Any])


class SpanDecorator:
    """A decorator recording each call as a span of one kind; use it bare (``@tool``) or with
    options (``@tool(name="search", capture_input=False, capture_output=True)``)."""

    def __init__(self, kind: str) -> None:
        self.kind: SpanKind = check_kind(kind)
        self.__doc__ = (
            f"Record each call of the decorated function as a ``{kind}`` span named after it "
            "(or ``name``), its arguments as input and its result as output unless "
            "``capture_input``/``capture_output`` is False."
        )

    @overload
    def __call__(self, func: F, /) -> F: ...

    @overload
    def __call__(
        self,
        func: None = None,
        /,
        *,
        name: str | None = None,
        capture_input: bool = True,
        capture_output: bool = True,
    ) -> Callable[[F], F]: ...

    def __call__(
        self,
        func: F | None = None,
        /,
        *,
        name: str | None = None,
        capture_input: bool = True,
        capture_output: bool = True,
    ) -> F | Callable[[F], F]:
        def decorate(target: F) -> F:
            return instrument(
                target,
                self.kind,
                name=name or getattr(target, "__qualname__", None) or repr(target),
                capture_input=capture_input,
                capture_output=capture_output,
            )

        return decorate if func is None else decorate(func)

    def __repr__(self) -> str:
        return f"<llmtrail.sdk span decorator {self.kind!r}>"


def instrument(
    func: F, kind: SpanKind, *, name: str, capture_input: bool = True, capture_output: bool = True
) -> F:
    """``func`` wrapped so that each call is a ``kind`` span called ``name``."""
    signature = signature_of(func) if capture_input else None

    def begin(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Span:
        span = start_span(name, kind)
        if capture_input and span.recording:
            span.capture_input(call_arguments(signature, args, kwargs))
        return span

    if inspect.isasyncgenfunction(func):
        return cast(F, _async_generator_wrapper(func, begin, capture_output))
    if inspect.isgeneratorfunction(func):
        return cast(F, _generator_wrapper(func, begin, capture_output))
    if inspect.iscoroutinefunction(func):

        @functools.wraps(func)
        async def run_async(*args: Any, **kwargs: Any) -> Any:
            span = begin(args, kwargs)
            token = enter_span(span)
            try:
                result = await func(*args, **kwargs)
                if capture_output:
                    span.capture_output(result)
                return result
            except BaseException as exc:
                span.record_exception(exc)
                raise
            finally:
                exit_span(token)
                span.end()

        return cast(F, run_async)

    @functools.wraps(func)
    def run(*args: Any, **kwargs: Any) -> Any:
        span = begin(args, kwargs)
        token = enter_span(span)
        try:
            result = func(*args, **kwargs)
            if capture_output:
                span.capture_output(result)
            return result
        except BaseException as exc:
            span.record_exception(exc)
            raise
        finally:
            exit_span(token)
            span.end()

    return cast(F, run)


Begin = Callable[[tuple[Any, ...], dict[str, Any]], Span]


def _generator_wrapper(
    func: Callable[..., Generator[Any, Any, Any]], begin: Begin, capture_output: bool
) -> Callable[..., Generator[Any, Any, Any]]:
    @functools.wraps(func)
    def run_generator(*args: Any, **kwargs: Any) -> Generator[Any, Any, Any]:
        span = begin(args, kwargs)
        items = ItemCollector(span.max_value_chars)
        record_items = capture_output and span.recording
        closed_early = False
        sent: Any = None
        thrown: BaseException | None = None
        try:
            token = enter_span(span)
            try:
                inner = func(*args, **kwargs)
                while True:
                    try:
                        if thrown is not None:
                            error, thrown = thrown, None
                            item = inner.throw(error)
                        else:
                            item = inner.send(sent)
                    except StopIteration as stop:
                        return stop.value
                    exit_span(token)
                    if record_items:
                        items.add(item)
                    try:
                        sent = yield item
                    except GeneratorExit:
                        closed_early = True
                        token = enter_span(span)
                        inner.close()
                        raise
                    except BaseException as exc:
                        thrown = exc
                    token = enter_span(span)
            finally:
                exit_span(token)
        except GeneratorExit:
            raise
        except BaseException as exc:
            span.record_exception(exc)
            raise
        finally:
            if closed_early:
                span.set_attribute("llmtrail.generator.closed_early", True)
            if record_items:
                span.capture_items(items)
            span.end()

    return run_generator


def _async_generator_wrapper(
    func: Callable[..., AsyncGenerator[Any, Any]], begin: Begin, capture_output: bool
) -> Callable[..., AsyncGenerator[Any, Any]]:
    @functools.wraps(func)
    async def run_async_generator(*args: Any, **kwargs: Any) -> AsyncGenerator[Any, Any]:
        span = begin(args, kwargs)
        items = ItemCollector(span.max_value_chars)
        record_items = capture_output and span.recording
        closed_early = False
        sent: Any = None
        thrown: BaseException | None = None
        try:
            token = enter_span(span)
            try:
                inner = func(*args, **kwargs)
                while True:
                    try:
                        if thrown is not None:
                            error, thrown = thrown, None
                            item = await inner.athrow(error)
                        else:
                            item = await inner.asend(sent)
                    except StopAsyncIteration:
                        return
                    exit_span(token)
                    if record_items:
                        items.add(item)
                    try:
                        sent = yield item
                    except GeneratorExit:
                        closed_early = True
                        token = enter_span(span)
                        await inner.aclose()
                        raise
                    except BaseException as exc:
                        thrown = exc
                    token = enter_span(span)
            finally:
                exit_span(token)
        except GeneratorExit:
            raise
        except BaseException as exc:
            span.record_exception(exc)
            raise
        finally:
            if closed_early:
                span.set_attribute("llmtrail.generator.closed_early", True)
            if record_items:
                span.capture_items(items)
            span.end()

    return run_async_generator


workflow = SpanDecorator("workflow")
agent = SpanDecorator("agent")
tool = SpanDecorator("tool")
task = SpanDecorator("task")
retrieval = SpanDecorator("retrieval")
embedding = SpanDecorator("embedding")
llm = SpanDecorator("llm")
