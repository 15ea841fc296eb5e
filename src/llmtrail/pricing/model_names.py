"""From what a record says (provider, model id) to the names a price can be found under.

Records name models the way callers did: ``gpt-4o-mini``, ``openai/gpt-4o-mini``,
``claude-3-5-haiku-20241022``, ``us.anthropic.claude-3-5-haiku-20241022-v1:0``, a Bedrock
foundation-model or inference-profile ARN, ``sim/demo``. `model_query` turns one of those into
a price provider and candidate names, most specific first:

- a ``provider/`` prefix naming a known price provider is stripped (and names the provider
  when the record has none);
- Bedrock ids go through `parse_model_id`: a cross-region id or inference-profile ARN gives
  ``{prefix}.{base}`` first (genai-prices prices ``global.`` and regional profiles apart), then
  the base model id; a foundation-model ARN gives its model id;
- everything else is looked up as written, lower case (genai-prices itself knows dated
  snapshots such as ``gpt-4o-mini-2024-07-18``).

Provider names are normalised once here: ``aws``/``amazon-bedrock`` are ``bedrock``, and a
configured provider can be mapped to the kind it speaks (``corp-openai`` → ``openai``) by the
aliases the caller passes. Pure functions, no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from llmtrail.model_ids import parse_model_id

__all__ = ["ModelQuery", "model_query", "normalise_provider"]

BEDROCK = "bedrock"
_PROVIDER_NAMES = {"aws": BEDROCK, "aws.bedrock": BEDROCK, "amazon-bedrock": BEDROCK}
# Model-provider segments of Bedrock ids (``anthropic.claude-…``); an id whose first segment
# is one of these is a Bedrock id even when the record does not say which provider served it.
_BEDROCK_VENDORS = frozenset(
    {
        "ai21",
        "amazon",
        "anthropic",
        "cohere",
        "deepseek",
        "google",
        "luma",
        "meta",
        "minimax",
        "mistral",
        "moonshotai",
        "nvidia",
        "openai",
        "qwen",
        "stability",
        "twelvelabs",
        "writer",
        "zai",
    }
)
_BEDROCK_KINDS = frozenset({"foundation-model", "inference-profile", "custom-model"})


@dataclass(frozen=True)
class ModelQuery:
    """Where to look a model up: the price ``provider`` (None when nothing says) and the
    candidate ``names``, lower case, most specific first. ``raw`` is the name as given,
    lower case, for override patterns written against it."""

    provider: str | None
    names: tuple[str, ...]
    raw: str


def normalise_provider(
    provider: str | None, aliases: Mapping[str, str] | None = None
) -> str | None:
    """The price provider a record's ``provider`` stands for: lower case, aliases applied."""
    if not isinstance(provider, str) or not provider.strip():
        return None
    name = provider.strip().lower()
    if aliases:
        name = aliases.get(name, name).lower()
    return _PROVIDER_NAMES.get(name, name)


def _bedrock_names(model: str) -> tuple[str, ...] | None:
    """Candidate names for a Bedrock id or ARN, or None when ``model`` is not one."""
    ref = parse_model_id(model)
    if ref.base_model_id is None or ref.kind not in _BEDROCK_KINDS:
        return None
    base = ref.base_model_id.lower()
    if ref.region_prefix:
        return (f"{ref.region_prefix.lower()}.{base}", base)
    return (base,)


def _looks_bedrock(model: str) -> bool:
    if model.startswith("arn:"):
        return ":bedrock:" in model
    ref = parse_model_id(model)
    return ref.kind in _BEDROCK_KINDS and (ref.provider or "").lower() in _BEDROCK_VENDORS


def model_query(
    provider: str | None, model: str | None, known_providers: frozenset[str]
) -> ModelQuery:
    """The lookup for ``model`` as a record of (already normalised) ``provider`` names it.

    ``known_providers`` are the provider names prices exist for; a ``name/`` prefix is only
    taken as a provider when it is one of them or the record's own provider.
    """
    if not isinstance(model, str) or not model.strip():
        return ModelQuery(provider, (), "")
    name = model.strip()
    raw = name.lower()
    if "/" in name and not name.startswith("arn:"):
        head, _, rest = name.partition("/")
        head_provider = normalise_provider(head)
        if rest and head_provider is not None:
            if provider is None and head_provider in known_providers:
                provider = head_provider
            if head_provider == provider:
                name = rest
    if provider == BEDROCK or (provider is None and _looks_bedrock(name)):
        names = _bedrock_names(name)
        if names is not None:
            return ModelQuery(BEDROCK, names, raw)
        if name.startswith("arn:"):  # an application inference profile: the ARN names no model
            return ModelQuery(BEDROCK, (), raw)
    return ModelQuery(provider, (name.lower(),), raw)
