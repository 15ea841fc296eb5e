"""Providers register by type name, through the same table a plugin would extend."""

from __future__ import annotations

from collections.abc import Callable

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
    from llmtrail.capture.gateway.providers.openai import OpenAIProvider

    return OpenAIProvider(config)


PROVIDER_FACTORIES: dict[str, ProviderFactory] = {"sim": _sim, "openai": _openai}


def build_providers(settings: Settings) -> dict[str, Provider]:
    return {name: PROVIDER_FACTORIES[cfg.type](cfg) for name, cfg in settings.providers.items()}


__all__ = [
    "PROVIDER_FACTORIES",
    "Provider",
    "UpstreamError",
    "UpstreamRequest",
    "UpstreamResponse",
    "build_providers",
]
