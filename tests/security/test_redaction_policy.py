"""Redaction policies, actions, records and spans, and the per-workspace cache."""

from __future__ import annotations

import copy
import importlib.util
from typing import Any

import pytest

from llmtrail.errors import ValidationError
from llmtrail.security.detectors_custom import MAX_PATTERN_LENGTH, MAX_PATTERNS
from llmtrail.security.redaction import Redactor
from llmtrail.security.redaction_policy import DEFAULT_POLICY, parse_policy
from llmtrail.security.redaction_store import (
    NAMESPACE,
    RedactionPolicies,
    RedactionPolicyStore,
    load_policy,
)
from llmtrail.store.memory import MemoryStateStore

KEY = b"k" * 32
OPENAI = "sk-" + "Ab3" * 16
PII = ["email", "phone", "card", "iban", "ip"]


def redactor(key: bytes = KEY, **policy: Any) -> Redactor:
    return Redactor(parse_policy(policy), key)


def record(**extra: Any) -> dict[str, Any]:
    return {
        "requestId": "r1",
        "input": {
            "inputBodyJson": {
                "messages": [
                    {"role": "user", "content": f"my key is {OPENAI}, mail jane@example.com"},
                    {"role": "user", "content": ["nested", {"deep": f"Bearer {OPENAI}"}]},
                ],
                "jane@example.com": "a key is not a value",
                "max_tokens": 100,
            }
        },
        "output": {"outputBodyJson": {"text": "no secrets here"}},
        "requestMetadata": {"user": "jane@example.com", "tenant_id": "acme"},
        **extra,
    }


def test_default_policy_masks_keys_everywhere_and_leaves_personal_data() -> None:
    doc = record(error={"message": f"401: invalid key {OPENAI}"})
    count = Redactor(DEFAULT_POLICY, KEY).redact_record(doc)
    body = doc["input"]["inputBodyJson"]
    assert count == 3
    assert (
        body["messages"][0]["content"] == "my key is [REDACTED:openai_key], mail jane@example.com"
    )
    assert body["messages"][1]["content"][1]["deep"] == "Bearer [REDACTED:openai_key]"
    assert "jane@example.com" in body  # keys of objects are untouched
    assert doc["error"]["message"] == "401: invalid key [REDACTED:openai_key]"
    assert doc["requestMetadata"]["user"] == "jane@example.com"


def test_error_texts_always_pass_the_key_detectors() -> None:
    r = redactor(keyDetectors=False)
    doc = record(
        status="ERROR",
        error={"message": f"bad {OPENAI}", "stackTrace": f"at call({OPENAI})"},
    )
    doc["output"]["outputBodyJson"] = {"error": {"message": f"Incorrect API key: {OPENAI}"}}
    r.redact_record(doc)
    assert OPENAI in doc["input"]["inputBodyJson"]["messages"][0]["content"]  # bodies: off
    assert doc["error"]["message"] == "bad [REDACTED:openai_key]"
    assert doc["error"]["stackTrace"] == "at call([REDACTED:openai_key])"
    # a failed call's output body is the upstream's error body: an error text
    assert OPENAI not in str(doc["output"]["outputBodyJson"])
    assert r.redact_text(OPENAI, "errors") == "[REDACTED:openai_key]"


def test_actions_per_group() -> None:
    r = redactor(detectors=PII, actions={"bodies": "hash", "metadata": "drop", "errors": "drop"})
    doc = record(error={"message": "mail jane@example.com", "type": "x"})
    count = r.redact_record(doc)
    content = doc["input"]["inputBodyJson"]["messages"][0]["content"]
    assert content.startswith("my key is [OPENAI_KEY:hmac:")
    assert "[EMAIL:hmac:" in content and "jane" not in content
    assert "user" not in doc["requestMetadata"]  # dropped
    assert doc["requestMetadata"]["tenant_id"] == "acme"
    assert doc["error"] == {"message": "", "type": "x"}
    assert count == 5


