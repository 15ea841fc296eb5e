"""``bedrock``: the Bedrock runtime, re-signed with the gateway's own AWS credentials.

A caller's SigV4 signature covers the gateway's host, so it cannot be forwarded; the gateway
signs again with botocore's `SigV4Auth`, using botocore's standard credential chain
(environment, shared files and ``profile``, container and instance roles) for the provider's
``region``. The caller's access key id is identity only, never a credential here.
``base_url`` overrides the endpoint (default ``https://bedrock-runtime.{region}.amazonaws.com``).
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest

from llmtrail.capture.gateway.call import FORWARDED_ONLY
from llmtrail.capture.gateway.providers.base import (
    UpstreamError,
    UpstreamRequest,
    UpstreamResponse,
)
from llmtrail.capture.gateway.providers.http import HttpProvider
from llmtrail.config import ProviderConfig


class BedrockProvider(HttpProvider):
    wire_formats = frozenset({"bedrock"})

    def __init__(self, config: ProviderConfig) -> None:
        super().__init__(config)
        self.region = str(config.options.get("region") or "us-east-1")
        self.profile = config.options.get("profile")
        self.base_url = (
            config.base_url or f"https://bedrock-runtime.{self.region}.amazonaws.com"
        ).rstrip("/")
        self.has_own_key = True
        self._credentials: Any = None

    async def send(self, request: UpstreamRequest) -> UpstreamResponse:
        if self._credentials is None:
            # the chain may ask the instance metadata service: keep it off the event loop
            self._credentials = await asyncio.to_thread(self._resolve_credentials)
        return await super().send(request)

    def _resolve_credentials(self) -> Any:
        import botocore.session

        session = botocore.session.Session(profile=self.profile)
        credentials = session.get_credentials()
        if credentials is None:
            raise UpstreamError(
                "upstream_credentials",
                502,
                f"{self.name}: no AWS credentials found by botocore's credential chain "
                "(set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE or a role)",
            )
        return credentials

    def prepare(self, request: UpstreamRequest) -> tuple[str, bytes, dict[str, str]]:
        url = self.base_url + request.path
        data = orjson.dumps(request.body)
        accept = "application/vnd.amazon.eventstream" if request.stream else "application/json"
        headers = {"content-type": "application/json", "accept": accept}
        headers.update({k: v for k, v in request.headers.items() if k in FORWARDED_ONLY})
        signed = AWSRequest(method="POST", url=url, data=data, headers=headers)
        SigV4Auth(self._credentials.get_frozen_credentials(), "bedrock", self.region).add_auth(
            signed
        )
        return url, data, dict(signed.headers.items())
