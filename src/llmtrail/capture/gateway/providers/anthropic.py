"""``anthropic``: Anthropic's Messages API (``POST {base_url}/v1/messages``).

The key goes as ``x-api-key``: the gateway's own (``api_key_env``) when configured — the
caller's key is then only identity — else the caller's, whichever header it came in
(the official client sends ``authorization: Bearer`` to a custom base URL).
``anthropic-version`` is the caller's, or the provider's ``anthropic_version`` option."""

from __future__ import annotations

import orjson

from llmtrail.capture.gateway.providers.base import UpstreamRequest
from llmtrail.capture.gateway.providers.http import HttpProvider
from llmtrail.config import ProviderConfig

DEFAULT_VERSION = "2023-06-01"


class AnthropicProvider(HttpProvider):
    wire_formats = frozenset({"anthropic"})

    def __init__(self, config: ProviderConfig) -> None:
        super().__init__(config)
        self._key = self._auth[7:] if self._auth else None
        self.version = str(config.options.get("anthropic_version") or DEFAULT_VERSION)

    def prepare(self, request: UpstreamRequest) -> tuple[str, bytes, dict[str, str]]:
        headers = {
            "content-type": "application/json",
            "accept": "application/json",
            "anthropic-version": request.headers.get("anthropic-version") or self.version,
        }
        if request.headers.get("anthropic-beta"):
            headers["anthropic-beta"] = request.headers["anthropic-beta"]
        caller = request.headers.get("authorization", "")
        key = self._key or (caller[7:] if caller.lower().startswith("bearer ") else None)
        if key:
            headers["x-api-key"] = key
        return self.base_url + request.path, orjson.dumps(request.body), headers
