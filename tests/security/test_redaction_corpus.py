"""Recall and false positives of the detectors on a generated corpus (fixed seed): Faker's
e-mail addresses, phone numbers, cards, IBANs and IP addresses in several locales, generated
keys, and negatives (code, UUIDs, digests, order numbers, timestamps, versions, numbers).
The figures at scale are in ``benchmarks/redaction.py``."""

from __future__ import annotations

from collections import Counter

import orjson

from llmtrail.security.redaction import Redactor
from llmtrail.security.redaction_policy import parse_policy
from tests.security.redaction_corpus import KINDS, negatives, positives

EVERYTHING = parse_policy({"detectors": ["email", "phone", "card", "iban", "ip"]})


def test_recall_and_false_positives() -> None:
    redactor = Redactor(EVERYTHING, b"k")
    found: Counter[str] = Counter()
    total: Counter[str] = Counter()
    for sample in positives(120, seed=3):
        total[sample.kind] += 1
        start, end = sample.start, sample.start + len(sample.value)
        findings = redactor.findings(sample.text, "bodies")
        if any(f.kind == sample.kind and f.start <= start and f.end >= end for f in findings):
            found[sample.kind] += 1
    recall = {kind: found[kind] / total[kind] for kind in KINDS}
    assert all(r >= 0.99 for r in recall.values()), recall
    corpus = negatives(2000, seed=3)
    flagged = [s.text for s in corpus if redactor.findings(s.text, "bodies")]
    assert len(flagged) / len(corpus) <= 0.01, flagged


def test_no_positive_survives_in_a_record() -> None:
    redactor = Redactor(EVERYTHING, b"k")
    samples = positives(20, seed=5)
    doc = {
        "input": {
            "inputBodyJson": {"messages": [{"role": "user", "content": s.text} for s in samples]}
        },
        "requestMetadata": {f"m{i}": s.value for i, s in enumerate(samples[:16])},
    }
    assert redactor.redact_record(doc) >= len(samples) + 16
    stored = orjson.dumps(doc).decode()
    assert [s.value for s in samples if s.value in stored] == []
