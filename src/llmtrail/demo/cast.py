"""Who calls in the demo: applications with their teams, cost centers, tenants, models, routes
and prompts, as data.

Each application behaves like one kind of real user of llmtrail, so that every page has
something to show: a support bot that streams on the OpenAI route inside chat sessions and
runs an A/B test of two prompts; a search service that embeds and summarises through an
inference profile on Bedrock; a claims agent that calls tools inside traces; a code reviewer
on the Anthropic route; and a document summariser on Bedrock's InvokeModel. Models are ``sim``
models (every server routes ``sim/*`` to the built-in provider), named after the real ones
they stand for. ``profile:NAME`` in a model list is one of `PROFILES`, called by its ARN.
"""

from __future__ import annotations

from dataclasses import dataclass

# (wire, operation, stream): the kinds of gateway call the demo makes, named as the summary
# table names them
ROUTES: dict[str, tuple[str, str, bool]] = {
    "openai chat": ("openai", "ChatCompletions", False),
    "openai chat stream": ("openai", "ChatCompletions", True),
    "openai embeddings": ("openai", "Embeddings", False),
    "anthropic messages": ("anthropic", "Messages", False),
    "anthropic messages stream": ("anthropic", "Messages", True),
    "bedrock converse": ("bedrock", "Converse", False),
    "bedrock converse-stream": ("bedrock", "ConverseStream", True),
    "bedrock invoke": ("bedrock", "InvokeModel", False),
    "bedrock invoke-stream": ("bedrock", "InvokeModelWithResponseStream", True),
}
UNKNOWN_MODEL = "demo/retired-model-2023"  # no route matches it: a 404 model_not_found


@dataclass(frozen=True)
class Profile:
    """An application inference profile the demo creates (CreateInferenceProfile)."""

    name: str
    copy_from: str
    tags: tuple[tuple[str, str], ...]


PROFILES = (
    Profile(
        "claims-agent-prod",
        "sim/claude-sonnet-4",
        (("dept", "claims"), ("cost_center", "CC-3100"), ("env", "production")),
    ),
    Profile(
        "search-prod",
        "sim/nova-lite",
        (("dept", "discovery"), ("cost_center", "CC-2200"), ("env", "production")),
    ),
)


@dataclass(frozen=True)
class Tool:
    """A tool an agent offers the model; ``result`` is what running it returns."""

    name: str
    description: str
    argument: str  # the one required string argument
    result: str


@dataclass(frozen=True)
class Application:
    name: str
    team: str
    cost_center: str
    share: float  # of single calls
    routes: tuple[tuple[str, float], ...]  # ROUTES keys and their weights
    models: tuple[str, ...]
    prompts: tuple[str, ...]
    metadata_in_header: bool = True  # OpenAI/Anthropic: x-llmtrail-metadata, else the body
    variants: tuple[str, ...] = ()  # an A/B test: requestMetadata.variant
    sessions: bool = False  # multi-turn chats carrying only x-llmtrail-session-id
    tools: tuple[Tool, ...] = ()  # an agent: runs with tool calls inside traces
    agent_route: str = ""
    context: tuple[str, ...] = ()  # sentences drawn into the prompt (documents, code, passages)
    context_sentences: tuple[int, int] = (0, 0)
    reply_words: tuple[int, int] = (20, 90)


TENANTS = (
    ("acme", 0.34),
    ("globex", 0.22),
    ("initech", 0.16),
    ("umbrella", 0.12),
    ("hooli", 0.09),
    ("stark", 0.07),
)

