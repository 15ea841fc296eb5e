"""Bedrock model ids taken apart: what a ``modelId`` names, and the payload family it implies.

`parse_model_id` reads the ``{modelId}`` of ``/model/{modelId}/…`` (already percent-decoded)
as a `ModelRef`: a foundation-model id, a cross-region inference-profile id (``us.``, ``eu.``,
``apac.``, ``jp.``, ``au.``, ``us-gov.``, ``global.``), or an ARN of a foundation model, an
inference profile, an application inference profile, a provisioned/custom/imported model or
a prompt; with the model family that decides how InvokeModel bodies are read. The gateway's
Bedrock routes, prices and profiles all read ids with it. Pure functions of strings: nothing
here raises on odd input.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["Arn", "ModelRef", "model_family", "parse_model_id"]

MAX_MODEL_ID_LENGTH = 2048  # botocore's InvokeModelIdentifier / ConversationalModelId
REGION_PREFIXES = frozenset({"us", "eu", "apac", "jp", "au", "ca", "us-gov", "global"})
# A geography prefix AWS may add later looks like these: short, lower case.
_PREFIX_SHAPE = re.compile(r"[a-z]{2,6}(-[a-z]{2,4})?")
_PLAIN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_:-]*(\.[A-Za-z0-9][A-Za-z0-9_:-]*)+")
_ARN_KINDS = frozenset(
    {
        "foundation-model",
        "inference-profile",
        "application-inference-profile",
        "provisioned-model",
        "custom-model",
        "custom-model-deployment",
        "imported-model",
        "prompt",
        "prompt-router",
        "default-prompt-router",
        "endpoint",
    }
)
_PROVIDER_FAMILY = {
    "anthropic": "anthropic",
    "meta": "meta-llama",
    "mistral": "mistral",
    "ai21": "ai21",
    "deepseek": "deepseek",
    "openai": "openai",
    "qwen": "qwen",
    "writer": "writer",
    "stability": "stability",
}
_PROVIDERS = frozenset({*_PROVIDER_FAMILY, "amazon", "cohere"})
_AMAZON_FAMILY = (  # name prefix after "amazon." → family; first match wins
    ("nova-canvas", "amazon-nova-canvas"),
    ("nova-reel", "amazon-nova-reel"),
    ("nova", "amazon-nova"),
    ("titan-embed", "amazon-titan-embed"),
    ("titan-image", "amazon-titan-image"),
    ("titan-t", "amazon-titan-text"),  # titan-text-express/-lite/-premier, titan-tg1-large
)


@dataclass(frozen=True)
class Arn:
    """The parts of an ARN: ``arn:{partition}:{service}:{region}:{account}:{type}/{id}``."""

    partition: str
    service: str
    region: str
    account: str
    resource_type: str
    resource_id: str


@dataclass(frozen=True)
class ModelRef:
    """A Bedrock ``modelId`` taken apart.

    ``kind`` is ``foundation-model``, ``inference-profile`` (a cross-region id or its ARN),
    ``application-inference-profile``, ``provisioned-model``, ``custom-model``,
    ``custom-model-deployment``, ``imported-model``, ``prompt``, ``prompt-router``,
    ``sagemaker-endpoint`` or ``unknown``. ``base_model_id`` is the foundation model without
    any region prefix when the id names one (None for an application inference profile, whose
    ARN does not say which model it wraps). ``family`` is ``unknown`` when the model is not
    named.
    """

    raw: str
    kind: str
    family: str
    base_model_id: str | None = None
    region_prefix: str | None = None
    arn: Arn | None = None

    @property
    def provider(self) -> str | None:
        """The model's provider as the id spells it (``anthropic``, ``amazon``, …)."""
        return self.base_model_id.partition(".")[0] if self.base_model_id else None


def model_family(model_id: str) -> str:
    """The payload family of a foundation-model id without region prefix, or ``unknown``."""
    provider, _, name = model_id.partition(".") if isinstance(model_id, str) else ("", "", "")
    if provider == "amazon":
        return next((f for prefix, f in _AMAZON_FAMILY if name.startswith(prefix)), "unknown")
    if provider == "cohere":
        return "cohere-embed" if name.startswith("embed") else "cohere"
    return _PROVIDER_FAMILY.get(provider, "unknown") if name else "unknown"


def _split_region_prefix(model_id: str) -> tuple[str | None, str]:
    head, dot, rest = model_id.partition(".")
    if not dot or "." not in rest or head in _PROVIDERS:
        return None, model_id
    if head in REGION_PREFIXES:
        return head, rest
    if _PREFIX_SHAPE.fullmatch(head) and rest.partition(".")[0] in _PROVIDERS:
        return head, rest
    return None, model_id


def _plain(raw: str, kind_if_prefixed: str = "inference-profile") -> ModelRef:
    if not _PLAIN_ID.fullmatch(raw):
        return ModelRef(raw=raw, kind="unknown", family="unknown")
    prefix, base = _split_region_prefix(raw)
    kind = kind_if_prefixed if prefix else "foundation-model"
    return ModelRef(raw, kind, model_family(base), base, prefix)


def _from_arn(raw: str) -> ModelRef:
    parts = raw.split(":", 5)
    if len(parts) != 6 or not parts[1] or not parts[2] or "/" not in parts[5]:
        return ModelRef(raw=raw, kind="unknown", family="unknown")
    resource_type, _, resource_id = parts[5].partition("/")
    arn = Arn(parts[1], parts[2], parts[3], parts[4], resource_type, resource_id)
    if parts[2] == "sagemaker":
        return ModelRef(raw, "sagemaker-endpoint", "unknown", arn=arn)
    if parts[2] != "bedrock" or resource_type not in _ARN_KINDS:
        return ModelRef(raw, "unknown", "unknown", arn=arn)
    kind = "prompt-router" if resource_type.endswith("prompt-router") else resource_type
    named = resource_id
    if resource_type == "custom-model":  # custom-model/{base model id}/{12-char id}
        named = resource_id.rpartition("/")[0] or resource_id
    if kind in ("foundation-model", "inference-profile", "custom-model", "prompt-router"):
        inner = _plain(named)
        if inner.kind != "unknown":
            return ModelRef(raw, kind, inner.family, inner.base_model_id, inner.region_prefix, arn)
    return ModelRef(raw, kind, "unknown", arn=arn)


def parse_model_id(raw: str) -> ModelRef:
    """Take a percent-decoded ``modelId`` apart; never raises (odd input is kind ``unknown``)."""
    if not isinstance(raw, str) or not raw or len(raw) > MAX_MODEL_ID_LENGTH:
        return ModelRef(raw=raw if isinstance(raw, str) else "", kind="unknown", family="unknown")
    return _from_arn(raw) if raw.startswith("arn:") else _plain(raw)
