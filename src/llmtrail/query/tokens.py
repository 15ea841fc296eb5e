"""The lexer of the Logs Insights language.

Field paths are lexed whole (``input.inputBodyJson.messages.0.role``, ``` a.`b-c` ```,
``users[1].name``) so that the parser never has to tell a path's dot from a number's decimal
point. ``/`` is a regex delimiter only where Insights allows a regex — after ``like``, ``=~``,
``parse`` and the field that follows ``parse`` — and division everywhere else; the lexer
decides from the tokens before it, so it stays a single pass with no parser callbacks.
A number directly followed by letters is a time period (``5m``, ``1hr``).
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

from llmtrail.query.errors import QueryError, Span


class TokenKind(enum.Enum):
    NAME = "name"
    NUMBER = "number"
    PERIOD = "period"
    STRING = "string"
    REGEX = "regex"
    OP = "operator"
    PIPE = "|"
    COMMA = ","
    LPAREN = "("
    RPAREN = ")"
    LBRACKET = "["
    RBRACKET = "]"
    COLON = ":"  # only in SOURCE logGroups(namePrefix: [...])
    EOF = "end of query"


@dataclass(frozen=True)
class Token:
    """One token. ``value`` is the decoded text (string contents, regex body, operator); a
    NAME carries its path in ``parts`` and whether any part was backticked."""

    kind: TokenKind
    value: str
    span: Span
    parts: tuple[str, ...] = ()
    quoted: bool = False

    def is_word(self, *words: str) -> bool:
        """Whether this is the bare (unquoted, one-part) keyword ``words``, any case."""
        return (
            self.kind is TokenKind.NAME
            and not self.quoted
            and len(self.parts) == 1
            and self.parts[0].lower() in words
        )


_SEGMENT = re.compile(r"@?[A-Za-z_][A-Za-z0-9_]*|[0-9]+")
_NUMBER = re.compile(r"[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")
_UNIT = re.compile(r"[A-Za-z]+")
_OPERATORS = ("!=", "<=", ">=", "=~", "=", "<", ">", "+", "-", "*", "/", "%", "^")
_SINGLE = {
    "|": TokenKind.PIPE,
    ",": TokenKind.COMMA,
    "(": TokenKind.LPAREN,
    ")": TokenKind.RPAREN,
    "[": TokenKind.LBRACKET,
    "]": TokenKind.RBRACKET,
    ":": TokenKind.COLON,
}
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", '"': '"', "'": "'"}


def tokenize(text: str) -> list[Token]:
    """Every token of ``text``, ending with an EOF token. Raises `QueryError`."""
    tokens: list[Token] = []
    pos, size = 0, len(text)
    while True:
        pos = _skip_space_and_comments(text, pos)
        if pos >= size:
            tokens.append(Token(TokenKind.EOF, "", Span(size, size)))
            return tokens
        ch = text[pos]
        if ch in "\"'":
            token = _string(text, pos)
        elif ch == "/" and _regex_allowed(tokens):
            token = _regex(text, pos)
        elif "0" <= ch <= "9":
            token = _number(text, pos)
        elif ch == "`" or ch == "@" or ch == "_" or ch.isalpha():
            token = _name(text, pos)
        elif ch in _SINGLE:
            token = Token(_SINGLE[ch], ch, Span(pos, pos + 1))
        else:
            op = next((o for o in _OPERATORS if text.startswith(o, pos)), None)
            if op is None:
                raise QueryError(f"unexpected character {ch!r}", text, Span(pos, pos + 1))
            token = Token(TokenKind.OP, op, Span(pos, pos + len(op)))
        tokens.append(token)
        pos = token.span.end


def _skip_space_and_comments(text: str, pos: int) -> int:
    while pos < len(text):
        if text[pos].isspace():
            pos += 1
        elif text[pos] == "#":
            end = text.find("\n", pos)
            pos = len(text) if end == -1 else end
        else:
            break
    return pos


def _regex_allowed(tokens: list[Token]) -> bool:
    if not tokens:
        return False
    last = tokens[-1]
    if last.is_word("like", "parse") or (last.kind is TokenKind.OP and last.value == "=~"):
        return True
    return last.kind is TokenKind.NAME and len(tokens) > 1 and tokens[-2].is_word("parse")


def _string(text: str, start: int) -> Token:
    quote = text[start]
    out: list[str] = []
    pos = start + 1
    while pos < len(text):
        ch = text[pos]
        if ch == quote:
            return Token(TokenKind.STRING, "".join(out), Span(start, pos + 1))
        if ch == "\\" and pos + 1 < len(text):
            nxt = text[pos + 1]
            out.append(_ESCAPES.get(nxt, "\\" + nxt))
            pos += 2
            continue
        out.append(ch)
        pos += 1
    raise QueryError(
        f"unterminated string: expected a closing {quote}", text, Span(start, start + 1)
    )


def _regex(text: str, start: int) -> Token:
    out: list[str] = []
    pos = start + 1
    while pos < len(text):
        ch = text[pos]
        if ch == "/":
            return Token(TokenKind.REGEX, "".join(out), Span(start, pos + 1))
        if ch == "\\" and pos + 1 < len(text):
            nxt = text[pos + 1]
            out.append("/" if nxt == "/" else "\\" + nxt)
            pos += 2
            continue
        if ch == "\n":
            break
        out.append(ch)
        pos += 1
    raise QueryError("unterminated regex: expected a closing /", text, Span(start, start + 1))


def _number(text: str, start: int) -> Token:
    match = _NUMBER.match(text, start)
    assert match is not None
    end = match.end()
    unit = _UNIT.match(text, end)
    if unit is not None:
        if "." in match.group() or "e" in match.group().lower():
            raise QueryError(
                "a time period needs a whole number, such as 5m", text, Span(start, unit.end())
            )
        return Token(TokenKind.PERIOD, text[start : unit.end()], Span(start, unit.end()))
    return Token(TokenKind.NUMBER, match.group(), Span(start, end))


def _name(text: str, start: int) -> Token:
    parts: list[str] = []
    quoted = False
    pos = start
    while True:
        if pos < len(text) and text[pos] == "`":
            end = text.find("`", pos + 1)
            if end == -1:
                raise QueryError(
                    "unterminated field name: expected a closing `", text, Span(pos, pos + 1)
                )
            parts.append(text[pos + 1 : end])
            quoted = True
            pos = end + 1
        else:
            match = _SEGMENT.match(text, pos)
            if match is None or (not parts and match.group()[0].isdigit()):
                raise QueryError("expected a field name", text, Span(pos, pos + 1))
            if parts and match.group().startswith("@"):
                raise QueryError("@ may only start a field name", text, Span(pos, pos + 1))
            parts.append(match.group())
            pos = match.end()
        # array indexes written as name[0]
        while (
            pos < len(text)
            and text[pos] == "["
            and not (len(parts) == 1 and not quoted and parts[0].lower() == "in")
        ):
            index = re.compile(r"\[([0-9]+)\]").match(text, pos)
            if index is None:
                break
            parts.append(index.group(1))
            pos = index.end()
        if (
            pos + 1 < len(text)
            and text[pos] == "."
            and (text[pos + 1] == "`" or text[pos + 1] == "_" or text[pos + 1].isalnum())
        ):
            pos += 1
            continue
        return Token(TokenKind.NAME, text[start:pos], Span(start, pos), tuple(parts), quoted)
