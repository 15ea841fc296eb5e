"""One gateway call: what is known about the caller while it runs (its facts become the
record elsewhere: `llmtrail.capture.gateway.facts`).

Only an allow-list of request headers is recorded; ``authorization``, ``x-api-key``,
``api-key``, ``x-amz-security-token`` and ``cookie`` never are. The caller's key becomes a
keyed hash (HMAC with the server secret) for ``identity.arn`` and is forwarded upstream only
when the provider has no key of its own (DESIGN.md, *Identity*). A caller proven by an
llmtrail key or a SigV4 signature made with an issued pair is that key's id, and the record
goes to the key's workspace.
"""

from __future__ import annotations

import os
import re
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import orjson

from llmtrail.config import Settings
from llmtrail.errors import ValidationError
from llmtrail.record import (
    METADATA_MAX_ENTRIES,
    coerce_request_metadata,
    validate_request_metadata,
)
from llmtrail.security.principal import OPEN, Principal

METADATA_HEADER = "x-llmtrail-metadata"
SESSION_HEADER = "x-llmtrail-session-id"
NO_LOG_HEADER = "x-llmtrail-no-log"
RECORDED_HEADERS = frozenset(
    {
        "user-agent",
        "content-type",
        "accept",
        "traceparent",
        "tracestate",
        SESSION_HEADER,
        "openai-organization",
        "openai-project",
        "x-stainless-lang",
        "x-stainless-package-version",
        "x-stainless-runtime",
        "x-stainless-runtime-version",
        "x-stainless-os",
        "x-stainless-arch",
        "x-stainless-retry-count",
        "x-forwarded-for",
        "anthropic-version",
        "anthropic-beta",
        "amz-sdk-invocation-id",
    }
)
# Request headers that go upstream without being recorded (their content is recorded elsewhere)
FORWARDED_ONLY = frozenset(
    {
        "x-amzn-bedrock-request-metadata",
        "x-amzn-bedrock-trace",
        "x-amzn-bedrock-guardrailidentifier",
        "x-amzn-bedrock-guardrailversion",
        "x-amzn-bedrock-performanceconfig-latency",
    }
)
_SIGV4_CREDENTIAL = re.compile(r"Credential=([A-Za-z0-9]{1,128})/")


class Call:
    def __init__(
        self,
        headers: dict[str, str],
        settings: Settings,
        operation: str,
        principal: Principal = OPEN,
    ) -> None:
        self.headers = headers
        self.principal = principal
        self.settings = settings
        self.operation = operation
        self.started = datetime.now(UTC)
        self.t0 = time.perf_counter()
        self.request_id = str(uuid.uuid4())
        self.first_token_at: float | None = None
        self.additions: dict[str, Any] = {}  # e.g. the inference profile the caller named
        self.identify: Callable[[str], str] | None = None  # keyed hash of a caller's own key

    def elapsed_ms(self, at: float | None = None) -> int:
        return round(((at if at is not None else time.perf_counter()) - self.t0) * 1000)

    @property
    def caller_key(self) -> str | None:
        auth = self.headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            return auth[7:].strip() or None
        return self.headers.get("api-key") or self.headers.get("x-api-key") or None

    def identity(self) -> tuple[str, str] | None:
        """``(identity.arn, identityType)``: the llmtrail key that proved the caller (a key
        header or a SigV4 signature with an issued pair); else the access key id of a SigV4
        ``Authorization`` (claimed, not verified: llmtrail does not hold that secret); else a
        keyed hash of the caller's own key. Never the key, the signature or a secret."""
        p = self.principal
        if p.key_id is not None:
            kind = "sigv4_verified" if p.via == "sigv4" else "llmtrail_key"
            return f"arn:llmtrail:iam::{self.settings.account_id}:key/{p.key_id}", kind
        auth = self.headers.get("authorization", "")
        if auth.startswith("AWS4-HMAC-SHA256"):
            found = _SIGV4_CREDENTIAL.search(auth)
            if found:
                return f"llmtrail:aws-access-key/{found.group(1)}", "sigv4_claimed"
            return None
        key = self.caller_key
        if key and self.identify is not None:
            return f"llmtrail:apikey/hmac:{self.identify(key)[:20]}", "api_key_hmac"
        return None

    def upstream_headers(self, provider_has_key: bool) -> dict[str, str]:
        """Headers for the provider: the caller's key only when the provider has none."""
        out = {
            k: v for k, v in self.headers.items() if k in RECORDED_HEADERS or k in FORWARDED_ONLY
        }
        key = self.caller_key
        if key and not provider_has_key:
            out["authorization"] = f"Bearer {key}"
        out["x-llmtrail-sim"] = self.headers.get("x-llmtrail-sim", "")
        return out

    def request_metadata(self, body: dict[str, Any]) -> tuple[dict[str, str], bool]:
        """Body ``metadata``/``user`` copied leniently, then the strict header on top."""
        lenient: dict[str, Any] = {}
        if isinstance(body.get("metadata"), dict):
            lenient.update(body["metadata"])
        if isinstance(body.get("user"), str) and body["user"]:
            lenient["user_id"] = body["user"]
        meta, truncated = coerce_request_metadata(lenient)
        raw = self.headers.get(METADATA_HEADER)
        if raw is not None:
            try:
                parsed = orjson.loads(raw)
            except orjson.JSONDecodeError:
                raise ValidationError(METADATA_HEADER, "must be a JSON object of strings") from None
            strict = validate_request_metadata(parsed, METADATA_HEADER)
            merged = {**strict, **{k: v for k, v in meta.items() if k not in strict}}
            if len(merged) > METADATA_MAX_ENTRIES:
                merged = dict(list(merged.items())[:METADATA_MAX_ENTRIES])
                truncated = True
            meta = merged
        return meta, truncated

    def trace(self) -> dict[str, str] | None:
        out: dict[str, str] = {}
        parts = self.headers.get("traceparent", "").split("-")
        if len(parts) == 4 and len(parts[1]) == 32 and len(parts[2]) == 16:
            out.update(traceId=parts[1], parentSpanId=parts[2], spanId=os.urandom(8).hex())
        session = self.headers.get(SESSION_HEADER)
        if session:
            out["sessionId"] = session[:256]
        if out:
            out["spanKind"] = "llm"
        return out or None
