"""Query errors that point at the offending text.

Every error the language raises — lexing, parsing, field resolution, type checking — is a
`QueryError`: a `ValidationError` on the field ``query`` whose message names the line and
column, repeats the source line and puts a caret under the token, the way sqlglot's
``ParseError`` highlights SQL. Positions are character offsets into the query text, kept on
every token and AST node as a `Span`, so the compiler can blame a node long after parsing.
"""

from __future__ import annotations

from dataclasses import dataclass

from llmtrail.errors import ValidationError


@dataclass(frozen=True)
class Span:
    """Character offsets ``[start, end)`` of a token or node in the query text."""

    start: int
    end: int

    def to(self, other: Span) -> Span:
        """The span from the start of this one to the end of ``other``."""
        return Span(self.start, max(self.end, other.end))


class QueryError(ValidationError):
    """A query that cannot be parsed or compiled.

    ``line`` and ``column`` are 1-based; ``reason`` is the one-line explanation and
    ``message`` adds the source line with a caret under the offending text.
    """

    def __init__(self, reason: str, text: str, span: Span, *, field: str = "query") -> None:
        line, column, source_line = locate(text, span.start)
        width = max(1, min(span.end - span.start, len(source_line) - column + 1))
        pad = "".join("\t" if ch == "\t" else " " for ch in source_line[: column - 1])
        message = f"line {line}, column {column}: {reason}\n  {source_line}\n  {pad}{'^' * width}"
        super().__init__(field, message)
        self.reason = reason
        self.line = line
        self.column = column
        self.span = span


def locate(text: str, offset: int) -> tuple[int, int, str]:
    """1-based line and column of ``offset`` in ``text``, and that line's text."""
    offset = max(0, min(offset, len(text)))
    line_start = text.rfind("\n", 0, offset) + 1
    line_end = text.find("\n", offset)
    if line_end == -1:
        line_end = len(text)
    line = text.count("\n", 0, offset) + 1
    return line, offset - line_start + 1, text[line_start:line_end].rstrip("\r")
