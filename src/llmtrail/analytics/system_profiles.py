"""The system-defined (cross-region) inference profiles llmtrail knows.

Bedrock lists these with ``ListInferenceProfiles(typeEquals=SYSTEM_DEFINED)``: one per model
and geography, id ``{geography}.{foundation model id}`` (``us.anthropic.claude-3-haiku-…``),
ARN ``arn:aws:bedrock:{region}:{account}:inference-profile/{id}``, and the foundation-model
ARNs of the regions it routes to. llmtrail cannot ask AWS, so the list is data: a small,
hand-kept table of the commonly used Anthropic, Amazon, Meta, DeepSeek and Mistral models
(their ids are the ones ``genai-prices`` prices for Bedrock) times the geographies AWS offers
them in. The regions per geography are representative, not AWS's exact, changing list; the
gateway does not need them (a system-defined id is forwarded to Bedrock as it is), they only
fill the ``models`` of a listing.
"""

from __future__ import annotations

from dataclasses import dataclass

# geography prefix → (name prefix, the regions a profile of it routes to; at most 5)
GEOGRAPHIES: dict[str, tuple[str, tuple[str, ...]]] = {
    "us": ("US", ("us-east-1", "us-east-2", "us-west-2")),
    "eu": ("EU", ("eu-central-1", "eu-west-1", "eu-west-3")),
    "apac": ("APAC", ("ap-northeast-1", "ap-northeast-2", "ap-south-1", "ap-southeast-2")),
    "jp": ("JP", ("ap-northeast-1", "ap-northeast-3")),
    "global": ("Global", ("us-east-1", "us-west-2", "eu-west-1", "ap-northeast-1")),
}

# (foundation model id, display name, geographies)
_MODELS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("anthropic.claude-3-haiku-20240307-v1:0", "Anthropic Claude 3 Haiku", ("us", "eu", "apac")),
    ("anthropic.claude-3-sonnet-20240229-v1:0", "Anthropic Claude 3 Sonnet", ("us", "eu", "apac")),
    ("anthropic.claude-3-opus-20240229-v1:0", "Anthropic Claude 3 Opus", ("us",)),
    ("anthropic.claude-3-5-haiku-20241022-v1:0", "Anthropic Claude 3.5 Haiku", ("us",)),
    (
        "anthropic.claude-3-5-sonnet-20240620-v1:0",
        "Anthropic Claude 3.5 Sonnet",
        ("us", "eu", "apac"),
    ),
    ("anthropic.claude-3-5-sonnet-20241022-v2:0", "Anthropic Claude 3.5 Sonnet v2", ("us", "apac")),
    (
        "anthropic.claude-3-7-sonnet-20250219-v1:0",
        "Anthropic Claude 3.7 Sonnet",
        ("us", "eu", "apac"),
    ),
    (
        "anthropic.claude-sonnet-4-20250514-v1:0",
        "Anthropic Claude Sonnet 4",
        ("us", "eu", "apac", "global"),
    ),
    ("anthropic.claude-opus-4-20250514-v1:0", "Anthropic Claude Opus 4", ("us",)),
    ("anthropic.claude-opus-4-1-20250805-v1:0", "Anthropic Claude Opus 4.1", ("us",)),
    (
        "anthropic.claude-sonnet-4-5-20250929-v1:0",
        "Anthropic Claude Sonnet 4.5",
        ("us", "eu", "jp", "global"),
    ),
    (
        "anthropic.claude-haiku-4-5-20251001-v1:0",
        "Anthropic Claude Haiku 4.5",
        ("us", "eu", "jp", "global"),
    ),
    ("amazon.nova-micro-v1:0", "Amazon Nova Micro", ("us", "eu", "apac")),
    ("amazon.nova-lite-v1:0", "Amazon Nova Lite", ("us", "eu", "apac")),
    ("amazon.nova-pro-v1:0", "Amazon Nova Pro", ("us", "eu", "apac")),
    ("amazon.nova-premier-v1:0", "Amazon Nova Premier", ("us",)),
    ("meta.llama3-1-8b-instruct-v1:0", "Meta Llama 3.1 8B Instruct", ("us",)),
    ("meta.llama3-1-70b-instruct-v1:0", "Meta Llama 3.1 70B Instruct", ("us",)),
    ("meta.llama3-2-1b-instruct-v1:0", "Meta Llama 3.2 1B Instruct", ("us", "eu")),
    ("meta.llama3-2-3b-instruct-v1:0", "Meta Llama 3.2 3B Instruct", ("us", "eu")),
    ("meta.llama3-2-11b-instruct-v1:0", "Meta Llama 3.2 11B Instruct", ("us",)),
    ("meta.llama3-2-90b-instruct-v1:0", "Meta Llama 3.2 90B Instruct", ("us",)),
    ("meta.llama3-3-70b-instruct-v1:0", "Meta Llama 3.3 70B Instruct", ("us",)),
    ("meta.llama4-scout-17b-instruct-v1:0", "Meta Llama 4 Scout 17B Instruct", ("us",)),
    ("meta.llama4-maverick-17b-instruct-v1:0", "Meta Llama 4 Maverick 17B Instruct", ("us",)),
    ("deepseek.r1-v1:0", "DeepSeek-R1", ("us",)),
    ("mistral.pixtral-large-2502-v1:0", "Mistral Pixtral Large 25.02", ("us", "eu")),
)


@dataclass(frozen=True)
class SystemProfile:
    """One system-defined inference profile: ``us.amazon.nova-lite-v1:0`` and what it wraps."""

    profile_id: str
    name: str
    description: str
    model_id: str  # the foundation model, without the geography prefix
    regions: tuple[str, ...]

    def model_arns(self) -> tuple[str, ...]:
        """The foundation-model ARNs of the regions the profile routes to."""
        return tuple(f"arn:aws:bedrock:{r}::foundation-model/{self.model_id}" for r in self.regions)


def _build() -> dict[str, SystemProfile]:
    out: dict[str, SystemProfile] = {}
    for model_id, display, geographies in _MODELS:
        for geo in geographies:
            label, regions = GEOGRAPHIES[geo]
            profile_id = f"{geo}.{model_id}"
            out[profile_id] = SystemProfile(
                profile_id=profile_id,
                name=f"{label} {display}",
                description=f"Routes requests to {display} in {', '.join(regions)}.",
                model_id=model_id,
                regions=regions,
            )
    return dict(sorted(out.items()))


SYSTEM_PROFILES: dict[str, SystemProfile] = _build()
"""Every system-defined profile llmtrail knows, by id, ids sorted."""
