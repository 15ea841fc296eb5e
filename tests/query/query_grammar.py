"""A seeded, grammar-based generator of Logs Insights queries for the differential test.

Each production knows the kind of value it makes (number, text, JSON, timestamp, condition),
so almost every generated query is valid and meaningful: numbers are added to numbers, text
is compared with values the records really hold (`differential_records`), aggregates get
arguments of their kind. The shapes cover every command (``fields``, ``display``, ``filter``,
``stats`` once and twice, ``sort``, ``limit``, ``dedup``, ``parse`` with a glob and a regex,
``unnest``), every operator and most functions, over typed columns, promoted and map-only
``requestMetadata`` keys, JSON in bodies and unknown keys, and ``@message``. The same seed
gives the same list; `Grammar.query` is one query of a random shape.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence

from tests.query.differential_records import APPS, FEATURES, MODELS, TEAMS, TENANTS, USERS

INTS = (
    "input.inputTokenCount",
    "output.outputTokenCount",
    "input.cacheReadInputTokenCount",
    "latencyMs",
    "timeToFirstTokenMs",
    "error.httpStatus",
)
MONEY = ("cost.totalUsd", "cost.inputUsd", "cost.outputUsd")
# text fields and values they hold (some they do not), so that comparisons select something
TEXTS: dict[str, tuple[str, ...]] = {
    "modelId": (*(m[0] for m in MODELS), "llama3"),
    "operation": ("Converse", "ConverseStream", "InvokeModel", "ChatCompletions", "Messages"),
    "status": ("OK", "ERROR", "CANCELLED"),
    "provider": ("bedrock", "openai", "anthropic", "sim"),
    "errorCode": ("ThrottlingException", "ValidationException", "ModelTimeoutException"),
    "error.type": ("ThrottlingException", "client_disconnected"),
    "error.message": ("Input is too long for requested model.", " client went away "),
    "region": ("us-east-1", "us-west-2", "eu-central-1"),
    "source": ("gateway", "sdk", "import"),
    "requestMetadata.application_name": APPS,
    "requestMetadata.tenant_id": TENANTS[:5],
    "requestMetadata.user_id": USERS[:6],
    "requestMetadata.team": TEAMS,
    "requestMetadata.project": ("apollo", "zeus"),
    "requestMetadata.feature": FEATURES,
    "requestMetadata.region.zone": ("a", "b"),
    "@requestId": ("req-00042", "req-00007", "req-01000"),
    "inferenceProfile.name": ("claims",),
}
JSON_NUMBERS = (
    "output.outputBodyJson.usage.outputTokens",
    "output.outputBodyJson.metrics.latencyMs",
    "input.inputBodyJson.max_tokens",
    "input.inputBodyJson.temperature",
    "custom.score",
    "custom.ratio",
    "custom.nested.depth.value",
)
JSON_TEXTS: dict[str, tuple[str, ...]] = {
    "output.outputBodyJson.stopReason": ("end_turn", "max_tokens", "tool_use"),
    "input.inputBodyJson.messages.0.role": ("user",),
    "input.inputBodyJson.messages[1].role": ("assistant",),
    "output.outputBodyJson.output.message.role": ("assistant",),
    "custom.label": ("user=u1, method:GET", "user=u3, method:POST"),
    "inferenceProfile.tags.dept": ("a", "b"),
    "custom.flag": ("true", "false"),
}
JSON_ANY = (
    "input.inputBodyJson.messages.0.content",
    "output.outputBodyJson.usage",
    "output.outputBodyJson.output.message.content",
    "custom.nothing",
    "custom.nested",
    "input.inputBodyJson.stream",
)
SUBSTRINGS = ("claude", "gpt", "Exception", "#1", "café", "us.", "-v1:0", "o", "π", "Too")
REGEXES = (
    "/claude/",
    "/(?i)NOVA/",
    r"/^us\./",
    "/-v1:0$/",
    "/[0-9]{3}/",
    "/^(Converse|Messages)/",
    "/é/",
    "/^$/",
)
PERIODS = ("5m", "1h", "30m", "6h", "1d", "1w", "300s", "2hrs", "1mo", "1q", "1y", "90s", "15min")
DEDUP_KEYS = ("modelId", "requestMetadata.application_name", "status", "requestMetadata.feature")
TIMES = (
    '"2026-05-04T07:30:00Z"',
    '"2026-05-05T12:00:00.5Z"',
    '"2026-05-06"',
    "1778000000000",
    "@timestamp",
)


class Grammar:
    """Productions over a seeded random source; each method returns query text."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.aliases = 0

    def pick(self, options: Sequence[str]) -> str:
        return self.rng.choice(options)

    def chance(self, p: float) -> bool:
        return self.rng.random() < p

    def alias(self) -> str:
        self.aliases += 1
        return f"v{self.aliases}"

    # -- values ---------------------------------------------------------------------------
    def number(self, depth: int = 0) -> str:
        """A numeric expression."""
        roll = self.rng.random()
        if depth >= 2 or roll < 0.35:
            return self.pick(INTS)
        if roll < 0.45:
            return self.pick(MONEY)
        if roll < 0.52:
            return str(self.rng.choice((0, 1, 2, 3, 7, 100, 1000, -5, 2.5, 0.25)))
        if roll < 0.75:
            op = self.pick(("+", "-", "*", "/", "%", "+", "*"))
            left, right = self.number(depth + 1), self.number(depth + 1)
            if op in "*%" and (left in MONEY or right in MONEY):
                left = self.pick(INTS)  # money times money overflows 38 digits differently
            return f"({left} {op} {right})" if self.chance(0.5) else f"{left} {op} {right}"
        if roll < 0.88:
            name = self.pick(("abs", "ceil", "floor", "sqrt", "log", "greatest", "least"))
            if name in ("greatest", "least"):
                return f"{name}({self.pick(INTS)}, {self.number(depth + 1)})"
            return f"{name}({self.number(depth + 1)})"
        if roll < 0.95:
            return f"strlen({self.text(depth + 1)})"
        return self.pick(("toMillis(@timestamp) % 86400000", "-latencyMs", "2 ^ 3"))

    def text(self, depth: int = 0) -> str:
        """A text expression."""
        roll = self.rng.random()
        if depth >= 2 or roll < 0.55:
            return self.pick(tuple(TEXTS))
        if roll < 0.65:
            return f"{self.pick(('toupper', 'tolower', 'trim'))}({self.text(depth + 1)})"
        if roll < 0.72:
            return f'concat({self.text(depth + 1)}, "/", {self.text(depth + 1)})'
        if roll < 0.79:
            start, length = self.rng.randint(0, 6), self.rng.randint(1, 8)
            return f"substr({self.text(depth + 1)}, {start}, {length})"
        if roll < 0.86:
            return f'replace({self.text(depth + 1)}, "{self.pick(("-", "e", "us."))}", "_")'
        if roll < 0.93:
            return f'coalesce({self.pick(tuple(TEXTS))}, {self.pick(tuple(TEXTS))}, "none")'
        return f'{self.pick(("ltrim", "rtrim"))}({self.text(depth + 1)}, "us.0:")'

    def json(self) -> str:
        return self.pick(JSON_NUMBERS + tuple(JSON_TEXTS) + JSON_ANY)

    def value(self) -> str:
        """Any expression worth showing."""
        roll = self.rng.random()
        if roll < 0.35:
            return self.number()
        if roll < 0.65:
            return self.text()
        if roll < 0.85:
            return self.json()
        if roll < 0.92:
            return self.pick(
                (
                    "@timestamp",
                    f"datefloor(@timestamp, {self.pick(PERIODS)})",
                    f"dateceil(@timestamp, {self.pick(PERIODS)})",
                    "fromMillis(toMillis(@timestamp) - 60000)",
                )
            )
        return self.pick(
            (
                "ispresent(errorCode)",
                "isempty(errorCode)",
                "isblank(error.message)",
                'strcontains(modelId, "claude")',
                "ispresent(custom.nothing)",
                "ispresent(requestMetadata.feature)",
            )
        )

    # -- conditions -----------------------------------------------------------------------
    def condition(self, depth: int = 0) -> str:
        roll = self.rng.random()
        if depth < 2 and roll < 0.2:
            op = self.pick(("and", "or"))
            return f"({self.condition(depth + 1)} {op} {self.condition(depth + 1)})"
        if depth < 2 and roll < 0.25:
            return f"not {self.condition(depth + 1)}"
        return self.comparison()

    def comparison(self) -> str:
        roll = self.rng.random()
        if roll < 0.25:
            field = self.pick(tuple(TEXTS))
            op = self.pick(("=", "!=", "=", "<", ">="))
            return f'{field} {op} "{self.pick(TEXTS[field])}"'
        if roll < 0.45:
            op = self.pick(("<", "<=", ">", ">=", "=", "!="))
            return f"{self.number()} {op} {self.rng.choice((0, 10, 100, 500, 1000, 2500, 0.5))}"
        if roll < 0.52:
            return f"{self.pick(INTS)} {self.pick(('<', '>', '='))} {self.pick(INTS)}"
        if roll < 0.62:
            negated = "not " if self.chance(0.3) else ""
            pattern = self.pick(REGEXES) if self.chance(0.5) else f'"{self.pick(SUBSTRINGS)}"'
            op = self.pick(("like", "=~")) if not negated else "like"
            return f"{self.text()} {negated}{op} {pattern}"
        if roll < 0.7:
            field = self.pick(tuple(TEXTS))
            values = self.rng.sample(TEXTS[field], min(len(TEXTS[field]), 2))
            negated = "not " if self.chance(0.3) else ""
            listed = ", ".join(f'"{v}"' for v in values)
            return f"{field} {negated}in [{listed}]"
        if roll < 0.78:
            field = self.pick(JSON_NUMBERS)
            return (
                f"{field} {self.pick(('>', '<', '=', '>='))} {self.rng.choice((0, 1, 3, 256, 500))}"
            )
        if roll < 0.84:
            field = self.pick(tuple(JSON_TEXTS))
            return f'{field} {self.pick(("=", "!="))} "{self.pick(JSON_TEXTS[field])}"'
        if roll < 0.9:
            function = self.pick(("ispresent", "isempty", "isblank"))
            field = self.pick((*TEXTS, *JSON_ANY)) if function != "ispresent" else self.value()
            return f"{function}({field})"
        if roll < 0.97:
            return f"@timestamp {self.pick(('<', '>=', '>'))} {self.pick(TIMES[:4])}"
        return f'@message like "{self.pick(("Throttling", "tool_use", "apollo", "café"))}"'

    # -- stats ----------------------------------------------------------------------------
    def aggregate(self) -> str:
        name = self.pick(
            (
                "count",
                "count_distinct",
                "sum",
                "avg",
                "min",
                "max",
                "pct",
                "stddev",
                "earliest",
                "latest",
                "count",
                "sum",
            )
        )
        if name == "count":
            return self.pick(("count(*)", "count()", f"count({self.pick((*INTS, *TEXTS))})"))
        if name == "count_distinct":
            return f"count_distinct({self.pick((*TEXTS, *INTS, *JSON_TEXTS))})"
        if name in ("sum", "avg", "stddev"):
            return f"{name}({self.number(1)})"
        if name == "pct":
            return f"pct({self.number(1)}, {self.pick(('50', '90', '95', '99', '0', '100'))})"
        if name in ("min", "max"):
            return f"{name}({self.pick((*INTS, *MONEY, *TEXTS, *JSON_NUMBERS, '@timestamp'))})"
        return f"{name}({self.pick((*TEXTS, *INTS, *JSON_TEXTS))})"

    def group_key(self) -> str:
        roll = self.rng.random()
        if roll < 0.55:
            return self.pick(tuple(TEXTS))
        if roll < 0.75:
            return f"bin({self.pick(PERIODS)})"
        if roll < 0.87:
            return self.pick(tuple(JSON_TEXTS) + JSON_NUMBERS[3:])
        return self.pick(
            (
                "floor(latencyMs / 1000)",
                "error.httpStatus",
                f"datefloor(@timestamp, {self.pick(PERIODS)})",
                "toupper(provider)",
            )
        )

    def stats(self) -> tuple[str, list[str], list[str]]:
        """A ``stats`` command and the names of its aggregates and group keys."""
        aggregates = [self.aggregate() for _ in range(self.rng.randint(1, 3))]
        names, parts = [], []
        for aggregate in aggregates:
            name = self.alias()
            names.append(name)
            parts.append(f"{aggregate} as {name}")
        keys, key_names = [], []
        for _ in range(self.rng.choice((0, 1, 1, 2, 2, 3))):
            key = self.group_key()
            if key in keys:
                continue
            if self.chance(0.4):
                name = self.alias()
                keys.append(f"{key} as {name}")
                key_names.append(name)
            else:
                keys.append(key)
                key_names.append(key)
        by = f" by {', '.join(keys)}" if keys else ""
        return f"stats {', '.join(parts)}{by}", names, key_names

    # -- whole queries --------------------------------------------------------------------
    def query(self) -> str:
        shape: Callable[[], str] = self.rng.choices(
            (self.records, self.aggregated, self.twice, self.unnested, self.parsed),
            weights=(30, 40, 8, 10, 12),
        )[0]
        return shape()

    def prefix_filters(self) -> list[str]:
        return [f"filter {self.condition()}" for _ in range(self.rng.choice((0, 0, 1, 1, 2)))]

    def records(self) -> str:
        parts = self.prefix_filters()
        shown: list[str] = []
        if self.chance(0.8):
            items = []
            for _ in range(self.rng.randint(1, 4)):
                value = self.value()
                if self.chance(0.4):
                    name = self.alias()
                    items.append(f"{value} as {name}")
                    shown.append(name)
                else:
                    items.append(value)
                    shown.append(value)
            parts.insert(0, f"fields @requestId, {', '.join(items)}")
            if self.chance(0.15):
                parts.insert(0, "fields @message")
        if shown and self.chance(0.25):
            parts.append(f"filter {self.condition()}")
        if self.chance(0.6):
            keys = [
                f"{self.pick((*INTS, *TEXTS, *JSON_NUMBERS, *shown, '@timestamp'))}"
                f"{self.pick(('', ' asc', ' desc'))}"
                for _ in range(self.rng.randint(1, 2))
            ]
            parts.append(f"sort {', '.join(keys)}")
        if self.chance(0.2) and shown:
            parts.append(f"display {', '.join(self.rng.sample(shown, len(shown)))}, @requestId")
        if self.chance(0.15):
            parts.append(f"dedup {self.pick(DEDUP_KEYS)}")
        if self.chance(0.7):
            parts.append(f"limit {self.rng.choice((1, 5, 20, 50, 120))}")
        return " | ".join(parts) or "limit 10"

    def aggregated(self) -> str:
        parts = self.prefix_filters()
        command, names, keys = self.stats()
        parts.append(command)
        if self.chance(0.25):
            parts.append(f"filter {self.pick(names)} > {self.rng.choice((0, 1, 2, 10, 100))}")
        if self.chance(0.5):
            sort_keys = [f"{self.pick(names + keys)} {self.pick(('asc', 'desc'))}"]
            parts.append(f"sort {', '.join(sort_keys)}")
        if self.chance(0.4):
            parts.append(f"limit {self.rng.choice((1, 3, 10, 40))}")
        return " | ".join(parts)

    def twice(self) -> str:
        parts = self.prefix_filters()
        command, names, keys = self.stats()
        while not keys:
            command, names, keys = self.stats()
        parts.append(command)
        numeric = self.pick(names)
        second = self.pick(
            (
                f"stats count(*) as groups, max({numeric}) as top",
                f"stats sum({numeric}) as total, avg({numeric}) as mean",
                f"stats count(*) as groups by {keys[0]}",
            )
        )
        parts.append(second)
        return " | ".join(parts)

    def unnested(self) -> str:
        head = self.pick(
            (
                "unnest input.inputBodyJson.messages into m",
                "unnest output.outputBodyJson.output.message.content into m",
                "unnest input.inputBodyJson.messages.0.content into m",
            )
        )
        tail = self.pick(
            (
                "stats count(*) as n by m.role",
                "stats count(*) as n, count_distinct(@requestId) as records by m.type",
                'filter m.role = "user" | stats count(*) as n by bin(1d), m.role',
                "fields @requestId, m.role, m.type, m.text, m.content | limit 40",
                'filter m.type = "tool_use" | fields @requestId, m.name, m.input.q | limit 30',
                "stats count(*) as n by modelId | sort n desc | limit 3",
            )
        )
        return f"{head} | {tail}"

    def parsed(self) -> str:
        head = self.pick(
            (
                'parse custom.label "user=*, method:*" as who, verb',
                r"parse modelId /(?<vendor>[a-z]+)\.(?<family>[a-z0-9-]+)/",
                'parse error.message "* is *" as subject, rest',
                r"parse @requestId /req-(?<number>[0-9]+)/",
                'parse input.inputBodyJson.messages.0.content "*#*" as words, number',
            )
        )
        names = {
            "custom": ("who", "verb"),
            "modelId": ("vendor", "family"),
            "error.message": ("subject", "rest"),
            "@requestId": ("number",),
            "input.inputBodyJson": ("words", "number"),
        }
        fields = next(v for k, v in names.items() if f"parse {k}" in head)
        if self.chance(0.5):
            return f"{head} | stats count(*) as n by {', '.join(fields)}"
        shown = ", ".join(fields)
        return f"{head} | filter ispresent({fields[0]}) | fields @requestId, {shown} | limit 60"


def generate_queries(count: int, seed: int) -> list[str]:
    """``count`` distinct queries from the grammar, the same for the same seed."""
    grammar = Grammar(seed)
    queries: list[str] = []
    seen: set[str] = set()
    while len(queries) < count:
        text = grammar.query()
        if text not in seen:
            seen.add(text)
            queries.append(text)
    return queries
