"""What each planned unit says, step by step, for both ways of sending it (live through the
gateway, or rendered as history): the system prompts, the `Request` of a call, and an agent's
run as a generator of steps.

`agent_steps` yields a `ModelStep` (the driver sends it and answers with the assistant's
`Turn`) or a `ToolStep` (the driver runs the tool — it only waits — and answers None). The
user's turn names the tool the agent wants, which is how ``sim`` decides to call it (see
``capture/gateway/providers/sim/script.py``); after the tool's result it answers in text.
"""

from __future__ import annotations

import os
from collections.abc import Generator
from dataclasses import dataclass, field, replace

from llmtrail.demo.cast import APPLICATIONS, PROFILES, ROUTES, Tool
from llmtrail.demo.plan import AgentRun, Call
from llmtrail.demo.wire import Request, Turn

SYSTEM = {
    "support-bot": "You are Acme's support assistant. Be brief and kind; never promise refunds.",
    "support-bot/prompt-v2": (
        "You are a support assistant for an online shop. Answer in at most three sentences, "
        "cite the help-centre article you used, and offer a human hand-off when unsure."
    ),
    "search": "Answer from the passages given only; say so when they do not contain it.",
    "claims-agent": "You triage insurance claims. Use the tools; never invent policy data.",
    "code-review": (
        "You are a senior reviewer. Point out bugs first, then style. Quote the lines you mean."
    ),
    "doc-summarizer": "Summarise legal documents for non-lawyers in plain English.",
}
_APPS = {a.name: a for a in APPLICATIONS}
_FAULT_STATUS = {"throttle": 429, "server_error": 500}


def system_prompt(app: str, metadata: dict[str, str]) -> str:
    return SYSTEM.get(f"{app}/{metadata.get('variant')}", SYSTEM.get(app, ""))


def model_id(model: str, profiles: dict[str, str]) -> str:
    """What the caller names: a profile's ARN for ``profile:NAME`` (its model if the profile
    could not be created), else the model id."""
    if not model.startswith("profile:"):
        return model
    name = model.removeprefix("profile:")
    fallback = next(p.copy_from for p in PROFILES if p.name == name)
    return profiles.get(name, fallback)


def call_request(
    call: Call,
    profiles: dict[str, str],
    live: bool,
    session_id: str | None = None,
    traceparent: str | None = None,
) -> Request:
    """The `Request` of one planned call; ``live`` adds the ``sim`` behaviour (latency, reply
    length, an injected error) the gateway passes to its upstream."""
    app = _APPS[call.app]
    metadata = dict(call.metadata)
    sim: dict[str, int] = {}
    if live:
        sim = {"words": call.words}
        if call.stream:
            chunks = max(1, call.words // 4)
            sim["ttft_ms"] = min(call.ttft_ms, 5_000)
            sim["chunk_delay_ms"] = max(0, min(call.latency_ms, 5_000) - sim["ttft_ms"]) // chunks
        else:
            sim["latency_ms"] = min(call.latency_ms, 5_000)
        if call.fault in _FAULT_STATUS:
            sim = {"error": _FAULT_STATUS[call.fault]}
    return Request(
        route=call.route,
        model=model_id(call.model, profiles),
        app=call.app,
        metadata=metadata,
        metadata_in_header=app.metadata_in_header,
        system=system_prompt(call.app, metadata),
        sim=sim,
        session_id=session_id,
        traceparent=traceparent,
        cache_system=ROUTES[call.route][0] == "anthropic",
    )


def new_id(nbytes: int) -> str:
    """A fresh trace (16 bytes) or span (8 bytes) id: never part of the plan."""
    return os.urandom(nbytes).hex()


@dataclass
class ModelStep:
    request: Request
    turns: list[Turn]
    latency_ms: int
    span_id: str = field(default_factory=lambda: new_id(8))


@dataclass
class ToolStep:
    tool: Tool
    arguments: dict[str, object]
    result: str
    failed: bool
    ms: int


def agent_steps(
    run: AgentRun, profiles: dict[str, str], live: bool, trace_id: str, agent_span: str
) -> Generator[ModelStep | ToolStep, Turn | None, None]:
    """The steps of an agent's run; each model call is a child of the agent's span (the
    gateway draws the record's own span id from the ``traceparent``; ``span_id`` names the
    step in history)."""
    metadata = dict(run.metadata)
    turns = [Turn("user", f"{run.prompt} Use {_spoken(run.tools[0])} first.")]
    latencies = iter(run.latency_ms)

    def model_step() -> ModelStep:
        latency = next(latencies)
        req = _agent_request(run, profiles, live, latency, metadata)
        step = ModelStep(req, list(turns), latency)
        step.request = replace(req, traceparent=f"00-{trace_id}-{agent_span}-01")
        return step

    for i, tool in enumerate(run.tools):
        asked = yield model_step()
        if asked is None or not asked.tool:
            return
        failed = run.tool_fails and i == len(run.tools) - 1
        result = f'{{"error": "{tool.name} timed out after 30s"}}' if failed else tool.result
        yield ToolStep(tool, asked.arguments, result, failed, run.tool_ms[i])
        turns += [asked, Turn("tool", result, asked.call_id, tool.name, failed=failed)]
        answer = yield model_step()
        turns.append(answer or Turn("assistant"))
        if i + 1 < len(run.tools):
            turns.append(Turn("user", f"Now {_spoken(run.tools[i + 1])} as well."))


def _spoken(tool: Tool) -> str:
    return tool.name.replace("_", " ")


def _agent_request(
    run: AgentRun, profiles: dict[str, str], live: bool, latency: int, metadata: dict[str, str]
) -> Request:
    return Request(
        route=run.route,
        model=model_id(run.model, profiles),
        app=run.app,
        metadata=metadata,
        system=system_prompt(run.app, metadata),
        tools=run.tools,
        sim={"latency_ms": latency, "words": 40} if live else {},
    )
