"""SigV4 verification against what a real boto3 ``bedrock-runtime`` client sends.

A small HTTP server on 127.0.0.1 captures each request exactly as it arrived (raw target,
header pairs, body), runs `verify_sigv4` on it and answers in Bedrock's shape: the model's
answer when the signature proves an issued key, else ``x-amzn-ErrorType`` and
``{"message": …}``, which boto3 turns into a ``ClientError`` with AWS's code. The captured
requests are then mutated 10,000 times: no mutation that changes what was signed is
accepted, and nothing but `SignatureRejected` ever leaves the verifier.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import boto3
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from llmtrail.capture.gateway.bedrock.eventstream import event
from llmtrail.security.sealing import generate_access_key_pair
from llmtrail.security.sigv4_verify import (
    BAD_SIGNATURE,
    BAD_TOKEN,
    SignatureRejected,
    verify_sigv4,
)

ACCESS_KEY_ID, SECRET_ACCESS_KEY = generate_access_key_pair()
KEYS = {ACCESS_KEY_ID: SECRET_ACCESS_KEY}
CORAL = ":http://internal.amazon.com/coral/com.amazon.coral.service/"
MODELS = [
    "anthropic.claude-3-haiku-20240307-v1:0",
    "us.anthropic.claude-3-haiku-20240307-v1:0",
    "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-3-haiku-20240307-v1:0",
]
STAMP = "%Y%m%dT%H%M%SZ"


@dataclass(frozen=True)
class Received:
    """One request as the server saw it."""

    method: str
    path: str
    query: str
    headers: tuple[tuple[str, str], ...]
    body: bytes

    def header(self, name: str) -> str:
        """The first value of ``name``, or "" (mutations remove headers)."""
        return next((v for k, v in self.headers if k.lower() == name), "")

    @property
    def signed_at(self) -> datetime:
        return datetime.strptime(self.header("x-amz-date"), STAMP).replace(tzinfo=UTC)

    def verify(self, now: datetime | None = None, **kwargs: Any) -> str:
        return verify_sigv4(
            self.method,
            self.path,
            self.query,
            list(self.headers),
            self.body,
            KEYS.get,
            self.signed_at if now is None else now,
            **kwargs,
        )

    def with_header(self, name: str, value: str | None) -> Received:
        kept = tuple((k, v) for k, v in self.headers if k.lower() != name.lower())
        return replace(self, headers=kept + (((name, value),) if value is not None else ()))


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length") or 0))
        path, _, query = self.path.partition("?")
        got = Received("POST", path, query, tuple(self.headers.items()), body)
        self.server.received.append(got)
        try:
            verify_sigv4(
                got.method, got.path, got.query, list(got.headers), body, KEYS.get,
                datetime.now(UTC),
            )  # fmt: skip
        except SignatureRejected as exc:
            self._answer(exc.status, "application/json", json.dumps({"message": exc.message}),
                         (("x-amzn-ErrorType", exc.aws_error_type + CORAL),))  # fmt: skip
            return
        operation = path.rsplit("/", 1)[-1]
        if operation == "converse-stream":
            frames = b"".join(
                [
                    event("messageStart", {"role": "assistant"}),
                    event(
                        "contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "signed"}}
                    ),
                    event("contentBlockStop", {"contentBlockIndex": 0}),
                    event("messageStop", {"stopReason": "end_turn"}),
                ]
            )
            self._answer(200, "application/vnd.amazon.eventstream", frames)
        elif operation == "invoke":
            self._answer(200, "application/json", json.dumps({"completion": "signed"}))
        else:
            message = {"role": "assistant", "content": [{"text": "signed"}]}
            usage = {"inputTokens": 1, "outputTokens": 1, "totalTokens": 2}
            answer = {"output": {"message": message}, "stopReason": "end_turn", "usage": usage,
                      "metrics": {"latencyMs": 1}}  # fmt: skip
            self._answer(200, "application/json", json.dumps(answer))

    def _answer(
        self, status: int, kind: str, body: str | bytes, extra: tuple[tuple[str, str], ...] = ()
    ) -> None:
        raw = body.encode() if isinstance(body, str) else body
        self.send_response(status)
        for name, value in [("content-type", kind), ("content-length", str(len(raw))), *extra]:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(raw)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    received: list[Received]


@pytest.fixture(scope="module")
def server() -> Iterator[_Server]:
    httpd = _Server(("127.0.0.1", 0), _Handler)
    httpd.received = []
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def client_for(server: _Server) -> Iterator[Callable[..., Any]]:
    made: list[Any] = []

    def make(
        access_key_id: str = ACCESS_KEY_ID, secret: str = SECRET_ACCESS_KEY, **extra: Any
    ) -> Any:
        client = boto3.client(
            "bedrock-runtime",
            region_name="us-east-1",
            endpoint_url=f"http://127.0.0.1:{server.server_port}",
            aws_access_key_id=access_key_id,
            aws_secret_access_key=secret,
            config=Config(retries={"total_max_attempts": 1}, read_timeout=30),
            **extra,
        )
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()


def call(client: Any, operation: str, model: str) -> str:
    """Make one call; the text the (local) model answered."""
    messages = [{"role": "user", "content": [{"text": "héllo, signed world"}]}]
    if operation == "converse":
        return str(
            client.converse(modelId=model, messages=messages)["output"]["message"]["content"][0][
                "text"
            ]
        )
    if operation == "converse_stream":
        stream = client.converse_stream(modelId=model, messages=messages)["stream"]
        return "".join(
            e["contentBlockDelta"]["delta"]["text"] for e in stream if "contentBlockDelta" in e
        )
    body = json.dumps({"prompt": "\n\nHuman: hi\n\nAssistant:", "max_tokens_to_sample": 10})
    answer = client.invoke_model(modelId=model, body=body, contentType="application/json")
    return str(json.loads(answer["body"].read())["completion"])


OPERATIONS = ["converse", "converse_stream", "invoke_model"]


# -- boto3 end to end ------------------------------------------------------------------------


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("operation", OPERATIONS)
def test_an_issued_key_pair_is_accepted(
    client_for: Callable[..., Any], server: _Server, operation: str, model: str
) -> None:
    assert call(client_for(), operation, model) == "signed"
    got = server.received[-1]
    assert ":" not in got.path and "%3A" in got.path  # the id arrived percent-encoded
    assert got.verify() == ACCESS_KEY_ID


@pytest.mark.parametrize("operation", OPERATIONS)
def test_a_wrong_secret_is_awss_invalid_signature(
    client_for: Callable[..., Any], operation: str
) -> None:
    _, other_secret = generate_access_key_pair()
    with pytest.raises(ClientError) as caught:
        call(client_for(secret=other_secret), operation, MODELS[2])
    error = caught.value.response
    assert error["Error"] == {"Code": "InvalidSignatureException", "Message": BAD_SIGNATURE}
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 403


@pytest.mark.parametrize("operation", OPERATIONS)
def test_an_unknown_key_is_unrecognized(client_for: Callable[..., Any], operation: str) -> None:
    stranger, secret = generate_access_key_pair()
    with pytest.raises(ClientError) as caught:
        call(client_for(stranger, secret), operation, MODELS[0])
    error = caught.value.response
    assert error["Error"] == {"Code": "UnrecognizedClientException", "Message": BAD_TOKEN}
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 403


def test_a_session_token_is_unrecognized(client_for: Callable[..., Any]) -> None:
    client = client_for(aws_session_token="FwoGZXIvYXdzEJr//////////wEaDM")
    with pytest.raises(ClientError) as caught:
        call(client, "converse", MODELS[0])
    assert caught.value.response["Error"]["Code"] == "UnrecognizedClientException"


@pytest.fixture(scope="module")
def signed(client_for: Callable[..., Any], server: _Server) -> list[Received]:
    """Requests boto3 signed with the issued pair, as they arrived."""
    client = client_for()
    out = []
    for operation, model in [("converse", MODELS[0]), ("invoke_model", MODELS[2])]:
        call(client, operation, model)
        out.append(server.received[-1])
    return out


# -- what AWS answers, case by case ----------------------------------------------------------


def rejected(request: Received, now: datetime | None = None, **kwargs: Any) -> SignatureRejected:
    with pytest.raises(SignatureRejected) as caught:
        request.verify(now, **kwargs)
    return caught.value


def test_inputs_as_asgi_gives_them(signed: list[Received]) -> None:
    got = signed[0]
    pairs = [(k.lower().encode(), v.encode("latin-1")) for k, v in got.headers]
    who = verify_sigv4("POST", got.path.encode(), got.query.encode(), pairs, got.body, KEYS.get,
                       got.signed_at)  # fmt: skip
    assert who == ACCESS_KEY_ID
    assert verify_sigv4("POST", got.path, "", dict(got.headers), got.body, KEYS.get, got.signed_at)


def test_the_clock_window_is_five_minutes(signed: list[Received]) -> None:
    got = signed[0]
    stamp = got.header("x-amz-date")
    for skew in (timedelta(0), timedelta(minutes=5), -timedelta(minutes=5)):
        assert got.verify(got.signed_at + skew) == ACCESS_KEY_ID
    now = got.signed_at + timedelta(minutes=5, seconds=1)
    error = rejected(got, now)
    assert (error.aws_error_type, error.status) == ("InvalidSignatureException", 403)
    earliest = (now - timedelta(minutes=5)).strftime(STAMP)
    assert error.message == (
        f"Signature expired: {stamp} is now earlier than {earliest} "
        f"({now.strftime(STAMP)} - 5 min.)"
    )
    error = rejected(got, got.signed_at - timedelta(minutes=5, seconds=1))
    assert error.aws_error_type == "InvalidSignatureException"
    assert error.message.startswith(f"Signature not yet current: {stamp} is still later than ")


def test_missing_authorization(signed: list[Received]) -> None:
    for value in (None, "", "   "):
        error = rejected(signed[0].with_header("Authorization", value))
        assert (error.aws_error_type, error.message, error.status) == (
            "MissingAuthenticationTokenException", "Missing Authentication Token", 403,
        )  # fmt: skip


def test_incomplete_authorization(signed: list[Received]) -> None:
    got = signed[0]
    auth = got.header("authorization")
    cases = {
        "AWS4-HMAC-SHA256 Signature=" + "0" * 64: "Authorization header requires 'Credential' "
        "parameter. Authorization header requires 'SignedHeaders' parameter.",
        "Bearer ltk_abc": "Unsupported Authorization algorithm 'Bearer'",
        auth.replace(
            "Credential=", "Credential "
        ): "not a valid key=value pair (missing equal-sign)",
        auth.replace(
            ", SignedHeaders", ", SignedHeaders=host, SignedHeaders"
        ): "more than one 'SignedHeaders'",
        auth.replace("/aws4_request", "/aws4"): "valid terminator: 'aws4_request', not 'aws4'",
        auth.replace(
            "/aws4_request", ""
        ): "Credential must have exactly 5 slash-delimited elements",
        auth.replace("content-type;host;", "content-type;"): "'Host' must be a 'SignedHeader'",
        auth.replace(";x-amz-date", ""): "'X-Amz-Date' must be a 'SignedHeader'",
        auth + ",": "empty parameter",
    }
    for header, expected in cases.items():
        error = rejected(got.with_header("Authorization", header))
        assert error.aws_error_type == "IncompleteSignatureException", header
        assert expected in error.message, (header, error.message)
    error = rejected(got.with_header("X-Amz-Date", None), got.signed_at)
    assert error.message == "Authorization header requires existence of an 'X-Amz-Date' header."
    error = rejected(got.with_header("X-Amz-Date", "Sun, 06 Dec 2026 10:00:00 GMT"), got.signed_at)
    assert error.message.startswith("Date must be in ISO-8601 'basic format'. Got 'Sun, 06 Dec")
    twice = replace(got, headers=(*got.headers, ("authorization", auth)))
    assert rejected(twice).aws_error_type == "IncompleteSignatureException"


def test_scope_must_match(signed: list[Received]) -> None:
    got = signed[0]
    auth, stamp = got.header("authorization"), got.header("x-amz-date")
    day_before = (got.signed_at - timedelta(days=1)).strftime("%Y%m%d")
    error = rejected(got.with_header("Authorization", auth.replace(stamp[:8], day_before)))
    assert error.aws_error_type == "InvalidSignatureException"
    assert error.message == (
        "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from "
        f"HTTP: '{day_before}' != '{stamp[:8]}', from '{stamp}'."
    )
    error = rejected(got.with_header("Authorization", auth.replace("/bedrock/", "/s3/")))
    assert error.message == "Credential should be scoped to correct service: 'bedrock'."
    error = rejected(got, region="us-west-2")
    assert error.message == "Credential should be scoped to a valid region, not 'us-east-1'."
    assert got.verify(region="us-east-1") == ACCESS_KEY_ID


def test_presigned_urls_are_refused(signed: list[Received]) -> None:
    got = replace(signed[0], query="X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Signature=00")
    error = rejected(got)
    assert error.aws_error_type == "IncompleteSignatureException"
    assert "presigned URL" in error.message
    assert "presigned URL" in rejected(got.with_header("Authorization", None)).message


def test_what_botocore_forgives_but_the_gateway_reads_differently(signed: list[Received]) -> None:
    got = signed[0]
    _, model, operation = got.path.rsplit("/", 2)
    for path in (f"/model/./{model}/{operation}", f"/model//{model}/{operation}",
                 f"/model/x/../{model}/{operation}", f"/model/{model}/{operation}/."):  # fmt: skip
        error = rejected(replace(got, path=path))
        assert "normal form" in error.message, path
    assert rejected(replace(got, body=got.body + b" ")).message == BAD_SIGNATURE


def sign_by_hand(got: Received, extra: dict[str, str]) -> Received:
    """``got`` re-signed by botocore with ``extra`` headers signed too."""
    request = AWSRequest("POST", f"http://{got.header('host')}{got.path}", data=got.body)
    for name in ("host", "content-type", "x-amz-date", *extra):
        request.headers[name] = extra.get(name) or got.header(name)
    request.context["timestamp"] = got.header("x-amz-date")
    signer = SigV4Auth(Credentials(ACCESS_KEY_ID, SECRET_ACCESS_KEY), "bedrock", "us-east-1")
    signature = signer.signature(
        signer.string_to_sign(request, signer.canonical_request(request)), request
    )
    names = signer.signed_headers(signer.headers_to_sign(request))
    auth = (
        f"AWS4-HMAC-SHA256 Credential={signer.scope(request)}, SignedHeaders={names}, "
        f"Signature={signature}"
    )
    return replace(got, headers=(*request.headers.items(), ("Authorization", auth)))


def test_payload_hash_header(signed: list[Received]) -> None:
    got = signed[0]
    with_hash = sign_by_hand(got, {"x-amz-content-sha256": hashlib.sha256(got.body).hexdigest()})
    assert with_hash.verify() == ACCESS_KEY_ID
    unsigned = sign_by_hand(got, {"x-amz-content-sha256": "UNSIGNED-PAYLOAD"})
    assert "accepts signed payloads only" in rejected(unsigned).message
    assert "accepts signed payloads only" in rejected(replace(with_hash, body=b"{}")).message


# -- fuzz ------------------------------------------------------------------------------------

POOL = ["", " ", ",", "=", ";", "/", "%", "%25", "%3A", "\t", "\x00", "é", "🔑", "A" * 300,
        "0" * 64, "AWS4-HMAC-SHA256", "Credential=", "aws4_request", "x-amz-date",
        ACCESS_KEY_ID]  # fmt: skip


def _flip(text: str, r: random.Random) -> str:
    i = r.randrange(len(text) + 1)
    how = r.randrange(4)
    if how == 0:  # replace one character
        return text[:i] + r.choice([*POOL, chr(r.randrange(32, 127))]) + text[i + 1 :]
    if how == 1:  # insert
        return text[:i] + r.choice(POOL) + text[i:]
    if how == 2:  # delete a run
        return text[:i] + text[i + r.randrange(1, 8) :]
    return text[:i]  # truncate


def _auth(got: Received, r: random.Random) -> Received:
    auth = got.header("authorization")
    how = r.randrange(6)
    if how == 0:
        auth = _flip(auth, r)
    elif how == 1 and re.search(r"=[0-9a-f]{64}$", auth):  # one hex digit of the signature
        i = len(auth) - 64 + r.randrange(64)
        auth = auth[:i] + r.choice("0123456789abcdefABCDEF".replace(auth[i], "")) + auth[i + 1 :]
    elif how == 2 and (cred := re.search(r"Credential=([^,]*)", auth)):  # a scope element
        parts = cred[1].split("/")
        k = r.randrange(len(parts))
        parts[k] = r.choice([_flip(parts[k], r), parts[k].upper(), parts[k].lower(), ""])
        auth = auth.replace(cred[1], "/".join(parts))
    elif how == 3 and (names := re.search(r"SignedHeaders=([^,]*)", auth)):  # the list
        listed = names[1].split(";")
        change = r.randrange(3)
        if change == 0 and listed:
            listed.pop(r.randrange(len(listed)))
        elif change == 1:
            listed.insert(
                r.randrange(len(listed) + 1),
                r.choice(["user-agent", "content-length", "host", "accept-encoding"]),
            )
        else:
            r.shuffle(listed)
        auth = auth.replace(names[1], ";".join(listed))
    elif how in (1, 2, 3, 4):  # the parameters' order and spacing (no-ops) or one dropped
        algorithm, _, rest = auth.partition(" ")
        params = [p.strip() for p in rest.split(",")]
        r.shuffle(params)
        if r.random() < 0.3:
            params.pop()
        auth = algorithm + " " + r.choice([",", ", ", " ,  "]).join(params)
    else:
        return got.with_header(
            "Authorization", r.choice([None, "", "AWS4-HMAC-SHA256", auth.lower()])
        )
    return got.with_header(r.choice(["Authorization", "authorization"]), auth)


def _date(got: Received, r: random.Random) -> Received:
    try:
        signed_at = got.signed_at
    except ValueError:  # an earlier mutation broke it
        signed_at = datetime(2026, 1, 1, tzinfo=UTC)
    shifted = signed_at + timedelta(seconds=r.choice([-1, 1]) * r.randrange(1, 900))
    value = r.choice([shifted.strftime(STAMP), _flip(got.header("x-amz-date"), r), None])
    return got.with_header("X-Amz-Date", value)


def _body(got: Received, r: random.Random) -> Received:
    body = bytearray(got.body)
    how = r.randrange(4)
    if how == 0 and body:
        body[r.randrange(len(body))] ^= 1 << r.randrange(8)
    elif how == 1:
        body += r.choice([b" ", b"\n", b"{}", b"\x00"])
    elif how == 2:
        del body[r.randrange(len(body) + 1) :]
    else:
        body = bytearray(b'{"messages": []}')
    return replace(got, body=bytes(body))


def _path(got: Received, r: random.Random) -> Received:
    path = got.path
    how = r.randrange(5)
    if how == 0:
        path = _flip(path, r)
    elif how == 1:
        path = path.replace("%3A", r.choice([":", "%3a", "%253A"]), 1)
    elif how == 2:
        parts = path.split("/")
        parts.insert(r.randrange(1, len(parts) + 1), r.choice([".", "..", "", "model"]))
        path = "/".join(parts)
    elif how == 3:
        path = path + r.choice(["/", "/.", "?", "#x"])
    else:
        path = path.replace("/converse", "/invoke").replace("/invoke", "/converse-stream", 1)
    return replace(got, path=path)


def _query(got: Received, r: random.Random) -> Received:
    extra = r.choice(
        [
            "X-Amz-Algorithm=AWS4-HMAC-SHA256",
            "X-Amz-Signature=" + "0" * 64,
            "a=b",
            "a",
            "%",
            "é",
            "a=b#c",
        ]
    )
    return replace(got, query=(got.query + "&" if got.query else "") + extra)


def _headers(got: Received, r: random.Random) -> Received:
    how = r.randrange(7)
    signed = ["host", "content-type", "x-amz-date"]
    name = r.choice(signed)
    if how == 0:  # a signed header gone or changed
        return got.with_header(name, r.choice([None, _flip(got.header(name), r)]))
    if how == 1:  # a signed header repeated
        return replace(got, headers=(*got.headers, (name, got.header(name))))
    if how == 2:  # a signed value padded with whitespace (a no-op: SigV4 trims)
        return got.with_header(name, "  " + got.header(name).replace(" ", "   ") + " ")
    if how == 3:
        return got.with_header("X-Amz-Security-Token", "FwoGZXIvYXdzE")
    if how == 4:  # headers nobody signed (no-ops)
        return replace(
            got,
            headers=(
                *got.headers,
                (r.choice(["x-extra", "user-agent", "x-amz-content-sha256"]), _flip("value", r)),
            ),
        )
    if how == 5:  # a name's case (a no-op)
        return replace(got, headers=tuple((k.upper(), v) for k, v in got.headers))
    return got.with_header(
        "Host", r.choice(["evil.example", "127.0.0.1", got.header("host") + ".", ""])
    )


def _method(got: Received, r: random.Random) -> Received:
    return replace(got, method=r.choice(["GET", "PUT", "post", "", "PO ST", "POST\x00"]))


MUTATORS = [_auth, _auth, _auth, _date, _body, _path, _query, _headers, _headers, _method]


def signed_view(got: Received, names: list[str]) -> tuple[Any, ...]:
    """What the signature covers, in the canonical form SigV4 gives it: two requests with the
    same view are the same request to a verifier (whitespace in values and header-name case
    are not part of it, nor are headers nobody signed, nor the order of the parameters)."""
    values: dict[str, list[str]] = {}
    for key, value in got.headers:
        values.setdefault(key.lower(), []).append(" ".join(value.split()))
    algorithm, _, rest = values.get("authorization", [""])[0].partition(" ")
    params = sorted(tuple(p.strip() for p in part.partition("=")[::2]) for part in rest.split(","))
    covered = tuple((n, tuple(values.get(n, []))) for n in names)
    return (got.method, got.path, got.query, got.body, covered, algorithm, params,
            len(values.get("authorization", [])), "x-amz-security-token" in values)  # fmt: skip


def test_ten_thousand_mutations_never_pass_and_never_crash(signed: list[Received]) -> None:
    r = random.Random(12)
    outcomes: dict[str, int] = {}
    for base in signed:
        assert base.verify() == ACCESS_KEY_ID
    for _ in range(10_000):
        base = r.choice(signed)
        names = re.findall(r"SignedHeaders=([^,]*)", base.header("authorization"))[0].split(";")
        got, now = base, base.signed_at
        for _ in range(r.choice([1, 1, 1, 2, 3])):
            if r.random() < 0.1:
                now = base.signed_at + timedelta(seconds=r.randrange(-600, 601))
            else:
                got = r.choice(MUTATORS)(got, r)
        try:
            who = got.verify(now)
        except SignatureRejected as exc:
            assert exc.status == 403 and exc.message, exc
            outcomes[exc.aws_error_type] = outcomes.get(exc.aws_error_type, 0) + 1
            continue
        except Exception as exc:  # the point of the test: nothing else may escape
            pytest.fail(f"{type(exc).__name__}: {exc} on {got!r} at {now}")
        assert who == ACCESS_KEY_ID
        assert signed_view(got, names) == signed_view(base, names), got
        assert abs(now - base.signed_at) <= timedelta(minutes=5)
        outcomes["accepted"] = outcomes.get("accepted", 0) + 1
    assert sum(outcomes.values()) == 10_000
    # every kind of answer came up, and the accepted ones were all no-ops (checked above)
    assert set(outcomes) == {
        "accepted", "IncompleteSignatureException", "InvalidSignatureException",
        "MissingAuthenticationTokenException", "UnrecognizedClientException",
    }, outcomes  # fmt: skip
