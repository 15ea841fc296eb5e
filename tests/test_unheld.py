"""`schema.unheld` finds, in place, what `schema.residue` collects: every value of a record
that no column holds (what redaction reads as a body when llmtrail does not know the key)."""

from __future__ import annotations

import random
from typing import Any

from llmtrail.schema import residue, unheld


def _leaves(extra: dict[str, Any], prefix: tuple[str, ...] = ()) -> set[tuple[str, ...]]:
    """The paths of `residue`'s values, one level into the dicts a column partly holds."""
    out = set()
    for key, value in extra.items():
        if isinstance(value, dict) and value and not prefix and key in _SPLIT:
            out |= _leaves(value, (key,))
        else:
            out.add((*prefix, key))
    return out


_SPLIT = ("input", "output", "identity", "error", "trace", "cost", "inferenceProfile")
_KNOWN: dict[str, Any] = {
    "requestId": "r-1",
    "timestamp": "2026-12-07T10:00:00Z",
    "modelId": "m",
    "requestMetadata": {"team": "a"},
    "requestHeaders": {"user-agent": "x"},
    "input": {"inputBodyJson": {"q": 1}, "inputTokenCount": 3},
    "output": {"outputBodyJson": {"a": 1}, "outputTokenCount": 4},
    "error": {"type": "T", "message": "m"},
    "trace": {"traceId": "a" * 32, "sessionId": "s"},
    "identity": {"arn": "arn:x"},
}
_UNKNOWN: dict[tuple[str, ...], Any] = {
    ("response",): {"text": "t"},
    ("note",): "n",
    ("input", "inputBodyText"): "t",
    ("output", "outputImageCount"): 2,
    ("error", "detail"): {"k": "v"},
    ("trace", "baggage"): "b",
    ("identity", "name"): "n",
    ("delivery",): {"bodies": "withheld"},
}


def test_unheld_finds_what_residue_collects_in_place() -> None:
    rnd = random.Random(7)
    for _ in range(200):
        doc = {k: (dict(v) if isinstance(v, dict) else v) for k, v in _KNOWN.items()}
        for key in rnd.sample(sorted(_KNOWN), rnd.randint(0, 4)):
            del doc[key]
        chosen = rnd.sample(sorted(_UNKNOWN), rnd.randint(0, len(_UNKNOWN)))
        for path in chosen:
            holder = doc if len(path) == 1 else doc.setdefault(path[0], {})
            holder[path[-1]] = _UNKNOWN[path]
        found = unheld(doc)
        paths = {(k,) if holder is doc else (_parent(doc, holder), k) for holder, k in found}
        assert paths == set(chosen) == _leaves(residue(doc)), (doc, found)
        for holder, key in found:  # each can be changed in place
            holder[key] = "changed"
        assert all(v == "changed" for v in _values(residue(doc)))


def _parent(doc: dict[str, Any], holder: dict[str, Any]) -> str:
    (key,) = [k for k, v in doc.items() if v is holder]
    return key


def _values(extra: dict[str, Any]) -> list[Any]:
    out = []
    for key, value in extra.items():
        if isinstance(value, dict) and key in _SPLIT and value:
            out += _values(value)
        else:
            out.append(value)
    return out