def test_hash_is_keyed_and_joinable() -> None:
    a, b = (
        redactor(b"one", actions={"bodies": "hash"}, detectors=PII),
        redactor(b"two", actions={"bodies": "hash"}, detectors=PII),
    )
    first = a.redact_text("card 4111 1111 1111 1111", "bodies")
    assert first.startswith("card [CARD:hmac:") and len(first) == len("card [CARD:hmac:]") + 12
    # the same number written another way hashes the same; another key hashes differently
    assert a.redact_text("card 4111-1111-1111-1111", "bodies") == first
    assert a.redact_text("card 4111111111111111", "bodies") == first
    assert b.redact_text("card 4111 1111 1111 1111", "bodies") != first
    assert a.redact_text("card 5555555555554444", "bodies") != first


def test_card_number_as_a_json_number() -> None:
    r = redactor(detectors=["card"])
    body: dict[str, Any] = {"card": 4111111111111111, "count": 1234567890123, "ok": True}
    assert r.redact_value(body, "bodies") == (
        {"card": "[REDACTED:card]", "count": 1234567890123, "ok": True},
        1,
    )


def test_fast_path_skips_bodies_without_candidates() -> None:
    r = Redactor(DEFAULT_POLICY, KEY)
    plain = {"messages": [{"role": "user", "content": "Tell me a story about a cat."}]}
    assert not r.plans["bodies"].may_match(plain)
    assert r.plans["bodies"].may_match({"x": [f"k={OPENAI}"]})
    before = copy.deepcopy(plain)
    assert r.redact_value(plain, "bodies") == (before, 0)


@pytest.mark.parametrize(
    "value",
    [None, 1.5, float("nan"), True, 2**80, -(2**70), "", [], {}, [[[]]], {"a": None},
     {"n": 2**100, "s": f"x {OPENAI}"}, b"bytes", ("a", OPENAI)],
)  # fmt: skip
def test_any_value_is_safe(value: Any) -> None:
    for group in ("bodies", "metadata", "errors"):
        redactor(detectors=PII).redact_value(copy.deepcopy(value), group)


def test_any_record_shape_is_safe() -> None:
    r = redactor(detectors=PII)
    doc: Any
    for doc in (None, [], "text", {"input": "x"}, {"input": {"inputBodyJson": None}},
                {"requestMetadata": ["a"]}, {"error": "boom"}, {"error": {"message": 5}},
                {"requestMetadata": {"k": {"v": OPENAI}}}):  # fmt: skip
        r.redact_record(doc)


def test_deep_and_large_bodies() -> None:
    deep: Any = f"key {OPENAI}"
    for _ in range(20_000):
        deep = {"a": [deep]}
    doc: dict[str, Any] = {"input": {"inputBodyJson": deep}}
    assert Redactor(DEFAULT_POLICY, KEY).redact_record(doc) == 1
    node = doc["input"]["inputBodyJson"]
    for _ in range(20_000):
        node = node["a"][0]
    assert node == "key [REDACTED:openai_key]"
    big = ("lorem ipsum 12 " * 300_000) + f"mail jane@example.com {OPENAI}"
    out = redactor(detectors=PII).redact_text(big, "bodies")
    assert out.endswith("mail [REDACTED:email] [REDACTED:openai_key]")


def test_span_attributes() -> None:
    attrs: dict[str, Any] = {
        "gen_ai.prompt": f"use {OPENAI}",
        "gen_ai.input.messages": [{"content": "jane@example.com"}],
        "exception.message": f"auth failed for {OPENAI}",
        "http.status_code": 401,
    }
    assert redactor(keyDetectors=False, detectors=["email"]).redact_span_attributes(attrs) == 2
    assert attrs["gen_ai.prompt"] == f"use {OPENAI}"
    assert attrs["gen_ai.input.messages"] == [{"content": "[REDACTED:email]"}]
    assert attrs["exception.message"] == "auth failed for [REDACTED:openai_key]"


def test_user_patterns() -> None:
    r = redactor(patterns=[{"name": "ticket", "pattern": r"TICKET-[0-9]{6}"}])
    assert r.redact_text("see TICKET-123456 and TICKET-12", "metadata") == (
        "see [REDACTED:ticket] and TICKET-12"
    )


