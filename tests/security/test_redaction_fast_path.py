"""The redactor's fast paths (one literal search over a record's read fields, one regular
expression for many literals, ``bytes.lower`` for `fold`) against the straightforward path:
every string of every field read, each detector run whose literal occurs, over the redaction
corpus and varied clean and dirty records, under several policies."""

from __future__ import annotations

import copy
import random
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from benchmarks.bench_records import make_record

from llmtrail.record import InvocationRecord
from llmtrail.schema import unheld
from llmtrail.security.detectors import KEY_DETECTORS, Finding, fold, folder, resolve
from llmtrail.security.logging_config import DEFAULT as DEFAULT_LOGGING
from llmtrail.security.logging_config import parse_logging_config as parse_logging
from llmtrail.security.record_policy import RecordPolicy
from llmtrail.security.redaction import (
    BULK_SEARCH_BYTES,
    GroupPlan,
    Redactor,
    _read_fields,
    bulk_search,
    contains_any,
    fewest_literals,
    literal_search,
)
from llmtrail.security.redaction_policy import DEFAULT_POLICY, RedactionPolicy, parse_policy
from llmtrail.span import Span, SpanError
from tests.security.redaction_corpus import negatives, positives

FIXTURE = Path(__file__).parents[1] / "fixtures" / "bedrock-invocation-logs.jsonl"
KEY = b"k" * 32
OPENAI = "sk-" + "Ab3" * 16
POLICIES: dict[str, RedactionPolicy] = {
    "default": DEFAULT_POLICY,
    "pii": parse_policy(
        {
            "detectors": ["email", "phone", "card", "iban", "ip"],
            "actions": {"bodies": "mask", "metadata": "hash", "errors": "mask"},
        }
    ),
    "errors only": parse_policy({"keyDetectors": False, "actions": {"metadata": "drop"}}),
    "email dropped": parse_policy(
        {"keyDetectors": False, "detectors": ["email"], "actions": {"bodies": "drop"}}
    ),
    "pattern": parse_policy({"patterns": [{"name": "ticket", "pattern": "TICKET-[0-9]{6}"}]}),
}


# -- the straightforward path ---------------------------------------------------------------
def _findings(plan: GroupPlan, text: str) -> list[Finding]:
    folded = fold(text.encode("utf-8", "surrogatepass"))
    found: list[Finding] = []
    for literals, detector in plan.triggered:
        if any(literal in folded for literal in literals):
            found += detector.find(text)
    for detector in plan.always:
        found += detector.find(text)
    return resolve(found, plan.ranks)


def _text(redactor: Redactor, plan: GroupPlan, text: str) -> tuple[str, int]:
    found = _findings(plan, text)
    if not found:
        return text, 0
    if plan.action == "drop":
        return "", len(found)
    pieces, at = [], 0
    for finding in found:
        pieces += (text[at : finding.start], redactor.replacement(finding, plan.action))
        at = finding.end
    return "".join(pieces) + text[at:], len(found)


def _value(redactor: Redactor, plan: GroupPlan, value: Any) -> tuple[Any, int]:
    if isinstance(value, str):
        return _text(redactor, plan, value)
    if isinstance(value, bool):
        return value, 0
    if isinstance(value, int):
        if not plan.numbers or abs(value) < 10**12:
            return value, 0
        new, n = _text(redactor, plan, str(value))
        return (new, n) if n else (value, 0)
    if not isinstance(value, dict | list):
        return value, 0
    count = 0
    for key, item in list(value.items() if isinstance(value, dict) else enumerate(value)):
        new, n = _value(redactor, plan, item)
        if n:
            value[key] = new
            count += n
    return value, count


def straightforward_record(redactor: Redactor, doc: dict[str, Any]) -> int:
    plans = redactor.plans
    failed = bool(doc.get("error") or doc.get("errorCode") or doc.get("status") == "ERROR")
    count = 0
    for part, key, group in (
        ("input", "inputBodyJson", "bodies"),
        ("output", "outputBodyJson", "errors" if failed else "bodies"),
    ):
        holder = doc.get(part)
        if isinstance(holder, dict) and key in holder:
            holder[key], n = _value(redactor, plans[group], holder[key])
            count += n
    metadata = doc.get("requestMetadata")
    if isinstance(metadata, dict):
        for key in list(metadata):
            new, n = _value(redactor, plans["metadata"], metadata[key])
            if n:
                count += n
                if plans["metadata"].action == "drop":
                    del metadata[key]
                else:
                    metadata[key] = new
    error = doc.get("error")
    if isinstance(error, dict):
        for key in ("message", "stackTrace"):
            if key in error:
                error[key], n = _value(redactor, plans["errors"], error[key])
                count += n
    return count


