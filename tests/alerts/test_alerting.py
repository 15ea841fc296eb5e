"""Alerting over a state store with an injected clock: state changes, history, deliveries
through a real SMTP server and a real webhook receiver, retries, and the lease."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from llmtrail.alerts import Alerting
from llmtrail.alerts.notifiers.webhook import SIGNATURE_HEADER, TIMESTAMP_HEADER
from llmtrail.alerts.sources import AlarmValues
from llmtrail.config import AlertSettings, Settings, SmtpSettings
from llmtrail.errors import ValidationError
from llmtrail.store.memory import MemoryStateStore
from tests.alerts.receivers import SmtpReceiver, WebhookReceiver

ERRORS = {
    "Query": 'filter status = "ERROR" | stats count(*)',
    "Period": 300,
    "EvaluationPeriods": 1,
    "Threshold": 5,
    "ComparisonOperator": "GreaterThanOrEqualToThreshold",
    "AlarmActions": ["mail", "arn:aws:sns:us-east-1:123456789012:hook"],
    "OKActions": ["hook"],
}


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 12, 6, 7, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


class ErrorLog:
    """Error times; the query source counts those inside the period asked for."""

    def __init__(self) -> None:
        self.times: list[datetime] = []

    def count(self, text: str, start: datetime, end: datetime, workspace: str) -> int:
        assert workspace == "default"
        return sum(1 for t in self.times if start <= t < end)


@pytest.fixture
def receivers() -> Iterator[tuple[SmtpReceiver, WebhookReceiver]]:
    with SmtpReceiver() as smtp, WebhookReceiver() as hook:
        yield smtp, hook


def settings(smtp_port: int) -> Settings:
    return Settings(
        smtp=SmtpSettings(host="127.0.0.1", port=smtp_port, sender="alarms@example.com"),
        alerts=AlertSettings(allow_private_webhooks=True, public_url="http://ui.example"),
    )


def make(state: MemoryStateStore, cfg: Settings, log: ErrorLog, clock: Clock) -> Alerting:
    values = AlarmValues(lambda: None, log.count, lambda name, now: None)
    return Alerting(state, cfg, values, clock=clock)


def setup(alerting: Alerting, hook_url: str) -> None:
    alerting.notifiers.put("mail", {"type": "email", "to": ["oncall@example.com"]})
    alerting.notifiers.put("hook", {"type": "webhook", "url": hook_url, "secretEnv": "HOOK_KEY"})
    alerting.put_alarm("errors", ERRORS)


def test_alarm_then_ok_notifies_once_each_and_keeps_history(
    receivers: tuple[SmtpReceiver, WebhookReceiver], monkeypatch: pytest.MonkeyPatch
) -> None:
    smtp, hook = receivers
    monkeypatch.setenv("HOOK_KEY", "s3cret")
    state, clock, log = MemoryStateStore(), Clock(), ErrorLog()
    alerting = make(state, settings(smtp.port), log, clock)
    setup(alerting, hook.url)

    assert alerting.tick()
    assert alerting.alarms.current("errors")["StateValue"] == "OK"  # 0 errors: a datapoint
    log.times += [clock.now - timedelta(seconds=i) for i in range(6)]
    clock.now += timedelta(seconds=60)
    alerting.tick()
    assert alerting.alarms.current("errors")["StateValue"] == "ALARM"
    assert len(smtp.messages) == 1 and len(hook.posts) == 2  # the OK of the first tick
    mail = smtp.messages[0]
    assert mail["Subject"].strip().startswith('ALARM: "errors"')
    body = mail.get_content()
    assert "Value:      6" in body and "Threshold:  5" in body
    assert "http://ui.example/alarms/errors" in body
    headers, raw = hook.posts[-1]
    doc = json.loads(raw)
    assert doc["NewStateValue"] == "ALARM" and doc["Value"] == 6 and doc["Threshold"] == 5
    signed = headers[TIMESTAMP_HEADER.lower()].encode() + b"." + raw
    expected = hmac.new(b"s3cret", signed, hashlib.sha256).hexdigest()
    assert headers[SIGNATURE_HEADER.lower()] == f"sha256={expected}"

    clock.now += timedelta(seconds=60)
    alerting.tick()  # still 6 errors in the last 5 minutes: no new notification
    assert len(smtp.messages) == 1 and len(hook.posts) == 2
    clock.now += timedelta(seconds=300)
    alerting.tick()
    assert alerting.alarms.current("errors")["StateValue"] == "OK"
    assert len(smtp.messages) == 1  # OKActions: the webhook only
    assert json.loads(hook.posts[-1][1])["NewStateValue"] == "OK"

    changes = alerting.alarms.history("errors", "StateUpdate")
    assert [(c["OldState"], c["NewState"]) for c in changes] == [
        ("ALARM", "OK"),
        ("OK", "ALARM"),
        ("INSUFFICIENT_DATA", "OK"),
    ]
    assert changes[1]["Value"] == 6 and "Threshold Crossed" in changes[1]["Reason"]
    delivered = alerting.deliveries.list(alarm="errors", status="delivered")
    assert len(delivered) == 4


def test_a_failed_delivery_is_retried_then_shown_failed(
    receivers: tuple[SmtpReceiver, WebhookReceiver],
) -> None:
    smtp, hook = receivers
    hook.status = 500
    state, clock, log = MemoryStateStore(), Clock(), ErrorLog()
    cfg = settings(smtp.port)
    cfg.alerts.delivery_attempts = 3
    alerting = make(state, cfg, log, clock)
    alerting.notifiers.put("hook", {"type": "webhook", "url": hook.url})
    alerting.put_alarm("errors", {**ERRORS, "AlarmActions": ["hook"], "OKActions": []})
    log.times += [clock.now] * 5
    clock.now += timedelta(seconds=1)
    alerting.tick()
    [pending] = alerting.deliveries.list(alarm="errors")
    assert pending["status"] == "pending" and "answered 500" in pending["lastError"]
    alerting.tick()  # not due yet
    assert len(hook.posts) == 1
    clock.now += timedelta(seconds=10)
    alerting.tick()
    assert len(hook.posts) == 2
    hook.status = 200
    clock.now += timedelta(seconds=30)
    alerting.tick()
    [done] = alerting.deliveries.list(alarm="errors")
    assert done["status"] == "delivered" and done["attempts"] == 3 and len(hook.posts) == 3


def test_only_the_lease_holder_evaluates_so_a_notification_goes_out_once(
    receivers: tuple[SmtpReceiver, WebhookReceiver],
) -> None:
    smtp, hook = receivers
    state, clock, log = MemoryStateStore(), Clock(), ErrorLog()
    first = make(state, settings(smtp.port), log, clock)
    second = make(state, settings(smtp.port), log, clock)
    first.notifiers.put("hook", {"type": "webhook", "url": hook.url})
    first.put_alarm("errors", {**ERRORS, "AlarmActions": ["hook"], "OKActions": []})
    log.times += [clock.now] * 6
    clock.now += timedelta(seconds=1)
    assert first.tick() is True
    assert second.tick() is False
    assert len(hook.posts) == 1
    clock.now += first.lease.duration + timedelta(seconds=1)  # the first server died
    assert second.tick() is True
    assert first.tick() is False


def test_test_fires_reach_each_action_once(
    receivers: tuple[SmtpReceiver, WebhookReceiver], monkeypatch: pytest.MonkeyPatch
) -> None:
    smtp, hook = receivers
    monkeypatch.setenv("HOOK_KEY", "k")
    alerting = make(MemoryStateStore(), settings(smtp.port), ErrorLog(), Clock())
    setup(alerting, hook.url)
    results = alerting.test_alarm("errors")
    assert [r["status"] for r in results] == ["delivered", "delivered"]
    assert smtp.messages[0]["Subject"].strip().startswith("[TEST] ALARM")
    assert json.loads(hook.posts[0][1])["Test"] is True
    one = alerting.test_notifier("mail")
    assert one["status"] == "delivered" and len(smtp.messages) == 2


def test_a_webhook_to_a_private_address_is_refused_unless_allowed() -> None:
    alerting = make(MemoryStateStore(), Settings(), ErrorLog(), Clock())
    for url in ("http://127.0.0.1:9/x", "http://169.254.169.254/latest", "http://10.1.2.3/",
                "http://[::1]/", "http://[::ffff:192.168.0.1]/", "http://localhost/"):  # fmt: skip
        with pytest.raises(ValidationError) as caught:
            alerting.notifiers.put("hook", {"type": "webhook", "url": url})
        assert caught.value.field == "url" and "allow_private_webhooks" in caught.value.message


@pytest.mark.parametrize(
    ("doc", "field"),
    [
        ({"type": "pager"}, "type"),
        ({"type": "webhook", "url": "ftp://example.com/"}, "url"),
        ({"type": "webhook", "url": "https://u:p@example.com/"}, "url"),
        ({"type": "webhook", "url": "https://example.com/", "secret": "x"}, "secret"),
        ({"type": "webhook", "url": "https://example.com/", "format": "xml"}, "format"),
        ({"type": "email", "to": ["not an address"]}, "to[0]"),
        ({"type": "email", "to": []}, "to"),
    ],
)
def test_notifier_refusals_name_the_field(doc: dict[str, Any], field: str) -> None:
    alerting = make(MemoryStateStore(), settings(25), ErrorLog(), Clock())
    with pytest.raises(ValidationError) as caught:
        alerting.notifiers.put("n", doc)
    assert caught.value.field == field


def test_email_needs_an_smtp_server() -> None:
    alerting = make(MemoryStateStore(), Settings(), ErrorLog(), Clock())
    with pytest.raises(ValidationError, match=r"\[smtp\] host"):
        alerting.notifiers.put("mail", {"type": "email", "to": ["a@example.com"]})


def test_each_budget_gets_80_and_100_percent_alarms() -> None:
    budgets = [("acme", "100")]
    used = {"acme": 85.0}
    values = AlarmValues(lambda: None, ErrorLog().count, lambda name, now: used.get(name))
    alerting = Alerting(MemoryStateStore(), Settings(), values, lambda: budgets, clock=Clock())
    alerting.tick()
    described = {a["AlarmName"]: a for a in alerting.alarms.describe_all()}
    assert described["budget acme 80%"]["StateValue"] == "ALARM"
    assert described["budget acme 80%"]["Value"] == 85.0
    assert described["budget acme 100%"]["StateValue"] == "OK"
    # the user's actions on a budget alarm survive the next sync
    doc = {**alerting.alarms.get("budget acme 80%").to_dict(), "ActionsEnabled": False}
    alerting.put_alarm("budget acme 80%", doc)
    alerting.tick()
    assert alerting.alarms.get("budget acme 80%").actions_enabled is False
    budgets.clear()
    alerting.tick()
    assert alerting.alarms.describe_all() == []
