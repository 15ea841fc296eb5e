"""boto3 ``bedrock-runtime`` against a server that needs keys, signing with an AWS-style key
pair llmtrail issued: the signature is verified, the record names the key (proven) and lands
in its workspace; a wrong secret or an unknown pair gets AWS's error shapes."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from tests.harness import ServerProcess
from tests.security.test_front_door import auth, call, create_key, wait_for

MODEL = "sim.anthropic.claude-3-haiku-20240307-v1:0"
MESSAGES = [{"role": "user", "content": [{"text": "hello"}]}]


def client(url: str, akid: str, secret: str) -> Any:
    return boto3.client(
        "bedrock-runtime",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id=akid,
        aws_secret_access_key=secret,
        config=Config(retries={"max_attempts": 1}),
    )


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Any:
    config = '[[routes]]\nmatch = "sim.*"\nprovider = "sim"\n'
    data = tmp_path_factory.mktemp("sigv4") / "data"
    with ServerProcess(data, config=config, env={"LLMTRAIL_SERVER__KEY_REFRESH_S": "1"}) as s:
        yield s


@pytest.fixture(scope="module")
def admin(server: ServerProcess) -> str:
    return str(create_key(server.url, None, role="admin")["key"])


def test_issued_pair_signs_and_identity_is_proven(server: ServerProcess, admin: str) -> None:
    u = server.url
    issued = create_key(u, admin, role="gateway", workspace="claims", aws=True)
    assert issued["awsAccessKeyId"].startswith("LTAK")
    bedrock = client(u, issued["awsAccessKeyId"], issued["awsSecretAccessKey"])
    answer = bedrock.converse(modelId=MODEL, messages=MESSAGES)
    request_id = answer["ResponseMetadata"]["RequestId"]
    stream = bedrock.converse_stream(modelId=MODEL, messages=MESSAGES)
    assert any("contentBlockDelta" in event for event in stream["stream"])
    claims_admin = create_key(u, admin, role="admin", workspace="claims")["key"]
    status, body = wait_for(u + f"/api/records/{request_id}", auth(claims_admin))
    assert status == 200, body
    record = json.loads(body)
    assert record["workspace"] == "claims"
    assert record["identity"]["arn"].endswith(f":key/{issued['id']}")
    listed = call(u + f"/api/keys/{issued['id']}", headers=auth(admin))[2]
    assert issued["awsSecretAccessKey"].encode() not in listed
    assert (
        issued["awsSecretAccessKey"].encode()
        not in (server.data_dir / "llmtrail.duckdb").read_bytes()
    )

    wrong = client(u, issued["awsAccessKeyId"], "x" * 40)
    with pytest.raises(ClientError) as caught:
        wrong.converse(modelId=MODEL, messages=MESSAGES)
    assert caught.value.response["Error"]["Code"] == "InvalidSignatureException"
    stranger = client(u, "AKIAIOSFODNN7EXAMPLE", "y" * 40)
    with pytest.raises(ClientError) as caught:
        stranger.converse(modelId=MODEL, messages=MESSAGES)
    assert caught.value.response["Error"]["Code"] == "UnrecognizedClientException"
    # revoked: the pair stops with its key
    assert call(u + f"/api/keys/{issued['id']}", "DELETE", headers=auth(admin))[0] == 200
    import time

    deadline = time.monotonic() + 10
    while True:
        try:
            bedrock.converse(modelId=MODEL, messages=MESSAGES)
        except ClientError as exc:
            assert exc.response["Error"]["Code"] == "UnrecognizedClientException"
            break
        assert time.monotonic() < deadline, "a revoked pair still signs after 10 s"
        time.sleep(0.2)
    for each in (bedrock, wrong, stranger):
        each.close()


def test_mutated_signatures_never_pass_the_server(server: ServerProcess, admin: str) -> None:
    """A valid signed request, then 2,000 single changes to what was signed (a header, the
    signature, the date, the body, the path): each is refused in AWS's shape, none passes,
    none is a 5xx; the unchanged request still passes afterwards."""
    import http.client
    import random
    from datetime import UTC, datetime

    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    u = server.url
    issued = create_key(u, admin, role="gateway", aws=True)
    body = json.dumps({"messages": MESSAGES}).encode()
    path = "/model/" + MODEL.replace(":", "%3A") + "/converse"

    def signed(payload: bytes = body) -> dict[str, str]:
        request = AWSRequest("POST", u + path, data=payload,
                             headers={"content-type": "application/json"})  # fmt: skip
        creds = Credentials(issued["awsAccessKeyId"], issued["awsSecretAccessKey"])
        SigV4Auth(creds, "bedrock", "us-east-1").add_auth(request)
        return dict(request.headers.items())

    rng = random.Random(7)
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    statuses: dict[int, int] = {}
    for n in range(2000):
        headers = signed()
        mutated_path, mutated_body = path, body
        choice = n % 6
        if choice == 0:
            auth = headers["Authorization"]
            i = rng.randrange(len(auth))
            headers["Authorization"] = auth[:i] + chr(rng.randrange(33, 127)) + auth[i + 1 :]
        elif choice == 1:
            headers["X-Amz-Date"] = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")[:-3] + "99Z"
        elif choice == 2:
            mutated_body = body.replace(b"hello", b"hellp")
        elif choice == 3:
            mutated_path = path.replace("converse", "converse-stream")
        elif choice == 4:
            headers["Authorization"] = headers["Authorization"].replace("bedrock", "s3")
        else:
            headers.pop(rng.choice(["X-Amz-Date", "Authorization"]))
        if headers.get("Authorization") == signed()["Authorization"] and choice == 0:
            continue  # the random character was the one already there
        conn.request("POST", mutated_path, mutated_body, headers)
        answer = conn.getresponse()
        answer.read()
        statuses[answer.status] = statuses.get(answer.status, 0) + 1
        assert answer.status in (400, 401, 403), (n, choice, answer.status)
        assert answer.getheader("x-amzn-ErrorType"), (n, choice)
    conn.request("POST", path, body, signed())
    answer = conn.getresponse()
    answer.read()
    conn.close()
    assert answer.status == 200
    assert sum(statuses.values()) > 1900, statuses