# -- inputs ---------------------------------------------------------------------------------
def _texts() -> list[str]:
    samples = positives(6, seed=11) + negatives(300, seed=11)
    texts = [s.text for s in samples]
    texts += [t.upper() for t in texts[:40]] + [t.swapcase() for t in texts[40:80]]
    texts += [
        "",
        "plain words about Asia and a secret recipe",  # literals, nothing to find
        f'quoted "{OPENAI}"\n\ttab\\slash\x00\x1f',  # what JSON escapes around a key
        f"ünïcödé ✓ {OPENAI} 東京",
        f"lone surrogate \ud800 {OPENAI}",  # orjson refuses it: the slow path
        "AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "Bearer " + "A1b2" * 10,
        "ſecret wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",  # matches no literal once folded
        "TICKET-123456 and TICKET-12",
        "sk-ant-" + "Zz9" * 10,
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl",
        "4111 1111 1111 1111 and jane@example.com from 10.1.2.3 or fe80::1:2:3",
    ]
    return texts


def _records(texts: list[str]) -> list[dict[str, Any]]:
    rng = random.Random(5)
    docs = [make_record("0badc0de", i) for i in range(40)]
    docs += [orjson.loads(line) for line in FIXTURE.read_bytes().splitlines() if line.strip()]
    for i, text in enumerate(texts):
        doc = make_record("0badc0de", 1000 + i)
        where = i % 9
        if where == 0:
            doc["input"]["inputBodyJson"]["messages"][0]["content"][0]["text"] = text
        elif where == 1:
            doc["output"]["outputBodyJson"]["output"]["message"]["content"][0]["text"] = text
        elif where == 2:
            doc["requestMetadata"]["user_id"] = text
        elif where == 3:  # a failed call: the upstream's error body is an error text
            doc["status"] = "ERROR"
            doc["error"] = {"message": text, "stackTrace": f"at x\n{text}"}
            doc["output"]["outputBodyJson"] = {"message": text}
        elif where == 4:
            doc["input"]["inputBodyJson"] = text  # a body that is a string
        elif where == 5:  # only in fields redaction never reads: left as it is
            doc["identity"] = {"arn": f"arn:aws:iam::1:user/{text}"}
            doc["requestId"] = text
        elif where == 6:
            doc["input"]["inputBodyJson"]["system"] = [{"text": text, 7: {"n": 4111111111111111}}]
        elif where == 7:
            doc["errorCode"] = "ThrottlingException"
            doc["output"]["outputBodyJson"]["detail"] = [text, 2**70, None, 1.5, True]
        else:
            doc["input"]["inputBodyJson"]["messages"].append(
                {"role": "user", "content": [{"text": t} for t in rng.sample(texts, 3)]}
            )
        docs.append(doc)
    deep: Any = f"key {OPENAI}"
    for _ in range(260):  # past orjson's nesting limit (255): the slow path
        deep = [deep]
    docs += [
        {"input": {"inputBodyJson": deep}},
        {"input": "x", "output": {"outputBodyJson": None}, "requestMetadata": ["a"]},
        {"error": "boom", "output": {"outputBodyJson": {"m": OPENAI}}},
        {"error": {"message": 5, "stackTrace": None}, "requestMetadata": {"k": {"v": OPENAI}}},
        {"requestMetadata": {"card": 4111111111111111, "big": -(10**15), "ok": False}},
        {"input": {"inputBodyJson": [OPENAI, [OPENAI], {"k": OPENAI}]}},
        {},
    ]
    return docs


@pytest.fixture(scope="module")
def texts() -> list[str]:
    return _texts()


# -- the tests ------------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(POLICIES))
def test_records_redact_as_the_straightforward_path(name: str, texts: list[str]) -> None:
    redactor = Redactor(POLICIES[name], KEY)
    changed = 0
    for doc in _records(texts):
        fast, slow = copy.deepcopy(doc), copy.deepcopy(doc)
        count = redactor.redact_record(fast)
        assert count == straightforward_record(redactor, slow), doc
        assert fast == slow, doc
        if count:
            changed += 1
            assert fast != doc
        else:
            assert fast == doc
    assert changed >= 10  # the inputs do hold secrets under every policy