APPLICATIONS = (
    Application(
        name="support-bot",
        team="customer-experience",
        cost_center="CC-1100",
        share=0.34,
        routes=(("openai chat stream", 0.65), ("openai chat", 0.35)),
        models=("sim/gpt-4o-mini", "sim/gpt-4o-mini", "sim/gpt-4o"),
        prompts=(
            "My order 4471 has not arrived yet, can you check where it is?",
            "How do I reset my password on the mobile app?",
            "I was charged twice for my subscription this month.",
            "Can I change the delivery address of an order that already shipped?",
            "What is your refund policy for opened items?",
            "The app crashes when I open the invoices tab.",
        ),
        metadata_in_header=False,
        variants=("prompt-v1", "prompt-v2"),
        sessions=True,
        reply_words=(30, 120),
    ),
    Application(
        name="search",
        team="discovery",
        cost_center="CC-2200",
        share=0.26,
        routes=(
            ("openai embeddings", 0.5),
            ("bedrock converse", 0.3),
            ("bedrock converse-stream", 0.2),
        ),
        models=("profile:search-prod", "sim/nova-lite"),
        prompts=(
            "Summarise the top results for 'waterproof hiking boots'.",
            "Which of these documents answers: how to rotate API keys?",
            "Rewrite the query 'cheap flights lisbon may' for a keyword index.",
            "Give a one-line answer from these passages about parental leave.",
        ),
        context=(
            "Passage: Employees may take up to sixteen weeks of paid parental leave.",
            "Passage: Keys can be rotated from the console under Settings, then API keys.",
            "Passage: Our waterproof boots are rated for streams up to ankle depth.",
            "Passage: Flights to Lisbon are cheapest midweek in early May.",
            "Passage: Leave requests need the manager's approval two weeks ahead.",
            "Passage: A rotated key stays valid for 24 hours so deployments can catch up.",
        ),
        context_sentences=(8, 24),
        reply_words=(10, 40),
    ),
    Application(
        name="claims-agent",
        team="claims",
        cost_center="CC-3100",
        share=0.12,
        routes=(("bedrock converse", 0.6), ("bedrock invoke", 0.4)),
        models=("profile:claims-agent-prod", "sim/claude-haiku-4-5"),
        prompts=(
            "Classify this claim: rear bumper damage in a parking lot, no injuries.",
            "Extract the incident date and location from the adjuster's note.",
            "Draft a short letter asking the policyholder for two more photos.",
        ),
        tools=(
            Tool(
                "lookup_policy",
                "Find a policy by its number",
                "policy_number",
                '{"policy": "AX-2291", "status": "active", "deductible": 500}',
            ),
            Tool(
                "check_coverage",
                "Check whether a policy covers a kind of damage",
                "damage",
                '{"covered": true, "limit_usd": 12000}',
            ),
            Tool(
                "estimate_payout",
                "Estimate the payout of a claim",
                "claim_summary",
                '{"estimate_usd": 1840, "confidence": 0.82}',
            ),
        ),
        agent_route="bedrock converse",
        context=(
            "Adjuster note: the insured reports damage to the rear bumper and tail light.",
            "The vehicle was parked at a supermarket when the incident happened.",
            "No injuries were reported and no police report was filed.",
            "The insured provided three photos and a repair quote from a partner garage.",
        ),
        context_sentences=(3, 10),
        reply_words=(30, 90),
    ),
    Application(
        name="code-review",
        team="platform",
        cost_center="CC-4400",
        share=0.16,
        routes=(("anthropic messages", 0.55), ("anthropic messages stream", 0.45)),
        models=("sim/claude-sonnet-4", "sim/claude-haiku-4-5"),
        prompts=(
            "Review this diff for race conditions in the cache invalidation.",
            "Suggest a clearer name for the function parse_thing_v2.",
            "Is this SQL migration safe to run on a table with 40M rows?",
            "Explain why this test is flaky on CI but passes locally.",
        ),
        tools=(
            Tool(
                "read_file",
                "Read a file of the repository",
                "path",
                "def invalidate(key):\n    cache.pop(key, None)\n",
            ),
            Tool(
                "run_tests",
                "Run the test suite of a package",
                "package",
                '{"passed": 212, "failed": 1, "failing": ["test_invalidate_race"]}',
            ),
        ),
        agent_route="anthropic messages",
        context=(
            "-    cache.pop(key)",
            "+    with cache_lock:",
            "+        cache.pop(key, None)",
            "     metrics.increment('cache.invalidate')",
            "@@ def refresh(self, key): @@",
            "+    value = self.loader(key)",
            "-    self.store[key] = self.loader(key)",
            "+    self.store[key] = value",
        ),
        context_sentences=(20, 60),
        reply_words=(80, 250),
    ),
    Application(
        name="doc-summarizer",
        team="legal-ops",
        cost_center="CC-5200",
        share=0.12,
        routes=(("bedrock invoke", 0.55), ("bedrock invoke-stream", 0.45)),
        models=("sim/llama-3-70b", "sim/claude-haiku-4-5"),
        prompts=(
            "Summarise the indemnification clause of this supplier contract.",
            "List the termination conditions in this lease.",
            "What are the data-retention obligations in this DPA?",
        ),
        context=(
            "The Supplier shall indemnify the Customer against all losses arising from breach.",
            "Either party may terminate this agreement on ninety days' written notice.",
            "Personal data shall be deleted within thirty days of the end of processing.",
            "Liability under this clause is capped at the fees paid in the preceding year.",
            "The Tenant shall keep the premises in good repair and condition.",
            "Notices must be delivered in writing to the addresses set out above.",
        ),
        context_sentences=(40, 120),
        reply_words=(120, 300),
    ),
)
EMBEDDING_MODEL = "sim/text-embedding-3-small"
