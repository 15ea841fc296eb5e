"""One reader per wire format: the format's `Exchange`, which knows how its answers and
streams tell tokens, ids and stop reasons, reading a finished call's facts. Built without
providers, so any process can read (the recorder does)."""

from __future__ import annotations

from llmtrail.capture.gateway.exchange import ExchangeReader
from llmtrail.capture.gateway.facts import Reader
from llmtrail.capture.gateway.routing import Router
from llmtrail.config import Settings


def readers(settings: Settings) -> dict[str, Reader]:
    """The reader of each wire format, by its name (``CallFacts.wire``)."""
    from llmtrail.capture.gateway.anthropic.api import AnthropicRoutes
    from llmtrail.capture.gateway.bedrock.api import BedrockRoutes
    from llmtrail.capture.gateway.openai.api import OpenAIRoutes

    router = Router(settings)
    return {
        route.wire: ExchangeReader(route(settings, router, {}))
        for route in (OpenAIRoutes, AnthropicRoutes, BedrockRoutes)
    }