@pytest.mark.parametrize("name", list(POLICIES))
def test_a_batch_is_prepared_as_each_record_would_be(name: str, texts: list[str]) -> None:
    """The spool thread's one search over a workspace's batch (`RecordPolicy.prepare_all`,
    `to_prepare`) picks every record `prepare` changes, and so leaves the batch as preparing
    each record leaves it; a batch with no candidate is searched once and picks none."""
    redactor = Redactor(POLICIES[name], KEY)
    policy = RecordPolicy(_One(DEFAULT_LOGGING), _One(redactor))
    docs = _records(texts)
    one_by_one = [InvocationRecord(copy.deepcopy(doc)) for doc in docs]
    for record in one_by_one:
        policy.prepare(record)
    batch = [InvocationRecord(copy.deepcopy(doc)) for doc in docs]
    picked = policy.to_prepare("default", batch)
    policy.prepare_all(batch)
    assert [r.data for r in batch] == [r.data for r in one_by_one]
    changed = {i for i, (r, doc) in enumerate(zip(one_by_one, docs, strict=True)) if r.data != doc}
    assert changed and changed <= set(picked)  # each record it changes, picked
    clean = [InvocationRecord(make_record("0badc0de", i)) for i in range(40)]
    if name == "default":  # the key detectors' literals: none where clean records are read
        assert len(picked) < len(docs)
        assert not policy.to_prepare("default", clean)
    withholding = RecordPolicy(_One(parse_logging({"textDataDeliveryEnabled": False})), None)
    assert list(withholding.to_prepare("default", clean)) == list(range(40))


@pytest.mark.parametrize("name", list(POLICIES))
def test_values_redact_as_the_straightforward_path(name: str, texts: list[str]) -> None:
    redactor = Redactor(POLICIES[name], KEY)
    for group, plan in redactor.plans.items():
        for text in texts:
            for value in (text, [text], {"a": {"b": [1, text]}}):
                fast, slow = copy.deepcopy(value), copy.deepcopy(value)
                assert redactor.redact_value(fast, group) == _value(redactor, plan, slow)
            assert redactor.findings(text, group) == _findings(plan, text)


def _literal_sets() -> list[tuple[bytes, ...]]:
    sets = []
    for policy in POLICIES.values():
        redactor = Redactor(policy, KEY)
        for plan in redactor.plans.values():
            sets.append(plan.literals)
            sets += [lits for lits, _ in plan.triggered]
    rng = random.Random(3)
    for _ in range(200):  # short literals over a small alphabet: many hits, overlaps, edges
        sets.append(tuple({_word(rng) for _ in range(rng.randint(1, 4))}))
    return [s for s in sets if s]


def _word(rng: random.Random, alphabet: bytes = b"abk-0:.") -> bytes:
    return bytes(rng.choice(alphabet) for _ in range(rng.randint(1, 5)))


def test_one_search_finds_what_searches_per_literal_find() -> None:
    rng = random.Random(4)
    haystacks = [_word(rng) * rng.randint(1, 6) + _word(rng) for _ in range(300)]
    haystacks += [b"", b"akia", b"xakiax", b"sk", b"sk-", b"as-asia", b"bearer" * 3]
    haystacks += [fold(t.encode("utf-8", "surrogatepass")) for t in _texts()[::7]]
    for literals in _literal_sets():
        search = literal_search(literals)
        for haystack in haystacks:
            assert bool(search(haystack)) == contains_any(haystack, literals), (literals, haystack)


