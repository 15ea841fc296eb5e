"""The seed's monitor, end to end against a running server: an alarm "at least 5 errors in
the window" (a 10-second high-resolution window keeps the test short), a real SMTP server
and a signed webhook; six boto3 ``converse`` calls to a model id that does not exist; the
e-mail and the webhook arrive; with no more errors the alarm returns to OK and says so; the
history shows both changes. Also the API's refusals and test fires."""

from __future__ import annotations

import functools
import hashlib
import hmac
import json
from collections.abc import Iterator
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import openai
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from tests.alerts.receivers import SmtpReceiver, WebhookReceiver, wait_until
from tests.harness import ServerProcess, call

SECRET = "webhook-signing-secret"
QUERY = 'filter status = "ERROR" | stats count(*)'


@pytest.fixture(scope="module")
def smtp() -> Iterator[SmtpReceiver]:
    with SmtpReceiver() as receiver:
        yield receiver


@pytest.fixture(scope="module")
def hook() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as receiver:
        yield receiver


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, smtp: SmtpReceiver) -> Iterator[ServerProcess]:
    root: Path = tmp_path_factory.mktemp("alarms")
    config = f"""
[alerts]
evaluation_interval_s = 1
allow_private_webhooks = true
public_url = "http://llmtrail.example:7788"

[smtp]
host = "127.0.0.1"
port = {smtp.port}
from = "llmtrail@example.com"
"""
    with ServerProcess(root / "data", config=config, env={"HOOK_SECRET": SECRET}) as proc:
        yield proc


def put(server: ServerProcess, path: str, body: Any) -> Any:
    status, answer = call(server.url, "PUT", path, body)
    assert status == 200, answer
    return answer


def states(server: ServerProcess, name: str) -> list[tuple[str, str]]:
    status, answer = call(server.url, "GET", f"/api/alarms/{name}/history?type=StateUpdate")
    assert status == 200, answer
    return [(i["OldState"], i["NewState"]) for i in reversed(answer["AlarmHistoryItems"])]


def test_five_errors_alarm_mails_and_signs_then_returns_to_ok(
    server: ServerProcess, smtp: SmtpReceiver, hook: WebhookReceiver
) -> None:
    put(server, "/api/notifiers/oncall", {"type": "email", "to": ["oncall@example.com"]})
    put(
        server,
        "/api/notifiers/hook",
        {"type": "webhook", "url": hook.url, "secretEnv": "HOOK_SECRET"},
    )
    alarm = put(
        server,
        "/api/alarms/model-errors",
        {
            "AlarmDescription": "5 or more failed calls within the window",
            "Query": QUERY,
            "Period": 10,
            "EvaluationPeriods": 1,
            "Threshold": 5,
            "ComparisonOperator": "GreaterThanOrEqualToThreshold",
            "AlarmActions": ["oncall", "arn:aws:sns:us-east-1:000000000000:hook"],
            "OKActions": ["oncall", "hook"],
        },
    )
    assert alarm["StateValue"] == "INSUFFICIENT_DATA"
    wait_until(lambda: states(server, "model-errors"), what="the first evaluation")
    assert states(server, "model-errors") == [("INSUFFICIENT_DATA", "OK")]
    wait_until(lambda: len(smtp.messages) == 1 and len(hook.posts) == 1, what="the OK notices")

    client = boto3.client(
        "bedrock-runtime",
        endpoint_url=server.url,
        region_name="us-east-1",
        aws_access_key_id="AKIDEXAMPLE",
        aws_secret_access_key="secret",
        config=Config(retries={"max_attempts": 1}),
    )
    started = datetime.now(UTC)
    with closing(client):
        for _ in range(6):
            with pytest.raises(ClientError) as caught:
                client.converse(
                    modelId="no-such-model-anywhere",
                    messages=[{"role": "user", "content": [{"text": "hello"}]}],
                )
            assert caught.value.response["Error"]["Code"] == "ResourceNotFoundException"

    wait_until(lambda: len(smtp.messages) >= 2, what="the ALARM e-mail")
    mail = smtp.messages[1]
    assert mail["Subject"].strip().startswith('ALARM: "model-errors"')
    text = mail.get_content()
    assert "5 or more failed calls" in text and "Threshold:  5" in text
    assert "http://llmtrail.example:7788/alarms/model-errors" in text
    wait_until(lambda: len(hook.posts) >= 2, what="the ALARM webhook")
    headers, raw = hook.posts[1]
    signed = headers["x-llmtrail-timestamp"].encode() + b"." + raw
    assert headers["x-llmtrail-signature"] == (
        "sha256=" + hmac.new(SECRET.encode(), signed, hashlib.sha256).hexdigest()
    )
    posted = json.loads(raw)
    assert posted["AlarmName"] == "model-errors" and posted["NewStateValue"] == "ALARM"
    assert posted["Threshold"] == 5 and posted["Value"] >= 5
    assert posted["Trigger"]["Query"] == QUERY

    # what the alarm counted is what the query API counts
    status, result = call(
        server.url,
        "POST",
        "/api/query",
        {
            "queryString": QUERY,
            "startTime": (started - timedelta(seconds=1)).isoformat(),
            "endTime": datetime.now(UTC).isoformat(),
        },
    )
    assert status == 200, result
    errors = int(result["results"][0][0]["value"])
    assert errors == 6 and 5 <= posted["Value"] <= errors

    # no more errors: the window empties and the alarm returns to OK, and says so
    wait_until(lambda: len(smtp.messages) >= 3, what="the OK e-mail")
    assert smtp.messages[2]["Subject"].strip().startswith('OK: "model-errors"')
    assert states(server, "model-errors") == [
        ("INSUFFICIENT_DATA", "OK"),
        ("OK", "ALARM"),
        ("ALARM", "OK"),
    ]
    history = call(server.url, "GET", "/api/alarms/model-errors/history")[1]["AlarmHistoryItems"]
    alarmed = next(i for i in history if i.get("NewState") == "ALARM")
    assert alarmed["Value"] == posted["Value"] and "Threshold Crossed" in alarmed["Reason"]
    wait_until(
        lambda: (
            len(call(server.url, "GET", "/api/deliveries?status=delivered")[1]["deliveries"]) == 6
        ),
        what="six deliveries: OK, ALARM and OK to two notifiers",
    )
    assert call(server.url, "GET", "/api/deliveries?status=failed")[1]["deliveries"] == []


