"""The traffic plan: every call the demo will make, decided up front from the seed.

A plan is data — `Call`, `Session` and `AgentRun` units — drawn from one `random.Random`, so
the same seed, ``calls`` and ``days`` give the same plan: the same applications, routes,
models, prompts, metadata, faults, latencies and, for history, the same times relative to
``now``. Ids (request, trace, span, session) are not part of the plan: they are drawn fresh
when a plan is sent, so two runs never collide on llmtrail's de-duplication by requestId.

- ``live`` units go through the gateway now (the gateway stamps each call with the time it
  happens); ``history`` units carry their start time in ``[now - days, now - 1h)`` and are
  rendered as records and spans by `history`.
- Single calls carry the faults: throttles (sim answers 429), server errors (500) and a model
  id no route matches (404). History adds an incident: a burst of throttles on one afternoon.
- Latency is lognormal around each model's median with a slow tail of 4-10 times.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from llmtrail.demo.cast import (
    APPLICATIONS,
    EMBEDDING_MODEL,
    ROUTES,
    TENANTS,
    UNKNOWN_MODEL,
    Application,
    Tool,
)
from llmtrail.demo.seasons import busiest_hour, sample_times

FAULTS = {"throttle": 0.03, "server_error": 0.01, "unknown_model": 0.015}
SLOW_TAIL = 0.04
LIVE_SLOW_CAP_MS = 5_000  # live calls really wait: keep the demo short
HISTORY_PER_CALL_DAY = 2  # historical records per live call per day
_MEDIAN_MS = {
    "gpt-4o-mini": 420,
    "gpt-4o": 950,
    "claude-sonnet-4": 1_300,
    "claude-haiku-4-5": 520,
    "nova-lite": 330,
    "llama-3-70b": 850,
    "text-embedding-3-small": 60,
}
_AGENT_SHARE = 0.15  # of gateway calls, made inside agent runs
_SESSION_SHARE = 0.2  # of gateway calls, made as turns of sessions


@dataclass(frozen=True)
class Call:
    """One gateway call. ``at`` is None for a live call."""

    app: str
    route: str  # a key of cast.ROUTES
    model: str  # a sim model, "profile:NAME", or cast.UNKNOWN_MODEL
    prompt: str
    metadata: tuple[tuple[str, str], ...]
    latency_ms: int
    ttft_ms: int
    words: int
    fault: str | None = None  # a key of FAULTS
    at: datetime | None = None

    @property
    def stream(self) -> bool:
        return ROUTES[self.route][2]


@dataclass(frozen=True)
class Session:
    """A multi-turn chat: each turn repeats the earlier ones, and carries only the session
    header (no traceparent)."""

    app: str
    turns: tuple[Call, ...]
    gap_s: tuple[int, ...]  # think time before each turn after the first (history)


@dataclass(frozen=True)
class AgentRun:
    """An agent's run: for each tool, a model call that asks for it, the tool's step, and a
    model call that reads its result; all inside one trace under an ``agent`` span."""

    app: str
    route: str
    model: str
    prompt: str
    metadata: tuple[tuple[str, str], ...]
    tools: tuple[Tool, ...]
    latency_ms: tuple[int, ...]  # one per model call
    tool_ms: tuple[int, ...]  # one per tool
    tool_fails: bool = False  # the last tool answers an error; the agent carries on
    at: datetime | None = None

    @property
    def calls(self) -> int:
        return 2 * len(self.tools)


Unit = Call | Session | AgentRun


@dataclass
class Plan:
    live: list[Unit] = field(default_factory=list)
    history: list[Unit] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        """What the plan sends, as the summary counts it (comparable between runs)."""
        out: Counter[str] = Counter()
        for unit in self.live:
            for call in calls_of(unit):
                out[f"live {call.route}"] += 1
                out["live errors"] += call.fault is not None
        for unit in self.history:
            for call in calls_of(unit):
                out["history records"] += 1
                out["history errors"] += call.fault is not None
        out["agent runs"] = sum(isinstance(u, AgentRun) for u in self.live + self.history)
        out["sessions"] = sum(isinstance(u, Session) for u in self.live + self.history)
        return dict(out)


def calls_of(unit: Unit) -> list[Call]:
    """The gateway calls of a unit, as the plan knows them (an agent's are drawn here)."""
    if isinstance(unit, Call):
        return [unit]
    if isinstance(unit, Session):
        return list(unit.turns)
    return [
        Call(unit.app, unit.route, unit.model, unit.prompt, unit.metadata, ms, 0, 30, at=unit.at)
        for ms in unit.latency_ms
    ]


def make_plan(seed: int, calls: int, days: float, now: datetime) -> Plan:
    """The whole plan: ``calls`` live gateway calls and ``days`` of history before the last
    hour."""
    planner = _Planner(random.Random(seed))
    live = planner.with_every_fault(planner.units(calls, None))
    end = now - timedelta(hours=1)
    start = now - timedelta(days=days)
    history: list[Unit] = []
    total = int(calls * days * HISTORY_PER_CALL_DAY)
    if total > 0 and start < end:
        incident = total // 30
        # times have their own generator: how many draws the sampling takes depends on the
        # clock, and must not change which calls are made
        clock = random.Random(seed * 7_919 + 2)
        history_planner = _Planner(random.Random(seed * 7_919 + 1))
        times = sample_times(clock, total - incident, start, end)  # one per call, up to end
        history = history_planner.units(total - incident, times)
        history += history_planner.incident(incident, busiest_hour(clock, start, end))
    return Plan(live, history)


class _Planner:
    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def units(self, calls: int, times: list[datetime] | None) -> list[Unit]:
        """Units holding ``calls`` gateway calls; with ``times``, unit i starts at the time of
        its first call's place in the list."""
        out: list[Unit] = []
        made = 0
        while made < calls:
            at = times[made] if times is not None else None
            left = calls - made
            roll = self.rng.random()
            unit: Unit
            if roll < _AGENT_SHARE / 2 and left >= 4:
                unit = self.agent_run(at)
            elif roll < _AGENT_SHARE / 2 + _SESSION_SHARE / 3 and left >= 3:
                unit = self.session(min(left, self.rng.randint(2, 5)), at)
            else:
                unit = self.call(self.rng.choices(APPLICATIONS, [a.share for a in APPLICATIONS])[0])
                unit = _at(unit, at)
            out.append(unit)
            made += len(calls_of(unit))
        return out

    def with_every_fault(self, units: list[Unit]) -> list[Unit]:
        """``units`` where each kind of fault happens at least once, when there are enough
        single calls (a small demo still shows a throttle, a server error and a 404)."""
        singles = [i for i, u in enumerate(units) if isinstance(u, Call) and u.fault is None]
        missing = [f for f in FAULTS if not any(getattr(u, "fault", None) == f for u in units)]
        if len(singles) < 3 * len(FAULTS):
            return units
        out = list(units)
        for fault, index in zip(missing, self.rng.sample(singles, len(missing)), strict=False):
            call = out[index]
            assert isinstance(call, Call)
            model = UNKNOWN_MODEL if fault == "unknown_model" else call.model
            out[index] = replace(call, fault=fault, model=model)
        return out

    def call(self, app: Application, route: str | None = None, fault: bool = True) -> Call:
        rng = self.rng
        route = route or rng.choices([r for r, _ in app.routes], [w for _, w in app.routes])[0]
        model = EMBEDDING_MODEL if route == "openai embeddings" else rng.choice(app.models)
        failure = None
        if fault:
            roll = rng.random()
            for name, share in FAULTS.items():
                if roll < share:
                    failure = name
                    break
                roll -= share
        if failure == "unknown_model":
            model = UNKNOWN_MODEL
        latency = self.latency(model)
        stream = ROUTES[route][2]
        ttft = int(latency * rng.uniform(0.15, 0.35)) if stream else 0
        words = rng.randint(*app.reply_words)
        prompt = rng.choice(app.prompts)
        if app.context and route != "openai embeddings":
            count = rng.randint(*app.context_sentences)
            prompt += "\n\n" + "\n".join(rng.choice(app.context) for _ in range(count))
        return Call(
            app.name,
            route,
            model,
            prompt,
            self.metadata(app),
            latency,
            ttft,
            words,
            failure,
        )

    def latency(self, model: str) -> int:
        name = model.split("/")[-1].split(":")[-1]
        median = _MEDIAN_MS.get(name, 700)
        ms = median * self.rng.lognormvariate(0, 0.45)
        if self.rng.random() < SLOW_TAIL:
            ms *= self.rng.uniform(4, 10)
        return int(ms)

    def metadata(self, app: Application) -> tuple[tuple[str, str], ...]:
        rng = self.rng
        tenant = rng.choices([t for t, _ in TENANTS], [w for _, w in TENANTS])[0]
        out = [
            ("application_name", app.name),
            ("tenant_id", tenant),
            ("team", app.team),
            ("cost_center", app.cost_center),
            ("environment", "staging" if rng.random() < 0.08 else "production"),
            ("user_id", f"u-{tenant}-{rng.randint(1, 40):03d}"),
        ]
        if app.variants:
            out.append(("variant", rng.choice(app.variants)))
        return tuple(out)

    def session(self, turns: int, at: datetime | None) -> Session:
        app = next(a for a in APPLICATIONS if a.sessions)
        first = self.call(app, fault=False)
        calls = [first]
        for _ in range(turns - 1):
            nxt = self.call(app, first.route, fault=False)
            calls.append(replace(nxt, metadata=first.metadata))
        gaps = tuple(self.rng.randint(20, 240) for _ in range(turns - 1))
        return Session(app.name, tuple(_at(c, at) for c in calls), gaps)

    def agent_run(self, at: datetime | None) -> AgentRun:
        rng = self.rng
        app = rng.choice([a for a in APPLICATIONS if a.tools])
        tools = tuple(rng.sample(app.tools, rng.choice((1, 2, 2))))
        model = app.models[0]
        return AgentRun(
            app=app.name,
            route=app.agent_route,
            model=model,
            prompt=rng.choice(app.prompts),
            metadata=self.metadata(app),
            tools=tools,
            latency_ms=tuple(min(self.latency(model), 4_000) for _ in range(2 * len(tools))),
            tool_ms=tuple(rng.randint(20, 400) for _ in tools),
            tool_fails=rng.random() < 0.15,
            at=at,
        )

    def incident(self, count: int, at: datetime) -> list[Unit]:
        """``count`` throttled calls of one application within 40 minutes of ``at``."""
        app = next(a for a in APPLICATIONS if a.name == "claims-agent")
        out: list[Unit] = []
        for _ in range(count):
            call = self.call(app, fault=False)
            when = at - timedelta(seconds=self.rng.uniform(0, 2_400))
            out.append(replace(call, fault="throttle", at=when))
        return out


def _at(call: Call, at: datetime | None) -> Call:
    return call if at is None else replace(call, at=at)


def live_latency(ms: int) -> int:
    """What a live call really waits: the slow tail capped at `LIVE_SLOW_CAP_MS`."""
    return min(ms, LIVE_SLOW_CAP_MS)
