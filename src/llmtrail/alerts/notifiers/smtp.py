"""E-mail notifiers: a plain-text message through the SMTP server of ``[smtp]``.

The notifier's own configuration holds only its recipients (``to``) and an optional
``subjectPrefix``; the server, sender, STARTTLS and login come from ``[smtp]``, and the
password from the environment variable ``password_env`` names, read when sending — never
stored, never shown.
"""

from __future__ import annotations

import os
import smtplib
import ssl
from collections.abc import Mapping
from email.message import EmailMessage
from email.utils import formatdate, make_msgid, parseaddr
from typing import Any

from llmtrail.alerts.message import AlarmMessage
from llmtrail.alerts.notifiers import DeliveryFailed, Notifier
from llmtrail.config import Settings, SmtpSettings
from llmtrail.errors import ValidationError

MAX_RECIPIENTS = 50
_FIELDS = frozenset({"type", "to", "subjectPrefix", "name"})


def validate(doc: Mapping[str, Any], settings: Settings) -> dict[str, Any]:
    unknown = sorted(set(doc) - _FIELDS)
    if unknown:
        raise ValidationError(unknown[0], "is not a field of an email notifier (to, subjectPrefix)")
    to = doc.get("to")
    if isinstance(to, str):
        to = [to]
    if not isinstance(to, list) or not 1 <= len(to) <= MAX_RECIPIENTS:
        raise ValidationError("to", f"must list 1 to {MAX_RECIPIENTS} e-mail addresses")
    for i, address in enumerate(to):
        if not isinstance(address, str) or not _is_address(address):
            raise ValidationError(f"to[{i}]", f"is not an e-mail address: {address!r}")
    prefix = doc.get("subjectPrefix", "")
    if not isinstance(prefix, str) or len(prefix) > 100 or "\n" in prefix or "\r" in prefix:
        raise ValidationError("subjectPrefix", "must be one line of at most 100 characters")
    if not settings.smtp.host:
        raise ValidationError(
            "type", "an email notifier needs an SMTP server: set [smtp] host in the configuration"
        )
    return {"to": list(to), "subjectPrefix": prefix}


def _is_address(text: str) -> bool:
    _name, address = parseaddr(text)
    local, at, domain = address.partition("@")
    return bool(at and local and domain) and "\n" not in text and "\r" not in text


class EmailNotifier:
    """Sends each message as one e-mail to ``to``."""

    def __init__(self, to: list[str], smtp: SmtpSettings, prefix: str = "") -> None:
        self.to = to
        self.smtp = smtp
        self.prefix = prefix

    def compose(self, message: AlarmMessage) -> EmailMessage:
        mail = EmailMessage()
        sender = self.smtp.sender or "llmtrail@localhost"
        mail["From"] = sender
        mail["To"] = ", ".join(self.to)
        mail["Subject"] = (self.prefix + " " if self.prefix else "") + message.subject
        mail["Date"] = formatdate(localtime=False)
        mail["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or "localhost")
        mail["X-Llmtrail-Alarm"] = message.alarm
        mail.set_content(message.text)
        return mail

    def send(self, message: AlarmMessage) -> str:
        s = self.smtp
        if not s.host:
            raise DeliveryFailed("[smtp] host is not configured")
        password = os.environ.get(s.password_env, "") if s.password_env else ""
        if s.password_env and not password:
            raise DeliveryFailed(f"[smtp] password_env: ${s.password_env} is not set")
        try:
            with smtplib.SMTP(s.host, s.port, timeout=s.timeout_s) as client:
                if s.starttls:
                    client.starttls(context=ssl.create_default_context())
                if s.user:
                    client.login(s.user, password)
                refused = client.send_message(self.compose(message))
        except (OSError, smtplib.SMTPException) as exc:
            raise DeliveryFailed(f"SMTP {s.host}:{s.port}: {exc}") from None
        if refused:
            raise DeliveryFailed(f"SMTP {s.host}:{s.port} refused {sorted(refused)}")
        return f"sent to {len(self.to)} recipient(s) through {s.host}:{s.port}"


def build(doc: Mapping[str, Any], settings: Settings) -> Notifier:
    return EmailNotifier(list(doc["to"]), settings.smtp, str(doc.get("subjectPrefix", "")))
