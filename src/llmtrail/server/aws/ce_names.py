"""What Cost Explorer calls llmtrail's records: the ``SERVICE``, ``USAGE_TYPE`` and
``REGION`` values of a call's cost.

- ``SERVICE`` is the provider that served the call: ``Amazon Bedrock`` for Bedrock (the name
  AWS bills it under), ``OpenAI``, ``Anthropic``, ``Google``, … for the others, ``llmtrail
  sim`` for the built-in simulator, and a configured provider's own name (``corp-openai``)
  where llmtrail knows no better one. A record without a provider is ``Unknown``.
- ``USAGE_TYPE`` is named as AWS names Bedrock's token usage types in its Cost and Usage
  Report: ``<billing code>-<model>-<kind>``, the kinds ``input-tokens``, ``output-tokens``,
  ``cache-read-input-token-count`` and ``cache-write-input-token-count``
  (``USE1-anthropic.claude-3-5-haiku-20241022-v1:0-input-tokens``). The model is the one the
  call was priced for (``resolvedModelId``, else ``modelId``), written as the API names it,
  as AWS's newer usage types do. Charges per image, embedding or request (priced apart from
  tokens) are ``<code>-<model>-other-charges``.
- The billing code is AWS's region billing code (``us-east-1`` → ``USE1``, ``eu-west-1`` →
  ``EU``) of the record's ``region``, else of the server's region; a region AWS has no code
  for is written in capitals.

Pure functions of strings.
"""

from __future__ import annotations

from llmtrail.pricing.model_names import normalise_provider

__all__ = [
    "KINDS",
    "OTHER",
    "billing_code",
    "service_name",
    "usage_type",
]

# The token kinds of a call, in the order usage types are listed, with AWS's suffix.
KINDS = {
    "input": "input-tokens",
    "output": "output-tokens",
    "cache_read": "cache-read-input-token-count",
    "cache_write": "cache-write-input-token-count",
}
OTHER = "other-charges"  # per-image, per-embedding and per-request charges

_SERVICES = {
    "bedrock": "Amazon Bedrock",
    "openai": "OpenAI",
    "anthropic": "Anthropic",
    "google": "Google",
    "gemini": "Google",
    "vertex": "Google",
    "mistral": "Mistral AI",
    "cohere": "Cohere",
    "azure": "Azure OpenAI",
    "groq": "Groq",
    "deepseek": "DeepSeek",
    "xai": "xAI",
    "sim": "llmtrail sim",
}
UNKNOWN_SERVICE = "Unknown"

# https://docs.aws.amazon.com/global-infrastructure/latest/regions/aws-region-billing-codes.html
_BILLING_CODES = {
    "us-east-1": "USE1",
    "us-east-2": "USE2",
    "us-west-1": "USW1",
    "us-west-2": "USW2",
    "ca-central-1": "CAN1",
    "ca-west-1": "CAN2",
    "mx-central-1": "MXC1",
    "sa-east-1": "SAE1",
    "af-south-1": "AFS1",
    "ap-east-1": "APE1",
    "ap-east-2": "APE2",
    "ap-northeast-1": "APN1",
    "ap-northeast-2": "APN2",
    "ap-northeast-3": "APN3",
    "ap-south-1": "APS3",
    "ap-south-2": "APS5",
    "ap-southeast-1": "APS1",
    "ap-southeast-2": "APS2",
    "ap-southeast-3": "APS4",
    "ap-southeast-4": "APS6",
    "ap-southeast-5": "APS7",
    "ap-southeast-6": "APS8",
    "ap-southeast-7": "APS9",
    "eu-central-1": "EUC1",
    "eu-central-2": "EUC2",
    "eu-north-1": "EUN1",
    "eu-south-1": "EUS1",
    "eu-south-2": "EUS2",
    "eu-west-1": "EU",
    "eu-west-2": "EUW2",
    "eu-west-3": "EUW3",
    "il-central-1": "ILC1",
    "me-central-1": "MEC1",
    "me-south-1": "MES1",
    "us-gov-east-1": "UGE1",
    "us-gov-west-1": "UGW1",
    "cn-north-1": "CNN1",
    "cn-northwest-1": "CNW1",
}


def service_name(provider: str | None) -> str:
    """The ``SERVICE`` value of a call served by ``provider``."""
    name = normalise_provider(provider)
    if name is None:
        return UNKNOWN_SERVICE
    return _SERVICES.get(name, provider.strip() if provider else name)


def billing_code(region: str) -> str:
    """AWS's billing code of ``region`` (``USE1``), or the region in capitals."""
    return _BILLING_CODES.get(region, region.upper())


def usage_type(region: str, model: str | None, kind: str) -> str:
    """The ``USAGE_TYPE`` of ``kind`` (a `KINDS` key, or ``other``) used of ``model``."""
    suffix = KINDS.get(kind, OTHER)
    return f"{billing_code(region)}-{model or 'unknown-model'}-{suffix}"
