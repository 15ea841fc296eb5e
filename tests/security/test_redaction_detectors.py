"""Each redaction detector on what it must find and on the near-misses it must leave alone."""

from __future__ import annotations

import base64
import json

import pytest

from llmtrail.security.detectors import (
    ANTHROPIC_KEY as ANTHROPIC,
)
from llmtrail.security.detectors import (
    AWS_ACCESS_KEY,
    AWS_SECRET_KEY,
    BEARER,
    JWT,
    KEY_DETECTORS,
    LLMTRAIL_KEY,
    OPENAI_KEY,
    Detector,
    Finding,
    resolve,
)
from llmtrail.security.detectors_pii import (
    CARD,
    EMAIL,
    IBAN,
    IPV4,
    IPV6,
    PHONE,
    card_brand,
    iban_ok,
    luhn_ok,
)

SECRET_40 = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"  # AWS's documented example


def found(detector: Detector, text: str) -> list[str]:
    return [text[f.start : f.end] for f in detector.find(text)]


def b64url(value: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()


# -- keys -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("detector", "text", "expected"),
    [
        (AWS_ACCESS_KEY, "id AKIAIOSFODNN7EXAMPLE here", ["AKIAIOSFODNN7EXAMPLE"]),
        (AWS_ACCESS_KEY, "temp ASIAY34FZKBOKMUTVV7A,", ["ASIAY34FZKBOKMUTVV7A"]),
        (AWS_ACCESS_KEY, "ours LTAKABCDEFGHIJKLMNOP", ["LTAKABCDEFGHIJKLMNOP"]),
        (AWS_ACCESS_KEY, "XAKIAIOSFODNN7EXAMPLE", []),  # inside a longer token
        (AWS_ACCESS_KEY, "AKIAIOSFODNN7EXAMPL", []),  # 19 characters
        (AWS_SECRET_KEY, f"aws_secret_access_key = {SECRET_40}", [SECRET_40]),
        (AWS_SECRET_KEY, f'{{"SecretAccessKey": "{SECRET_40}"}}', [SECRET_40]),
        (AWS_SECRET_KEY, f"checksum {SECRET_40}", []),  # no aws/secret nearby
        # a SHA-1 next to the word secret: hex, one letter case
        (AWS_SECRET_KEY, "secret sha1 2fd4e1c67a2d28fced849ee1bb76e7391b93eb12", []),
        (AWS_SECRET_KEY, "secret path aaaaaaaaaa/bbbbbbbbbb/cccccccccc/ddddddddDD", []),
    ],
)
def test_aws(detector: Detector, text: str, expected: list[str]) -> None:
    assert found(detector, text) == expected


def test_provider_and_llmtrail_keys() -> None:
    openai = "sk-" + "Ab3" * 16
    project = "sk-proj-" + "x9_Y-" * 30
    anthropic = "sk-ant-api03-" + "Zq7-_" * 18 + "AA"
    ltk = "ltk_0a1b2c3d4e5f_" + "Q" * 20 + "w-_9" * 6
    text = f"a {openai} b {project} c {anthropic} d {ltk}."
    assert found(OPENAI_KEY, text) == [openai, project]
    assert found(ANTHROPIC, text) == [anthropic]
    assert found(LLMTRAIL_KEY, text) == [ltk]
    # words joined by dashes, and sk- inside a word, are not keys
    assert found(OPENAI_KEY, "sk-this-is-a-test-string-aaa risk-0123456789abcdefghijk") == []
    assert found(LLMTRAIL_KEY, "ltk_abc_short") == []


def test_jwt_needs_a_json_header() -> None:
    token = f"{b64url({'alg': 'HS256', 'typ': 'JWT'})}.{b64url({'sub': '42'})}.c2lnbmF0dXJl"
    assert found(JWT, f"token={token};") == [token]
    not_json = "eyJub3QganNvbg.eyJzdWIiOiI0MiJ9.c2ln"  # header decodes to text, not JSON
    assert found(JWT, not_json) == []
    assert found(JWT, "eyJhbGciOiJIUzI1NiJ9") == []  # a header alone


def test_bearer_token_not_the_word() -> None:
    assert found(BEARER, "Authorization: Bearer abc123def456ghi789") == ["abc123def456ghi789"]
    assert found(BEARER, "authorization: bearer " + "q" * 40) == ["q" * 40]
    assert found(BEARER, "the bearer of bad news; Bearer authentication_scheme") == []


def test_a_key_inside_bearer_is_the_key() -> None:
    key = "sk-" + "Ab3" * 16
    text = f"Authorization: Bearer {key}"
    findings = [f for d in KEY_DETECTORS for f in d.find(text)]
    kept = resolve(findings, {d.name: d.rank for d in KEY_DETECTORS})
    assert [(f.kind, text[f.start : f.end]) for f in kept] == [("openai_key", key)]


