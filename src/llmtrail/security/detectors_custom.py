"""Detectors a workspace adds: its own regular expressions, and names and addresses found by
Presidio (the optional ``presidio`` extra).

A user's pattern runs on every prompt, so it is checked before it is stored: it must
compile, must not match the empty string, and must not have the shapes that make Python's
backtracking engine take exponential time — a repeat inside a repeat (``(a+)+``), an
alternation under a repeat (``(a|ab)*``), or a backreference. Possessive repeats and atomic
groups (``a*+``, ``(?>…)``) never backtrack and may nest. Patterns are capped in count and
length (`MAX_PATTERNS`, `MAX_PATTERN_LENGTH`).
"""

from __future__ import annotations

import re
import re._constants as sre_constants
import re._parser as sre_parse
import threading
from typing import Any

from llmtrail.errors import ValidationError
from llmtrail.security.detectors import Detector, Finding

MAX_PATTERNS = 20
MAX_PATTERN_LENGTH = 500
PATTERN_NAME = re.compile(r"[a-z][a-z0-9_]{0,31}")

_REPEATS = {sre_constants.MAX_REPEAT, sre_constants.MIN_REPEAT}
_SAFE = {sre_constants.POSSESSIVE_REPEAT, sre_constants.ATOMIC_GROUP}


def _risky(items: Any, under_repeat: bool) -> str | None:
    """Why the parsed pattern ``items`` may backtrack exponentially, or None."""
    for op, arg in items:
        if op in _SAFE:
            continue
        if op in _REPEATS:
            _low, high, body = arg
            repeats = high > 1
            if repeats and under_repeat:
                return "repeats a group that itself repeats, such as (a+)+"
            found = _risky(body, under_repeat or repeats)
            if found:
                return found
        elif op is sre_constants.BRANCH:
            if under_repeat:
                return "repeats an alternation, such as (a|ab)*"
            for branch in arg[1]:
                found = _risky(branch, under_repeat)
                if found:
                    return found
        elif op is sre_constants.SUBPATTERN:
            found = _risky(arg[-1], under_repeat)
            if found:
                return found
        elif op in (sre_constants.ASSERT, sre_constants.ASSERT_NOT):
            found = _risky(arg[1], under_repeat)
            if found:
                return found
        elif op in (sre_constants.GROUPREF, sre_constants.GROUPREF_EXISTS):
            return "uses a backreference"
    return None


def compile_user_pattern(pattern: Any, field: str) -> re.Pattern[str]:
    """``pattern`` compiled, or `ValidationError` naming ``field`` and the rule it breaks."""
    if not isinstance(pattern, str) or not pattern:
        raise ValidationError(field, "must be a non-empty string (a regular expression)")
    if len(pattern) > MAX_PATTERN_LENGTH:
        raise ValidationError(
            field, f"is {len(pattern)} characters long; the limit is {MAX_PATTERN_LENGTH}"
        )
    try:
        compiled = re.compile(pattern)
        parsed = sre_parse.parse(pattern)
    except (re.error, RecursionError, OverflowError) as exc:
        raise ValidationError(field, f"is not a valid regular expression: {exc}") from None
    why = _risky(parsed, False)
    if why:
        raise ValidationError(
            field,
            f"{why}: such patterns can take exponential time on some inputs; write it "
            "without nesting, or with a possessive repeat (a++) or an atomic group (?>…)",
        )
    if compiled.fullmatch(""):
        raise ValidationError(field, "matches the empty string")
    return compiled


def pattern_detector(name: str, compiled: re.Pattern[str]) -> Detector:
    """A workspace's pattern as a detector of kind ``name``; always scanned (no trigger)."""

    def find(text: str) -> list[Finding]:
        return [
            Finding(m.start(), m.end(), name, m.group(0))
            for m in compiled.finditer(text)
            if m.end() > m.start()
        ]

    return Detector(name, find, None, rank=35)


# -- Presidio -------------------------------------------------------------------------------
PRESIDIO_ENTITIES = {"PERSON": "name", "LOCATION": "address"}
_engine: Any = None
_engine_lock = threading.Lock()


def presidio_problem() -> str | None:
    """Why the ``names_addresses`` detector cannot run here, or None when it can."""
    try:
        _analyzer()
    except ImportError:
        return (
            "needs presidio-analyzer, which is not installed on this server "
            "(pip install 'llmtrail[presidio]' and a spaCy model such as en_core_web_lg)"
        )
    except Exception as exc:  # Presidio or spaCy failing to load, any way
        return f"Presidio cannot start on this server: {type(exc).__name__}: {exc}"
    return None


def _analyzer() -> Any:
    global _engine
    with _engine_lock:
        if _engine is None:
            from presidio_analyzer import AnalyzerEngine

            _engine = AnalyzerEngine()
        return _engine


def _find_names_addresses(text: str) -> list[Finding]:
    if not text.strip():
        return []
    results = _analyzer().analyze(text=text, entities=list(PRESIDIO_ENTITIES), language="en")
    return [
        Finding(r.start, r.end, PRESIDIO_ENTITIES[r.entity_type], text[r.start : r.end])
        for r in results
        if r.entity_type in PRESIDIO_ENTITIES
    ]


NAMES_ADDRESSES = Detector("names_addresses", _find_names_addresses, None, rank=45)
