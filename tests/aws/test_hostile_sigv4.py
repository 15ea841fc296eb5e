"""SigV4 edge cases on the AWS-shaped APIs of a server that needs keys (its first admin key
made in open mode, then key pairs issued with ``aws``): a request signed for another service,
at a stale or future time, with its body or a signed header changed after signing, or with
the payload hash dropped, is refused in AWS's shape on each protocol; a well-signed request
naming no operation learns so; hostile bodies under a good signature get the same answers
as in open mode; a page token of one workspace is refused in another. After each, a good
signed request is answered."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from unittest import mock

import cbor2
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from tests.aws.hostile import (
    CBOR_PATH,
    CE,
    COST,
    GROUP,
    JSON_TYPE,
    LOGS,
    SERIALIZATION,
    Reply,
    Wire,
    nested_not,
)
from tests.harness import ServerProcess
from tests.security.test_front_door import create_key

CONFIG = 'account_id = "123456789012"\n'
JSON_HEADERS = {"x-amz-target": LOGS + "DescribeLogGroups", "content-type": JSON_TYPE}
CBOR_HEADERS = {"content-type": "application/cbor", "smithy-protocol": "rpc-v2-cbor"}
INVALID = "InvalidSignatureException"


class Signer:
    """Signs requests as botocore does, with an issued key pair, then sends them as bytes."""

    def __init__(self, server: ServerProcess, pairs: dict[str, dict[str, Any]]) -> None:
        self.url = server.url
        self.wire = Wire(server.url)
        self.pairs = pairs

    def send(
        self,
        method: str,
        path: str,
        body: bytes,
        headers: dict[str, str],
        service: str,
        *,
        key: str = "default",
        region: str = "us-east-1",
        at: datetime | None = None,
        payload_hash: bool = False,
        after: dict[str, Any] | None = None,
    ) -> Reply:
        """``after`` changes the request once signed: ``body``, or headers (None drops one)."""
        pair = self.pairs[key]
        request = AWSRequest(method=method, url=self.url + path, data=body, headers=headers)
        if payload_hash:
            request.headers["x-amz-content-sha256"] = hashlib.sha256(body).hexdigest()
        signer = SigV4Auth(
            Credentials(pair["awsAccessKeyId"], pair["awsSecretAccessKey"]), service, region
        )
        signed_at = (at or datetime.now(UTC)).replace(tzinfo=None)
        with mock.patch("botocore.auth.get_current_datetime", return_value=signed_at):
            signer.add_auth(request)  # botocore's clock, set to ``at``: llmtrail's is real
        sent = dict(request.headers.items())
        changes = dict(after or {})
        body = changes.pop("body", body)
        for name, value in changes.items():
            if value is None:
                sent.pop(name, None)
            else:
                sent[name] = value
        return self.wire.send(method, path, body, **sent)

    def logs(self, **options: Any) -> Reply:
        return self.send("POST", "/", b"{}", JSON_HEADERS, "logs", **options)

    def cbor(self, operation: str, body: Any, **options: Any) -> Reply:
        raw = body if isinstance(body, bytes) else cbor2.dumps(body)
        return self.send("POST", CBOR_PATH + operation, raw, CBOR_HEADERS, "monitoring", **options)

    def bedrock(self, **options: Any) -> Reply:
        return self.send("GET", "/inference-profiles", b"", {}, "bedrock", **options)

    def alive(self) -> None:
        assert self.logs().status == 200
        assert self.cbor("ListDashboards", {}).status == 200
        assert self.bedrock().status == 200


@pytest.fixture(scope="module")
def signer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Signer]:
    data = tmp_path_factory.mktemp("hostile-sigv4") / "data"
    with ServerProcess(data, config=CONFIG) as server:
        admin = str(create_key(server.url, None, role="admin")["key"])  # open mode: the first
        pairs = {
            "default": create_key(server.url, admin, role="admin", aws=True),
            "acme": create_key(server.url, admin, role="admin", workspace="acme", aws=True),
            "reader": create_key(server.url, admin, role="reader", aws=True),
        }
        yield Signer(server, pairs)


def _refused(reply: Reply, code: str, says: str, status: int = 403) -> None:
    assert (reply.status, reply.error) == (status, code), reply
    assert says in reply.message, reply.message


def test_signed_for_another_service_is_refused_on_each_protocol(signer: Signer) -> None:
    for service in ("monitoring", "bedrock", "ce"):
        _refused(signer.send("POST", "/", b"{}", JSON_HEADERS, service), INVALID, "'logs'")
    path = CBOR_PATH + "ListDashboards"
    on_cbor = signer.send("POST", path, cbor2.dumps({}), CBOR_HEADERS, "logs")
    _refused(on_cbor, INVALID, "'monitoring'")
    _refused(signer.send("GET", "/inference-profiles", b"", {}, "logs"), INVALID, "'bedrock'")
    signer.alive()


def test_another_region_is_accepted(signer: Signer) -> None:
    """One llmtrail endpoint serves every region: the credential may name any of them (the
    signature is still checked with the key's secret)."""
    assert signer.logs(region="eu-west-1").status == 200
    assert signer.cbor("ListDashboards", {}, region="ap-south-1").status == 200


@pytest.mark.parametrize(
    ("shift", "says"),
    [(-timedelta(minutes=20), "Signature expired"), (timedelta(minutes=20), "not yet current")],
)
def test_a_signature_outside_five_minutes_is_refused(
    signer: Signer, shift: timedelta, says: str
) -> None:
    at = datetime.now(UTC) + shift
    _refused(signer.logs(at=at), INVALID, says)
    _refused(signer.cbor("ListDashboards", {}, at=at), INVALID, says)
    _refused(signer.bedrock(at=at), INVALID, says)
    signer.alive()


def test_the_payload_is_signed_with_or_without_its_hash_header(signer: Signer) -> None:
    body = json.dumps({"limit": 1}).encode()
    other = json.dumps({"limit": 2}).encode()

    def logs(**options: Any) -> Reply:
        return signer.send("POST", "/", body, JSON_HEADERS, "logs", **options)

    # boto3's JSON clients send no x-amz-content-sha256: the body is in the signature anyway
    assert logs().status == 200
    assert logs(payload_hash=True).status == 200
    _refused(logs(after={"body": other}), INVALID, "signature we calculated does not match")
    _refused(logs(payload_hash=True, after={"body": other}), INVALID, "x-amz-content-sha256")
    _refused(logs(payload_hash=True, after={"x-amz-content-sha256": None}), INVALID, "missing")
    _refused(
        logs(after={"x-amz-target": LOGS + "DescribeQueries"}),
        INVALID,
        "signature we calculated does not match",
    )
    dashboards = cbor2.dumps({"DashboardNamePrefix": "a"})
    changed = signer.send(
        "POST",
        CBOR_PATH + "ListDashboards",
        dashboards,
        CBOR_HEADERS,
        "monitoring",
        after={"body": cbor2.dumps({"DashboardNamePrefix": "b"})},
    )
    _refused(changed, INVALID, "signature we calculated does not match")
    signer.alive()


def test_targets_naming_no_operation(signer: Signer) -> None:
    for target in ("Foo.Bar", LOGS.lower() + "DescribeLogGroups", LOGS):
        headers = {**JSON_HEADERS, "x-amz-target": target}
        # was: a 401 problem document (the front door did not see an AWS request)
        signed = signer.send("POST", "/", b"{}", headers, "logs")
        _refused(signed, "UnknownOperationException", "names no operation", 400)
        unsigned = signer.wire.send("POST", "/", b"{}", **headers)
        _refused(unsigned, "MissingAuthenticationTokenException", "sign the request")
    cbor_get = signer.send("GET", CBOR_PATH + "ListDashboards", b"", {}, "monitoring")
    _refused(cbor_get, "UnknownOperationException", "POST", 400)
    signer.alive()


def test_hostile_bodies_under_a_good_signature(signer: Signer) -> None:
    cycle = b"\xa1" + cbor2.dumps("DashboardNamePrefix") + b"\xd8\x1c\x81\xd8\x1d\x00"
    _refused(signer.cbor("ListDashboards", cycle), SERIALIZATION, "must be a string", 400)
    deep = {**COST, "Filter": nested_not(300)}
    headers = {"x-amz-target": CE + "GetCostAndUsage", "content-type": JSON_TYPE}
    reply = signer.send("POST", "/", json.dumps(deep).encode(), headers, "ce")
    _refused(reply, "ValidationException", "nest at most 32 levels", 400)
    # a reader is refused a change before its body is read
    refused = signer.cbor("PutDashboard", b"\xff\xff", key="reader")
    _refused(refused, "AccessDeniedException", "'manage' permission")
    signer.alive()


def test_a_page_token_of_one_workspace_is_refused_in_another(signer: Signer) -> None:
    for name in ("hostile-a", "hostile-b"):
        body = {"name": name, "queryString": "fields @message", "logGroupNames": [GROUP]}
        put = {**JSON_HEADERS, "x-amz-target": LOGS + "PutQueryDefinition"}
        made = signer.send("POST", "/", json.dumps(body).encode(), put, "logs", key="acme")
        assert made.status == 200, made

    def page(key: str, **params: Any) -> Reply:
        body = json.dumps({"queryDefinitionNamePrefix": "hostile-", **params}).encode()
        headers = {**JSON_HEADERS, "x-amz-target": LOGS + "DescribeQueryDefinitions"}
        return signer.send("POST", "/", body, headers, "logs", key=key)

    first = page("acme", maxResults=1)
    token = first.data["nextToken"]
    _refused(page("default", nextToken=token), "InvalidParameterException", "nextToken", 400)
    assert page("default").data["queryDefinitions"] == []  # and acme's are not listed there
    rest = page("acme", nextToken=token).data["queryDefinitions"]
    assert [d["name"] for d in first.data["queryDefinitions"] + rest] == ["hostile-a", "hostile-b"]