def test_resolve_prefers_earliest_then_longest() -> None:
    a, b, c = Finding(0, 5, "x", ""), Finding(2, 9, "y", ""), Finding(6, 8, "z", "")
    assert resolve([c, b, a], {}) == [a, c]


# -- personal data ----------------------------------------------------------------------------
def test_email() -> None:
    assert found(EMAIL, "write to Jane.Doe+tag@mail.example.co.uk, please") == [
        "Jane.Doe+tag@mail.example.co.uk"
    ]
    assert found(EMAIL, "icon@2x.png and @decorator and a@b and user@host") == []


def test_card_luhn_issuer_and_grouping() -> None:
    for number in ("4111 1111 1111 1111", "4111-1111-1111-1111", "378282246310005",
                   "3782 822463 10005", "5555555555554444", "6011111111111117",
                   "3530111333300000", "30569309025904"):  # fmt: skip
        assert found(CARD, f"card {number}, exp 12/29") == [number], number
    assert found(CARD, "card 4111 1111 1111 1112") == []  # Luhn fails
    assert found(CARD, "ts 1710498615123 ok") == []  # no issuer starts with 17
    assert found(CARD, "id 41111111111111112222") == []  # 22 digits: not a card
    assert found(CARD, "4111 1111 1111 1111 12/29") == ["4111 1111 1111 1111"]  # and its expiry
    assert luhn_ok("79927398713") and not luhn_ok("79927398710")
    assert card_brand("378282246310005") == "amex"
    assert card_brand("4111111111111111") == "visa"


def test_iban_country_length_and_checksum() -> None:
    assert found(IBAN, "IBAN DE89 3704 0044 0532 0130 00 BIC COBADEFFXXX") == [
        "DE89 3704 0044 0532 0130 00"
    ]
    assert found(IBAN, "to GB29NWBK60161331926819.") == ["GB29NWBK60161331926819"]
    assert found(IBAN, "to GB29NWBK60161331926818") == []  # wrong check digits
    assert found(IBAN, "to XX29NWBK60161331926819") == []  # no such country
    assert found(IBAN, "to DE89370400440532013") == []  # one character short
    assert iban_ok("NO9386011117947") and not iban_ok("NO9386011117948")


@pytest.mark.parametrize(
    "phone",
    [
        "+1-780-563-6083x7783", "(591)341-7776", "206.269.0743", "+49 (0) 9141 777631",
        "+44(0)20 7946 0018", "04 15 39 15 00", "+39 3510500083", "090-3915-0008",
        "+55 61 9141-7776", "609 141 777", "(0406)-812415", "030/1234567",
    ],
)  # fmt: skip
def test_phone_formats(phone: str) -> None:
    assert found(PHONE, f"reach me on {phone}.") == [phone]


@pytest.mark.parametrize(
    "text",
    [
        "550e8400-e29b-41d4-a716-446655440000",  # a UUID
        "2024-03-15 10:30:15", "15.03.2024", "03/15/2024",  # dates and times
        "order 4829103746", "ORD-2024-000123", "PO 4500012345",  # order numbers
        "1.234.567", "1,234,567,890", "total 3.14159",  # amounts
        "133.220.204.35", "v1.2.3", "build 1710498615",  # an IP, a version, a timestamp
        "9e107d9d372bb6826bd81d3542a419d6",  # an MD5
    ],
)  # fmt: skip
def test_not_phones(text: str) -> None:
    assert found(PHONE, text) == []


def test_bare_digits_are_a_phone_only_when_introduced_as_one() -> None:
    assert found(PHONE, "phone: 3420837783") == ["3420837783"]
    assert found(PHONE, "My mobile number is 3420837783") == ["3420837783"]
    assert found(PHONE, "order 3420837783") == []


def test_ip_addresses() -> None:
    assert found(IPV4, "from 10.0.12.7 and 203.0.113.255.") == ["10.0.12.7", "203.0.113.255"]
    assert found(IPV4, "v1.2.3.4, version 10.0.0.1, 127.0.0.1, 0.0.0.0, 256.1.1.1") == []
    assert found(IPV6, "at 2001:db8::8a2e:370:7334 and fe80:0:0:0:200:f8ff:fe21:67cf.") == [
        "2001:db8::8a2e:370:7334",
        "fe80:0:0:0:200:f8ff:fe21:67cf",
    ]
    # code and times are not addresses
    assert found(IPV6, "x[::2] a::b std::vector 10:30:15 00:1A:2B:3C:4D:5E ::1") == []
