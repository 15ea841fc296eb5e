"""Providers reached over HTTP, on aiohttp with a keep-alive pool: the base every real
upstream shares. Timeouts: connect, first byte (response headers), stream idle (between
chunks) and total. No retries: each attempt a client makes is its own record.

``openai`` is any OpenAI-compatible base URL (OpenAI, vLLM, Ollama, …); ``anthropic`` and
``bedrock`` live beside it and differ only in how a request is addressed and authenticated."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator

import aiohttp
import orjson
from yarl import URL

from llmtrail.capture.gateway.providers.base import UpstreamError, UpstreamRequest, UpstreamResponse
from llmtrail.config import ProviderConfig

# Caller headers worth forwarding besides the body; auth is handled separately.
_FORWARD = ("openai-organization", "openai-project", "openai-beta", "user-agent")


class HttpProvider:
    """POST a JSON body to ``base_url + path``; subclasses say how to address and sign it."""

    wire_formats: frozenset[str] = frozenset()

    def __init__(self, config: ProviderConfig) -> None:
        self.name = config.name
        self.base_url = config.base_url
        self.timeouts = config.timeouts
        key = os.environ.get(config.api_key_env) if config.api_key_env else None
        self._auth = f"Bearer {key}" if key else None
        self.has_own_key = self._auth is not None
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=1000, keepalive_timeout=60, ttl_dns_cache=300),
                timeout=aiohttp.ClientTimeout(
                    total=None, connect=self.timeouts.connect, sock_connect=self.timeouts.connect
                ),
                auto_decompress=True,
                skip_auto_headers=("User-Agent",),
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def prepare(self, request: UpstreamRequest) -> tuple[str, bytes, dict[str, str]]:
        """The URL, body bytes and headers of ``request``."""
        headers = {"content-type": "application/json", "accept": "application/json"}
        headers.update({k: v for k, v in request.headers.items() if k in _FORWARD})
        auth = self._auth or request.headers.get("authorization")
        if auth:
            headers["authorization"] = auth
        return self.base_url + request.path, orjson.dumps(request.body), headers

    async def send(self, request: UpstreamRequest) -> UpstreamResponse:
        url, data, headers = self.prepare(request)
        started = time.monotonic()
        try:
            response = await asyncio.wait_for(
                self._client().post(URL(url, encoded=True), data=data, headers=headers),
                timeout=self.timeouts.first_byte,
            )
        except TimeoutError:
            raise UpstreamError(
                "upstream_timeout",
                504,
                f"{self.name}: no response within the first-byte timeout of "
                f"{self.timeouts.first_byte:g}s",
            ) from None
        except aiohttp.ClientConnectorError as exc:
            raise UpstreamError(
                "upstream_unreachable",
                502,
                f"{self.name}: cannot connect to {self.base_url}: {exc.os_error}",
            ) from None
        except aiohttp.ClientError as exc:
            raise UpstreamError("upstream_unreachable", 502, f"{self.name}: {exc}") from None
        out_headers = {k.lower(): v for k, v in response.headers.items()}
        if request.stream and response.status < 300:
            return UpstreamResponse(
                response.status, out_headers, chunks=self._chunks(response, started)
            )
        try:
            body = await asyncio.wait_for(response.read(), timeout=self._remaining(started))
        except (TimeoutError, aiohttp.ClientError) as exc:
            response.close()
            raise UpstreamError(
                "upstream_timeout", 504, f"{self.name}: response body not received: {exc!r}"
            ) from None
        finally:
            response.release()
        return UpstreamResponse(response.status, out_headers, body)

    async def _chunks(
        self, response: aiohttp.ClientResponse, started: float
    ) -> AsyncIterator[bytes]:
        try:
            while True:
                timeout = min(self.timeouts.stream_idle, self._remaining(started))
                try:
                    async with asyncio.timeout(timeout):  # no task per chunk, unlike wait_for
                        chunk = await response.content.readany()
                except TimeoutError:
                    raise UpstreamError(
                        "upstream_stream_idle",
                        504,
                        f"{self.name}: stream idle for more than {timeout:g}s",
                    ) from None
                except aiohttp.ClientError as exc:
                    raise UpstreamError(
                        "upstream_unreachable", 502, f"{self.name}: stream broken: {exc}"
                    ) from None
                if not chunk:
                    return
                yield chunk
        finally:
            response.release()

    def _remaining(self, started: float) -> float:
        return max(0.001, self.timeouts.total - (time.monotonic() - started))


class OpenAIProvider(HttpProvider):
    wire_formats = frozenset({"openai"})
