"""Jobs for the worker-process tests, in a module of their own: a spawned worker imports the
module of the function it runs, and this one imports little."""

from __future__ import annotations

import os

from llmtrail.errors import ValidationError
from llmtrail.query.errors import QueryError, Span


def double(x: int) -> int:
    return 2 * x


def refuse(field: str) -> None:
    raise ValidationError(field, "is not valid JSON at line 1")


def refuse_query() -> None:
    raise QueryError("unknown command", "frobnicate", Span(0, 10), field="queryString")


class Unpicklable(Exception):
    def __init__(self, a: str, b: str) -> None:
        super().__init__(f"{a} {b}")


def raise_unpicklable() -> None:
    raise Unpicklable("one", "two")


def die() -> None:
    os._exit(3)


def own_pid() -> int:
    return os.getpid()


def nested_too_deep() -> list[object]:
    """A result that pickle cannot write (RecursionError) and str() cannot print."""
    value: list[object] = []
    for _ in range(100_000):
        value = [value]
    return value


def raise_nested_too_deep() -> None:
    raise ValueError(nested_too_deep())
