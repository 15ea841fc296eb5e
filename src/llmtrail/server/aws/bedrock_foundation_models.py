"""Bedrock's ``ListFoundationModels``: the models this server's gateway can call.

Bedrock lists the models of a region; llmtrail's equivalent is what its configuration
routes, so the list is built from the same two sources the gateway and cost use:

- the **configured routes**: every alias and every literal (glob-free) route pattern, as
  ``/v1/models`` lists them;
- the **price table's models**, for each glob route (``match = "sim/*"``, ``"anthropic.*"``)
  without a fixed upstream model: every model the table prices for that route's provider
  kind whose id, as is or under the ``provider/`` prefix the route strips, the glob matches
  (the router then says which route serves it). Bedrock prices of ``global.``/``regional.``
  ids name their foundation model.

Bedrock's per-model facts llmtrail does not hold are derived, and documented as such: the
output modality from the model id (``embed`` → EMBEDDING; image generators → IMAGE; else
TEXT), streaming for text models, ``ON_DEMAND`` only, no customizations, lifecycle
``ACTIVE``. The model ARN is ``arn:aws:bedrock:REGION::foundation-model/ID`` with the id a
caller names the model by.

`foundation_models` and `model_summary` are pure (router, provider kinds and price table
in, data out), the handler only applies the filters.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from llmtrail.capture.gateway.routing import Router
from llmtrail.model_ids import REGION_PREFIXES
from llmtrail.pricing.table import PriceTable
from llmtrail.security.principal import Permission
from llmtrail.server.aws.bedrock_errors import run
from llmtrail.server.aws.operations import AwsCall, operation

__all__ = ["FoundationModel", "foundation_models", "list_foundation_models", "model_summary"]

SERVICE = "bedrock"
_GLOB = frozenset("*?[")
# Bedrock's provider names (``providerName``) for the vendor prefix of a Bedrock model id,
# and the brands of the provider kinds llmtrail speaks.
_VENDORS = {
    "ai21": "AI21 Labs",
    "amazon": "Amazon",
    "anthropic": "Anthropic",
    "cohere": "Cohere",
    "deepseek": "DeepSeek",
    "meta": "Meta",
    "mistral": "Mistral AI",
    "openai": "OpenAI",
    "qwen": "Qwen",
    "stability": "Stability AI",
    "twelvelabs": "TwelveLabs",
    "writer": "Writer",
}
_KINDS = {"openai": "OpenAI", "anthropic": "Anthropic", "sim": "llmtrail sim"}
_IMAGE_MARKS = ("image", "canvas", "diffusion", "dall-e", "sd3", "stable-", "imagen", "flux")


@dataclass(frozen=True)
class FoundationModel:
    """A model the gateway routes: the id a caller names, the configured provider serving
    it, that provider's kind (``sim``, ``openai``, ``anthropic``, ``bedrock``, …) and the
    model the provider is asked for."""

    model_id: str
    provider: str
    kind: str
    upstream: str

    @property
    def provider_name(self) -> str:
        """Bedrock's ``providerName``: the vendor of a Bedrock model, the brand of a provider
        kind, else the configured provider's name."""
        if self.kind == "bedrock":
            head, _, rest = self.upstream.partition(".")
            vendor = rest.partition(".")[0] if head in REGION_PREFIXES and rest else head
            return _VENDORS.get(vendor.lower(), vendor)
        if self.provider == self.kind and self.kind in _KINDS:
            return _KINDS[self.kind]
        return self.provider

    @property
    def output_modality(self) -> str:
        name = self.upstream.lower()
        if "embed" in name:
            return "EMBEDDING"
        if any(mark in name for mark in _IMAGE_MARKS):
            return "IMAGE"
        return "TEXT"

    def answers_to(self, provider: str) -> bool:
        """``byProvider``: the provider name, the configured provider or its kind, in any
        case."""
        wanted = provider.lower()
        return wanted in (self.provider_name.lower(), self.provider.lower(), self.kind.lower())


def foundation_models(
    router: Router, kinds: Mapping[str, str], table: PriceTable
) -> list[FoundationModel]:
    """The models ``router`` sends somewhere: aliases, literal routes, then, per glob route,
    the price table's models of its provider's kind (``kinds``: provider name → type) that
    the route serves; each once, in that order."""
    found: dict[str, FoundationModel] = {}

    def add(model_id: str) -> None:
        resolved = router.resolve(model_id)
        if model_id in found or resolved is None:
            return
        provider = resolved.provider
        kind = kinds.get(provider, provider)
        found[model_id] = FoundationModel(model_id, provider, kind, resolved.upstream_model)

    for alias in router.aliases:
        add(alias)
    globs = []
    for route in router.routes:
        if _GLOB.isdisjoint(route.match):
            add(route.match)
        elif route.model is None:
            globs.append(route)
    priced: dict[str, list[str]] = {}
    for route in globs:
        kind = kinds.get(route.provider, route.provider)
        if kind not in priced:
            priced[kind] = _priced_models(table, kind)
        for model in priced[kind]:
            for candidate in (model, f"{route.provider}/{model}"):
                if fnmatch.fnmatchcase(candidate, route.match):
                    add(candidate)
                    break
    return list(found.values())


def _priced_models(table: PriceTable, kind: str) -> list[str]:
    """The ids the price table prices for provider kind ``kind``, sorted, each once. A
    Bedrock price of a geography's profile (``global.X``) or of genai-prices' regional
    endpoints (``regional.X``) names the foundation model ``X``."""
    models = {price.model for price in table.entries(kind)}
    if kind == "bedrock":
        models = {_foundation_id(model) for model in models}
    return sorted(models)


def _foundation_id(model: str) -> str:
    head, _, rest = model.partition(".")
    return rest if (head in REGION_PREFIXES or head == "regional") and "." in rest else model


def model_summary(model: FoundationModel, region: str) -> dict[str, Any]:
    """Bedrock's ``FoundationModelSummary`` of ``model``."""
    output = model.output_modality
    return {
        "modelArn": f"arn:aws:bedrock:{region}::foundation-model/{model.model_id}",
        "modelId": model.model_id,
        "modelName": model.upstream,
        "providerName": model.provider_name,
        "inputModalities": ["TEXT"],
        "outputModalities": [output],
        "responseStreamingSupported": output == "TEXT",
        "customizationsSupported": [],
        "inferenceTypesSupported": ["ON_DEMAND"],
        "modelLifecycle": {"status": "ACTIVE"},
    }


def _kept(models: Iterable[FoundationModel], params: Mapping[str, Any]) -> list[FoundationModel]:
    """The models the request's filters keep. Nothing can be customized or provisioned in
    llmtrail, so ``byCustomizationType`` and ``byInferenceType=PROVISIONED`` keep none."""
    if "byCustomizationType" in params or params.get("byInferenceType") == "PROVISIONED":
        return []
    provider, modality = params.get("byProvider"), params.get("byOutputModality")
    return [
        m
        for m in models
        if (provider is None or m.answers_to(provider))
        and (modality is None or m.output_modality == modality)
    ]


@operation(SERVICE, "ListFoundationModels", Permission.READ)
async def list_foundation_models(call: AwsCall) -> dict[str, Any]:
    """``{"modelSummaries": [...]}``: the routed models the filters keep."""
    runtime = call.runtime
    kinds = {name: p.type for name, p in runtime.settings.providers.items()}
    models = await run(lambda: foundation_models(runtime.router, kinds, runtime.enricher.table))
    kept = _kept(models, call.params)
    return {"modelSummaries": [model_summary(m, call.region) for m in kept]}