@pytest.mark.parametrize(
    ("policy", "field", "words"),
    [
        ({"patterns": [{"name": "x", "pattern": "(a+)+$"}]}, "patterns[0].pattern", "repeats"),
        ({"patterns": [{"name": "x", "pattern": "(a|ab)*c"}]}, "patterns[0].pattern", "altern"),
        ({"patterns": [{"name": "x", "pattern": r"(a)\1"}]}, "patterns[0].pattern", "backref"),
        ({"patterns": [{"name": "x", "pattern": "[a-"}]}, "patterns[0].pattern", "not a valid"),
        ({"patterns": [{"name": "x", "pattern": "a?"}]}, "patterns[0].pattern", "empty string"),
        ({"patterns": [{"name": "x", "pattern": "a" * (MAX_PATTERN_LENGTH + 1)}]},
         "patterns[0].pattern", f"limit is {MAX_PATTERN_LENGTH}"),
        ({"patterns": [{"name": f"p{i}", "pattern": "a"} for i in range(MAX_PATTERNS + 1)]},
         "patterns", f"limit is {MAX_PATTERNS}"),
        ({"patterns": [{"name": "email", "pattern": "a"}]}, "patterns[0].name", "taken"),
        ({"patterns": [{"name": "Bad Name", "pattern": "a"}]}, "patterns[0].name", "a-z"),
        ({"detectors": ["email", "ssn"]}, "detectors[1]", "unknown detector"),
        ({"actions": {"bodies": "shred"}}, "actions.bodies", "mask, hash, drop"),
        ({"actions": {"headers": "mask"}}, "actions.headers", "not a group"),
        ({"keyDetectors": "yes"}, "keyDetectors", "true or false"),
        ({"colour": "red"}, "colour", "not a field"),
        ([], "policy", "JSON object"),
    ],
)  # fmt: skip
def test_bad_policies_name_the_field(policy: Any, field: str, words: str) -> None:
    with pytest.raises(ValidationError) as caught:
        parse_policy(policy)
    assert caught.value.field == field
    assert words in caught.value.message


def test_possessive_and_atomic_repeats_may_nest() -> None:
    parse_policy({"patterns": [{"name": "x", "pattern": "(?>a+)+b"}]})
    parse_policy({"patterns": [{"name": "y", "pattern": "(?:ab)++c"}]})


@pytest.mark.skipif(
    importlib.util.find_spec("presidio_analyzer") is not None, reason="Presidio is installed"
)
def test_names_addresses_without_presidio() -> None:
    with pytest.raises(ValidationError) as caught:
        parse_policy({"detectors": ["email", "names_addresses"]})
    assert caught.value.field == "detectors[1]"
    assert "presidio" in caught.value.message
    # a stored policy asking for it (put on a server that had it) runs without it
    policy = load_policy({"detectors": ["email", "names_addresses"]})
    assert policy.detectors == ("email",)


def test_policy_round_trip() -> None:
    policy = parse_policy(
        {"detectors": ["ip", "email", "ip"], "actions": {"metadata": "hash"}, "patterns": []}
    )
    assert policy.to_json() == {
        "keyDetectors": True,
        "detectors": ["email", "ip"],
        "actions": {"bodies": "mask", "metadata": "hash", "errors": "mask"},
        "patterns": [],
    }
    assert parse_policy(policy.to_json()) == policy


def test_store_and_cache_refresh_within_a_second() -> None:
    state = MemoryStateStore()
    now = [100.0]
    policies = RedactionPolicies(state, KEY, clock=lambda: now[0])
    other_server = RedactionPolicyStore(state)
    assert policies.for_workspace("w1").policy == DEFAULT_POLICY
    other_server.put("w1", {"detectors": ["email"]})
    now[0] += 0.5
    assert policies.for_workspace("w1").policy == DEFAULT_POLICY  # still the cached one
    now[0] += 0.6
    assert policies.for_workspace("w1").policy.detectors == ("email",)
    assert policies.for_workspace("w2").policy == DEFAULT_POLICY  # workspaces apart
    same = policies.for_workspace("w1")
    now[0] += 5
    assert policies.for_workspace("w1") is same  # unchanged policy: not rebuilt
    other_server.delete("w1")
    policies.invalidate("w1")
    assert policies.for_workspace("w1").policy == DEFAULT_POLICY


def test_unusable_stored_policy_redacts_more_not_less() -> None:
    state = MemoryStateStore()
    state.put(NAMESPACE, "w", {"detectors": ["from-a-newer-version"]})
    policy = RedactionPolicies(state, KEY).for_workspace("w").policy
    assert set(PII) <= set(policy.detectors) and policy.key_detectors