def test_the_bulk_search_finds_a_literal_where_bytes_do() -> None:
    """RE2 through pyarrow, for a batch's texts: the same answer as ``in`` over any bytes
    (NUL, bytes that are not UTF-8, regular expression syntax in a literal), wherever the
    literal sits in a haystack past the size where the record path uses it."""
    rng = random.Random(8)
    alphabet = b"abeksy-_.+*?()[]{}|^$\\x0\x00\xff\xc3\x80\n"
    for literals in [*_literal_sets(), (b"a.b", b"(?:", b"x\\", b"\xff\x00")]:
        for _ in range(40):
            haystack = bytes(rng.choice(alphabet) for _ in range(rng.randrange(0, 3000)))
            if rng.random() < 0.4:
                at = rng.randrange(len(haystack) + 1)
                haystack = haystack[:at] + rng.choice(literals) + haystack[at:]
            assert bulk_search(literals, haystack) == contains_any(haystack, literals)
    plan = GroupPlan(list(KEY_DETECTORS), "mask")
    clean = orjson.dumps([make_record("0badc0de", i)["input"] for i in range(400)])
    assert len(clean) >= BULK_SEARCH_BYTES
    assert not plan.may_match_json(clean)
    assert plan.may_match_json(clean[:-2] + b',"' + OPENAI.encode() + b'"]')


def test_searching_the_fewest_literals_is_searching_them_all() -> None:
    for literals in _literal_sets():
        fewest = fewest_literals(set(literals))
        for haystack in (b"".join(literals), b"-".join(literals[::-1]), b"none here"):
            assert contains_any(haystack, fewest) == contains_any(haystack, literals)


def test_lower_finds_a_literal_where_fold_does() -> None:
    rng = random.Random(6)
    alphabet = b"aAbBkK09-_:.\x00\xc3\xa9"
    data = [bytes(rng.choice(alphabet) for _ in range(rng.randint(0, 30))) for _ in range(500)]
    for literals in _literal_sets():
        folding = folder(literals)
        assert (folding is fold) == any(ch in b"0123456789" for lit in literals for ch in lit)
        for item in data:
            for literal in literals:
                assert (literal in folding(item)) == (literal in fold(item))


def test_a_record_is_searched_only_where_redaction_reads() -> None:
    redactor = Redactor(DEFAULT_POLICY, KEY)
    doc = make_record("0badc0de", 1)
    assert "arn:aws:" in doc["identity"]["arn"]  # a literal outside the fields read
    plan = redactor._record_plan
    assert plan.may_match(doc)
    assert not plan.may_match(_read_fields(doc, unheld(doc)))
    assert redactor.redact_record(doc) == 0
    assert doc == make_record("0badc0de", 1)


# -- spans: one search before the walk (`RecordPolicy.prepare_span`) ----------------------
class _Walking(Redactor):
    """The same policy with no search first: every field walked."""

    def may_find(self, values: list[Any]) -> bool:
        return True


class _One:
    def __init__(self, value: Any) -> None:
        self.value = value

    def for_workspace(self, workspace: str) -> Any:
        return self.value


def _spans(texts: list[str]) -> list[Span]:
    at = datetime(2026, 12, 1, tzinfo=UTC)
    spans = []
    for i, text in enumerate(texts):
        span = Span(
            "t" * 32,
            f"{i:016x}",
            "tool",
            at,
            at,
            input={"question": "what is the weather"},
            output=["sunny", 21],
            attributes={"tool.name": "weather", "count": 3, "exception.note": "none"},
            tags=("prod", "eu"),
            session_id="s-1",
            app="shop",
        )
        where = i % 9
        if where == 0:
            span.input = {"question": text}
        elif where == 1:
            span.output = [text, 4111111111111111]
        elif where == 2:
            span.attributes["tool.arguments"] = text
        elif where == 3:
            span.attributes["exception.message"] = text
        elif where == 4:
            span.tags = ("prod", text)
        elif where == 5:
            span.session_id = text
        elif where == 6:
            span.app = text
        elif where == 7:
            span.error = SpanError(text, f"failed: {text}", None)
        # 8: nothing to find
        spans.append(span)
    return spans


@pytest.mark.parametrize("name", list(POLICIES))
def test_spans_redact_as_when_every_field_is_walked(name: str, texts: list[str]) -> None:
    fast = RecordPolicy(_One(DEFAULT_LOGGING), _One(Redactor(POLICIES[name], KEY)))
    slow = RecordPolicy(_One(DEFAULT_LOGGING), _One(_Walking(POLICIES[name], KEY)))
    changed = 0
    for span in _spans(texts):
        a, b = copy.deepcopy(span), copy.deepcopy(span)
        fast.prepare_span(a)
        slow.prepare_span(b)
        assert a == b, span
        changed += a != span
    assert fast.redactions == slow.redactions
    assert fast.failures == slow.failures == 0
    assert changed >= 10  # secrets were found in every field, under every policy
