"""Detectors of secrets in text: pure functions from a string to the spans (`Finding`) that
hold a credential, each a regular expression plus a check that the candidate really is one.

These are the detectors that are on by default and that error texts always pass: AWS access
key ids and secret access keys, OpenAI-, Anthropic- and llmtrail-style API keys, JWTs and
``Bearer`` tokens. The opt-in detectors of personal data are in `detectors_pii`.

Every detector also names its *literals*: short strings one of which every match contains
once the text is folded (`fold`: ASCII letters lower-cased, every digit written ``0``), made
of characters JSON escaping leaves alone (letters, digits, ``@ _ - . :``). `Redactor` looks
for them all at once (one regular expression, entered at each literal's rarest byte) over a
whole JSON body serialised and folded, and scans no further when none occurs — the fast path
most bodies take.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
from collections import Counter
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass

import orjson

# letters and digits of an ASCII token: what must not touch a key on either side
_TOKEN_EDGE = r"A-Za-z0-9_\-"


@dataclass(frozen=True, slots=True)
class Finding:
    """``text[start:end]`` is a ``kind`` (``email``, ``openai_key``, …); ``value`` is its
    normalised form (what a keyed hash is taken of, so one value written two ways joins)."""

    start: int
    end: int
    kind: str
    value: str


@dataclass(frozen=True, slots=True)
class Detector:
    """One kind of sensitive value. ``literals`` (folded) is None when no literal is implied
    (user regexes, Presidio): the text is then always scanned. ``rank`` breaks ties between
    equal spans: the lower, the more specific (an ``sk-`` key inside ``Bearer sk-…`` is a
    key)."""

    name: str
    find: Callable[[str], list[Finding]]
    literals: tuple[str, ...] | None
    rank: int = 50


_FOLD = bytes.maketrans(
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", b"abcdefghijklmnopqrstuvwxyz0000000000"
)


def fold(data: bytes) -> bytes:
    """``data`` with ASCII letters lower-cased and every digit ``0``: where `Detector`
    literals are looked for."""
    return data.translate(_FOLD)


_DIGIT_BYTES = frozenset(b"0123456789")


def folder(literals: Collection[bytes]) -> Callable[[bytes], bytes]:
    """The cheapest function under which ``literals`` occur exactly where they occur after
    `fold`: ``bytes.lower`` (about twice as fast) when no literal holds a digit, since then
    no occurrence covers a byte the two treat differently."""
    return fold if any(ch in _DIGIT_BYTES for lit in literals for ch in lit) else bytes.lower


Validate = Callable[[re.Match[str]], str | None]


def regex_detector(
    name: str,
    pattern: str,
    literals: tuple[str, ...] | None,
    validate: Validate | None = None,
    group: int = 0,
    rank: int = 50,
    flags: int = re.ASCII,
) -> Detector:
    """A detector finding ``pattern``'s matches (its ``group``) that ``validate`` accepts;
    ``validate`` returns the normalised value, or None to reject the candidate."""
    compiled = re.compile(pattern, flags)

    def find(text: str) -> list[Finding]:
        found = []
        for match in compiled.finditer(text):
            value = validate(match) if validate else match.group(group)
            if value is not None:
                found.append(Finding(match.start(group), match.end(group), name, value))
        return found

    return Detector(name, find, literals, rank)


def shannon_bits(text: str) -> float:
    """Bits per character of ``text``'s own distribution: random keys score high, words and
    paths low."""
    counts = Counter(text)
    n = len(text)
    return -sum(c / n * math.log2(c / n) for c in counts.values())


def _has_classes(token: str, *classes: str) -> bool:
    return all(any(ch in cls for ch in token) for cls in classes)


_DIGITS = "0123456789"
_LOWER = "abcdefghijklmnopqrstuvwxyz"
_UPPER = _LOWER.upper()


# -- AWS ------------------------------------------------------------------------------------
# AWS's long-term (AKIA) and temporary (ASIA) key ids, and llmtrail's own AWS-style ids (LTAK)
AWS_ACCESS_KEY = regex_detector(
    "aws_access_key",
    r"(?<![A-Za-z0-9])(?:AKIA|ASIA|LTAK)[A-Z0-9]{16}(?![A-Za-z0-9])",
    ("akia", "asia", "ltak"),
    rank=10,
)

_SECRET_CONTEXT = re.compile(r"aws|secret", re.IGNORECASE)
SECRET_CONTEXT_CHARS = 100  # how far before a candidate "aws"/"secret" must be written


def _aws_secret(match: re.Match[str]) -> str | None:
    """A 40-character base64 token counts only near the words aws or secret, with both
    letter cases, and random-looking: a SHA-1 (hex), a path or a word run is not."""
    token = match.group(0)
    before = match.string[max(0, match.start() - SECRET_CONTEXT_CHARS) : match.start()]
    if not _SECRET_CONTEXT.search(before):
        return None
    if not _has_classes(token, _LOWER, _UPPER) or shannon_bits(token) < 4.0:
        return None
    return token


AWS_SECRET_KEY = regex_detector(
    "aws_secret_key",
    r"(?<![A-Za-z0-9/+])[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+=])",
    ("aws", "secret"),
    _aws_secret,
    rank=12,
)


# -- API keys of model providers and of llmtrail --------------------------------------------
def _random_token(min_length: int) -> Validate:
    """Accept a key whose secret part (group ``secret``) is long enough and mixes two of
    digits, lower and upper case, as generated keys do and words joined by dashes do not."""

    def check(match: re.Match[str]) -> str | None:
        secret = match.group("secret")
        classes = sum(any(ch in cls for ch in secret) for cls in (_DIGITS, _LOWER, _UPPER))
        if len(secret) < min_length or classes < 2:
            return None
        return match.group(0)

    return check


ANTHROPIC_KEY = regex_detector(
    "anthropic_key",
    rf"(?<![{_TOKEN_EDGE}])sk-ant-(?P<secret>[A-Za-z0-9_\-]{{20,400}})(?![{_TOKEN_EDGE}])",
    ("sk-ant-",),
    _random_token(20),
    rank=14,
)
OPENAI_KEY = regex_detector(
    "openai_key",
    rf"(?<![{_TOKEN_EDGE}])sk-(?!ant-)(?:(?:proj|svcacct|admin|None)-)?"
    rf"(?P<secret>[A-Za-z0-9_\-]{{20,400}})(?![{_TOKEN_EDGE}])",
    ("sk-",),
    _random_token(20),
    rank=16,
)
LLMTRAIL_KEY = regex_detector(
    "llmtrail_key",
    rf"(?<![{_TOKEN_EDGE}])ltk_[A-Za-z0-9]{{4,64}}_(?P<secret>[A-Za-z0-9_\-]{{16,128}})"
    rf"(?![{_TOKEN_EDGE}])",
    ("ltk_",),
    lambda m: m.group(0),
    rank=11,
)


# -- JWTs and bearer tokens -----------------------------------------------------------------
def _b64url_json(segment: str) -> object:
    padded = segment + "=" * (-len(segment) % 4)
    try:
        return orjson.loads(base64.urlsafe_b64decode(padded))
    except (binascii.Error, ValueError):
        return None


def _jwt(match: re.Match[str]) -> str | None:
    """A JWS or JWE whose header decodes to a JSON object (the payload of a JWE does not)."""
    header = _b64url_json(match.group("header"))
    return match.group(0) if isinstance(header, dict) else None


JWT = regex_detector(
    "jwt",
    r"(?<![A-Za-z0-9_\-.])(?P<header>eyJ[A-Za-z0-9_\-]{4,2000})"
    r"(?:\.[A-Za-z0-9_\-]{0,100000}){2,4}(?![A-Za-z0-9_\-])",
    ("eyj",),
    _jwt,
    rank=18,
)


def _bearer(match: re.Match[str]) -> str | None:
    token = match.group("token")
    if len(token) < 32 and not _has_classes(token, _DIGITS):
        return None  # "Bearer authentication" in prose
    return token


BEARER = regex_detector(
    "bearer",
    r"(?i:bearer)[ \t]+(?P<token>[A-Za-z0-9._~+/\-]{16,4096}=*)(?![A-Za-z0-9._~+/=\-])",
    ("bearer",),
    _bearer,
    group=1,
    rank=40,
)

KEY_DETECTORS: Sequence[Detector] = (
    AWS_ACCESS_KEY,
    AWS_SECRET_KEY,
    ANTHROPIC_KEY,
    OPENAI_KEY,
    LLMTRAIL_KEY,
    JWT,
    BEARER,
)


def resolve(findings: list[Finding], ranks: dict[str, int]) -> list[Finding]:
    """Non-overlapping findings in text order: of overlapping ones the earliest wins, then
    the longest, then the most specific (lowest rank)."""
    ordered = sorted(findings, key=lambda f: (f.start, f.start - f.end, ranks.get(f.kind, 99)))
    kept: list[Finding] = []
    for finding in ordered:
        if kept and finding.start < kept[-1].end:
            continue
        kept.append(finding)
    return kept