def test_api_refusals_are_problems_naming_the_field(server: ServerProcess) -> None:
    cases = [
        ("/api/alarms/x", {"Query": QUERY, "Period": 45, "Threshold": 1,
                           "ComparisonOperator": "GreaterThanThreshold"}, "Period"),
        ("/api/alarms/x", {"Query": "fields @message", "Threshold": 1,
                           "ComparisonOperator": "GreaterThanThreshold"}, "Query"),
        ("/api/alarms/x", [1, 2], "body"),
        ("/api/notifiers/x", {"type": "sms"}, "type"),
        ("/api/notifiers/bad%20name", {"type": "email", "to": ["a@example.com"]}, "name"),
    ]  # fmt: skip
    for path, body, field in cases:
        status, answer = call(server.url, "PUT", path, body)
        assert status == 400 and answer["field"] == field, answer
    status, answer = call(server.url, "GET", "/api/alarms?state=RED")
    assert status == 400 and answer["field"] == "state"
    status, answer = call(server.url, "GET", "/api/deliveries?limit=0")
    assert status == 400 and answer["field"] == "limit"
    status, answer = call(server.url, "GET", "/api/alarms/nope")
    assert status == 404
    status, answer = call(server.url, "POST", "/api/notifiers/nope/test")
    assert status == 404


def test_a_private_webhook_is_refused_without_the_setting(tmp_path: Path) -> None:
    with ServerProcess(tmp_path / "data") as proc:
        status, answer = call(
            proc.url,
            "PUT",
            "/api/notifiers/hook",
            {"type": "webhook", "url": "http://127.0.0.1:1/"},
        )
    assert status == 400 and answer["field"] == "url"
    assert "allow_private_webhooks" in answer["detail"]


def test_test_fire_of_a_notifier_and_a_failing_one_is_shown(
    server: ServerProcess, smtp: SmtpReceiver
) -> None:
    before = len(smtp.messages)
    put(server, "/api/notifiers/oncall2", {"type": "email", "to": ["second@example.com"]})
    status, answer = call(server.url, "POST", "/api/notifiers/oncall2/test")
    assert status == 200 and answer["status"] == "delivered", answer
    assert len(smtp.messages) == before + 1
    assert smtp.messages[-1]["Subject"].strip().startswith("[TEST]")
    put(server, "/api/notifiers/nowhere", {"type": "webhook", "url": "http://127.0.0.1:1/x"})
    status, answer = call(server.url, "POST", "/api/notifiers/nowhere/test")
    assert status == 200 and answer["status"] == "failed" and answer["lastError"]
    failed = call(server.url, "GET", "/api/deliveries?status=failed")[1]["deliveries"]
    assert any(d["action"] == "nowhere" for d in failed)


def test_the_seed_token_alarm_reads_the_rollups(server: ServerProcess) -> None:
    """``Sum`` of input tokens per hour over a threshold: the value the alarm reads is what
    the query API sums over the records, and it alarms above and stays OK below."""
    with openai.OpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0) as client:
        for i in range(4):
            client.chat.completions.create(
                model="sim/echo", messages=[{"role": "user", "content": f"count these words {i}"}]
            )
    server.settle()

    def summed() -> float:
        now = datetime.now(UTC)
        status, result = call(
            server.url,
            "POST",
            "/api/query",
            {
                "queryString": "stats sum(input.inputTokenCount)",
                "startTime": (now - timedelta(hours=1)).isoformat(),
                "endTime": (now + timedelta(minutes=1)).isoformat(),
            },
        )
        assert status == 200, result
        return float(result["results"][0][0]["value"])

    total = summed()
    assert total > 0
    seed = {
        "MetricName": "InputTokenCount",
        "Namespace": "AWS/Bedrock",
        "Statistic": "Sum",
        "Period": 3600,
        "EvaluationPeriods": 1,
        "ComparisonOperator": "GreaterThanThreshold",
    }
    put(server, "/api/alarms/tokens-high", {**seed, "Threshold": total - 1})
    put(server, "/api/alarms/tokens-low", {**seed, "Threshold": total + 1})
    for name, state in (("tokens-high", "ALARM"), ("tokens-low", "OK")):
        alarm = wait_until(functools.partial(evaluated, server, name), what=f"{name} evaluated")
        assert alarm["StateValue"] == state, alarm
        assert alarm["Value"] == total


def evaluated(server: ServerProcess, name: str) -> dict[str, Any] | None:
    """Alarm ``name`` once it has left INSUFFICIENT_DATA, else None."""
    alarm: dict[str, Any] = call(server.url, "GET", f"/api/alarms/{name}")[1]
    return alarm if alarm["StateValue"] != "INSUFFICIENT_DATA" else None
