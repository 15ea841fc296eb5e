"""Webhook notifiers: a POST of the message as generic JSON (CloudWatch's SNS alarm fields)
or as Slack-compatible ``{"text": …}``, signed with HMAC-SHA256 when a secret is named.

The signature covers the timestamp and the exact body: ``X-Llmtrail-Timestamp: <unix
seconds>`` and ``X-Llmtrail-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>." +
body)>``, so a receiver can refuse a forged or replayed call. The secret is read from the
environment variable ``secretEnv`` names when sending; it is never stored.

The URL is checked when the notifier is saved and again at each delivery (`destinations`),
and the connection goes to the checked address.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import os
import socket
import ssl
import time
from collections.abc import Mapping
from typing import Any

import orjson

from llmtrail.alerts.destinations import Destination, resolve, split_url
from llmtrail.alerts.message import AlarmMessage
from llmtrail.alerts.notifiers import DeliveryFailed, Notifier
from llmtrail.config import Settings
from llmtrail.errors import ValidationError

FORMATS = ("json", "slack")
SIGNATURE_HEADER = "X-Llmtrail-Signature"
TIMESTAMP_HEADER = "X-Llmtrail-Timestamp"
_FIELDS = frozenset({"type", "url", "format", "secretEnv", "name"})
_ENV_NAME_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_")


def validate(doc: Mapping[str, Any], settings: Settings) -> dict[str, Any]:
    if "secret" in doc:
        raise ValidationError(
            "secret",
            "secrets are not stored; name the environment variable that holds it (secretEnv)",
        )
    unknown = sorted(set(doc) - _FIELDS)
    if unknown:
        raise ValidationError(unknown[0], "is not a field of a webhook (url, format, secretEnv)")
    url = doc.get("url")
    split_url(url)
    resolve(str(url), settings.alerts.allow_private_webhooks, unresolved_ok=True)
    fmt = doc.get("format", "json")
    if fmt not in FORMATS:
        raise ValidationError("format", f"must be one of {', '.join(FORMATS)}")
    secret_env = doc.get("secretEnv")
    if secret_env is not None and (
        not isinstance(secret_env, str)
        or not 0 < len(secret_env) <= 128
        or not set(secret_env) <= _ENV_NAME_CHARS
    ):
        raise ValidationError("secretEnv", "must be an environment variable's name")
    out: dict[str, Any] = {"url": url, "format": fmt}
    if secret_env:
        out["secretEnv"] = secret_env
    return out


def sign(secret: bytes, timestamp: str, body: bytes) -> str:
    """The ``X-Llmtrail-Signature`` value of ``body`` sent at ``timestamp``."""
    digest = hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def payload(message: AlarmMessage, fmt: str) -> bytes:
    if fmt == "slack":
        return orjson.dumps({"text": f"*{message.subject}*\n{message.text}"})
    return orjson.dumps(message.to_dict())


class WebhookNotifier:
    def __init__(
        self,
        url: str,
        fmt: str = "json",
        secret_env: str | None = None,
        *,
        allow_private: bool = False,
        timeout_s: float = 10.0,
    ) -> None:
        self.url = url
        self.format = fmt
        self.secret_env = secret_env
        self.allow_private = allow_private
        self.timeout_s = timeout_s

    def send(self, message: AlarmMessage) -> str:
        body = payload(message, self.format)
        headers = {"content-type": "application/json", "user-agent": "llmtrail-alarms"}
        if self.secret_env:
            secret = os.environ.get(self.secret_env)
            if not secret:
                raise DeliveryFailed(f"secretEnv: ${self.secret_env} is not set")
            stamp = str(int(time.time()))
            headers[TIMESTAMP_HEADER] = stamp
            headers[SIGNATURE_HEADER] = sign(secret.encode(), stamp, body)
        try:
            target = resolve(self.url, self.allow_private)
        except ValidationError as exc:
            raise DeliveryFailed(exc.message) from None
        status, reason = self._post(target, body, headers)
        if not 200 <= status < 300:
            raise DeliveryFailed(f"POST {self.url} answered {status} {reason}")
        return f"POST answered {status}"

    def _post(self, target: Destination, body: bytes, headers: dict[str, str]) -> tuple[int, str]:
        errors = []
        for address in target.addresses:
            connection = _connection(target, address, self.timeout_s)
            try:
                connection.request("POST", target.target, body, headers)
                answer = connection.getresponse()
                answer.read(65536)
                return answer.status, answer.reason
            except (OSError, http.client.HTTPException) as exc:
                errors.append(f"{address}: {exc}")
            finally:
                connection.close()
        raise DeliveryFailed(f"POST {self.url} failed: {'; '.join(errors) or 'no address'}")


class _PinnedHTTP(http.client.HTTPConnection):
    """An HTTP connection to a checked address, whatever the host resolves to now."""

    address = ""

    def connect(self) -> None:
        self.sock = socket.create_connection((self.address, self.port), self.timeout)


class _PinnedHTTPS(http.client.HTTPSConnection):
    address = ""

    def connect(self) -> None:
        raw = socket.create_connection((self.address, self.port), self.timeout)
        context = ssl.create_default_context()
        self.sock = context.wrap_socket(raw, server_hostname=self.host)


def _connection(target: Destination, address: str, timeout: float) -> http.client.HTTPConnection:
    kind = _PinnedHTTPS if target.scheme == "https" else _PinnedHTTP
    connection = kind(target.host, target.port, timeout=timeout)
    connection.address = address
    return connection


def build(doc: Mapping[str, Any], settings: Settings) -> Notifier:
    return WebhookNotifier(
        str(doc["url"]),
        str(doc.get("format", "json")),
        doc.get("secretEnv"),
        allow_private=settings.alerts.allow_private_webhooks,
        timeout_s=settings.alerts.delivery_timeout_s,
    )
