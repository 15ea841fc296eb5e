"""Parsing and verifying inbound SigV4 headers, against requests signed by botocore itself."""

from __future__ import annotations

import hashlib

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from llmtrail.capture.gateway.sigv4 import (
    SigV4Authorization,
    parse_authorization,
    verify_signature,
)

HOST = "127.0.0.1:8080"
TARGET = "/model/arn%3Aaws%3Abedrock%3Aus-east-1%3A1%3Ainference-profile%2Fus.x/converse"
BODY = b'{"messages": []}'


def signed(
    *,
    target: str = TARGET,
    body: bytes = BODY,
    secret: str = "secret-1",
    token: str | None = None,
    extra: dict[str, str] | None = None,
) -> list[tuple[str, str]]:
    request = AWSRequest("POST", f"http://{HOST}{target}", data=body, headers=extra or {})
    SigV4Auth(Credentials("AKID1", secret, token), "bedrock", "eu-west-1").add_auth(request)
    return [("Host", HOST), *request.headers.items()]


def verify(headers: list[tuple[str, str]], **overrides: object) -> bool:
    options: dict[str, object] = {
        "method": "POST",
        "target": TARGET,
        "headers": headers,
        "body": BODY,
        "secret_access_key": "secret-1",
    }
    options.update(overrides)
    return verify_signature(**options)  # type: ignore[arg-type]


def test_parse_a_botocore_header() -> None:
    headers = dict(signed())
    auth = parse_authorization(headers["Authorization"])
    assert auth == SigV4Authorization(
        access_key_id="AKID1",
        date=headers["X-Amz-Date"][:8],
        region="eu-west-1",
        service="bedrock",
        signed_headers=("host", "x-amz-date"),
        signature=auth.signature if auth else "",
    )
    assert auth is not None and len(auth.signature) == 64


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "Bearer abc",
        "AWS4-HMAC-SHA256 Credential=AKID/20260101/us-east-1/bedrock/aws4_request",
        "AWS4-HMAC-SHA256 Credential=AKID/2026/us-east-1/bedrock/aws4_request, "
        "SignedHeaders=host, Signature=" + "a" * 64,
        "AWS4-HMAC-SHA256 Credential=AKID/20260101/us-east-1/bedrock/aws4_request, "
        "SignedHeaders=host, Signature=xyz",
        "AWS4-HMAC-SHA256 Credential=AKID/20260101/us-east-1/bedrock/aws4_request, "
        "SignedHeaders=x-amz-date, Signature=" + "a" * 64,  # host must be signed
        "AWS4-HMAC-SHA256 Credential=AKID/20260101/us-east-1/bedrock/other, "
        "SignedHeaders=host, Signature=" + "a" * 64,
        "AWS4-HMAC-SHA256 Credential=AKID/20260101/us-east-1/bedrock/aws4_request, "
        "Credential=AKID/20260101/us-east-1/bedrock/aws4_request, "
        "SignedHeaders=host, Signature=" + "a" * 64,
    ],
)
def test_parse_refuses_malformed_headers(header: str | None) -> None:
    assert parse_authorization(header) is None


def test_verify_accepts_what_botocore_signed() -> None:
    assert verify(signed())


def test_verify_with_query_repeated_headers_and_token() -> None:
    target = "/model/m/invoke?b=2&a=1"
    headers = signed(target=target, token="tok", extra={"X-Amz-Meta": "1"})
    headers.append(("x-unsigned", "anything"))  # unsigned headers do not matter
    assert verify(headers, target=target, session_token="tok")
    assert not verify(headers, target=target, session_token="other")
    assert not verify(signed(target=target), target=target, session_token="tok")


@pytest.mark.parametrize(
    "overrides",
    [
        {"secret_access_key": "secret-2"},
        {"body": b'{"messages": [1]}'},
        {"method": "PUT"},
        {"target": TARGET.replace("%3A", ":")},  # the path as signed, not decoded
        {"access_key_id": "AKID2"},
    ],
)
def test_verify_refuses_any_change(overrides: dict[str, object]) -> None:
    assert not verify(signed(), **overrides)


def test_verify_refuses_changed_or_missing_signed_headers() -> None:
    headers = signed()
    assert not verify([(n, "10.0.0.1:1" if n == "Host" else v) for n, v in headers])
    assert not verify([(n, v) for n, v in headers if n != "X-Amz-Date"])
    assert not verify([(n, v) for n, v in headers if n != "Authorization"])
    assert not verify([*headers, ("X-Amz-Date", "20260101T000000Z")])  # ambiguous: repeated


def test_declared_payload_hash_must_match_the_body() -> None:
    good = hashlib.sha256(BODY).hexdigest()
    assert verify(signed(extra={"X-Amz-Content-SHA256": good}))
    bad = hashlib.sha256(b"other").hexdigest()
    assert not verify(signed(extra={"X-Amz-Content-SHA256": bad}))
