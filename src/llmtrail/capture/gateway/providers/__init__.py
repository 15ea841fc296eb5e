"""Providers register by type name. The built-in ones sit in `PROVIDER_FACTORIES`; a plugin
adds its own through the ``llmtrail.providers`` entry-point group (name: the provider type,
value: a factory taking a `ProviderConfig`), and both are looked up the same way."""

from __future__ import annotations

from collections.abc import Callable
from importlib.metadata import entry_points

from llmtrail.capture.gateway.providers.base import (
    Provider,
    UpstreamError,
    UpstreamRequest,
    UpstreamResponse,
)
from llmtrail.config import ProviderConfig, Settings

ProviderFactory = Callable[[ProviderConfig], Provider]


def _sim(config: ProviderConfig) -> Provider:
    from llmtrail.capture.gateway.providers.sim import SimProvider

    return SimProvider(config)


def _openai(config: ProviderConfig) -> Provider:
    from llmtrail.capture.gateway.providers.http import OpenAIProvider

    return OpenAIProvider(config)


def _anthropic(config: ProviderConfig) -> Provider:
    from llmtrail.capture.gateway.providers.anthropic import AnthropicProvider

    return AnthropicProvider(config)


def _bedrock(config: ProviderConfig) -> Provider:
    from llmtrail.capture.gateway.providers.bedrock import BedrockProvider

    return BedrockProvider(config)


PROVIDER_FACTORIES: dict[str, ProviderFactory] = {
    "sim": _sim,
    "openai": _openai,
    "anthropic": _anthropic,
    "bedrock": _bedrock,
}


def provider_factories() -> dict[str, ProviderFactory]:
    """Built-in factories plus those that installed plugins declare."""
    found = dict(PROVIDER_FACTORIES)
    for entry in entry_points(group="llmtrail.providers"):
        found.setdefault(entry.name, entry.load())
    return found


def build_providers(settings: Settings) -> dict[str, Provider]:
    factories = provider_factories()
    return {name: factories[cfg.type](cfg) for name, cfg in settings.providers.items()}


__all__ = [
    "PROVIDER_FACTORIES",
    "Provider",
    "UpstreamError",
    "UpstreamRequest",
    "UpstreamResponse",
    "build_providers",
]
