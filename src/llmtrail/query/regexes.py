"""Regexes as both engines run them: RE2.

Users write Insights regexes (``/(?<user>\\w+)/``); DuckDB and ClickHouse run RE2, which
spells named groups ``(?P<name>…)`` and has no lookaround or backreferences. `check_regex`
rewrites the names, refuses what RE2 cannot run with a position, and numbers the groups
with Python's ``re`` (whose group numbering RE2 shares). `glob_regex` turns a ``parse``
glob (``"user=*, method:*"``) into a regex with one lazy group per ``*``.
"""

from __future__ import annotations

import re
import warnings

from llmtrail.query.errors import QueryError, Span

_NAMED = re.compile(r"\(\?<(?![=!])")
_RE2 = "which RE2, the regex engine of DuckDB and ClickHouse, does not support"
_UNSUPPORTED = (
    (re.compile(r"\(\?<?[=!]"), f"the regex uses lookahead or lookbehind, {_RE2}"),
    (re.compile(r"\(\?>"), f"the regex uses an atomic group, {_RE2}"),
    (re.compile(r"\\[1-9]"), f"the regex uses a backreference, {_RE2}"),
    (re.compile(r"[*+?}][+]"), f"the regex uses a possessive quantifier, {_RE2}"),
)


def check_regex(pattern: str, text: str, span: Span) -> tuple[str, dict[str, int]]:
    """The RE2 spelling of ``pattern`` and its named groups' numbers. Raises `QueryError`
    (pointing at ``span`` in ``text``) if it is not a regex both engines run."""
    if "\x00" in pattern:
        raise QueryError("a regex cannot contain a NUL character", text, span)
    rewritten = _NAMED.sub("(?P<", pattern)
    unescaped = re.sub(r"\\\\", "", rewritten)
    for rule, reason in _UNSUPPORTED:
        if rule.search(unescaped):
            raise QueryError(reason, text, span)
    try:
        with warnings.catch_warnings():  # Python's hints about its own future syntax
            warnings.simplefilter("ignore")
            compiled = re.compile(rewritten)
    except (re.error, OverflowError, RecursionError, ValueError) as exc:
        raise QueryError(f"invalid regex: {exc}", text, span) from None
    return rewritten, dict(compiled.groupindex)


def escape(literal: str) -> str:
    """``literal`` as a regex matching exactly it, in syntax RE2 and Python share."""
    out = []
    for ch in literal:
        if ch.isalnum() or ord(ch) > 127 or ch in " _\"'`,;:=@/<>!%&~":
            out.append(ch)
        elif ord(ch) < 32 or ord(ch) == 127:
            out.append(f"\\x{ord(ch):02x}")
        else:
            out.append("\\" + ch)
    return "".join(out)


def glob_regex(glob: str) -> str:
    """The regex of a ``parse`` glob: each ``*`` a lazy group, the last greedy when the glob
    ends with it, anchored at the start when the glob starts with ``*``."""
    parts = glob.split("*")
    groups = len(parts) - 1
    out = ["(?s)"]
    if glob.startswith("*"):
        out.append("^")
    for i, part in enumerate(parts):
        out.append(escape(part))
        if i < groups:
            out.append("(.*)" if i == groups - 1 and glob.endswith("*") else "(.*?)")
    return "".join(out)
