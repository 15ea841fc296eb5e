"""History units (calls, sessions, agent runs) rendered into records and spans at their
planned times, the way they would have happened: a session's turns minutes apart, each
repeating the conversation so far; an agent's model calls and tools one after another inside
its trace, each model call a child of the agent's span as the gateway makes it from a
``traceparent``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from llmtrail.capture.gateway.providers.sim.prompt_cache import PromptCache
from llmtrail.demo.cast import PROFILES
from llmtrail.demo.history import Account, Profiled, record
from llmtrail.demo.plan import AgentRun, Call, Session, Unit
from llmtrail.demo.scripts import ModelStep, agent_steps, call_request, new_id
from llmtrail.demo.spans import RunSpans
from llmtrail.demo.wire import Request, Turn

_NS = 1_000_000_000


@dataclass
class Backfill:
    """Renders history units; holds the prompt cache, so repeated system prompts read it."""

    profiles: dict[str, str]  # profile name → ARN
    tags: dict[str, dict[str, str]] = field(default_factory=dict)  # profile name → tags
    account: Account = field(default_factory=Account)
    cache: PromptCache = field(default_factory=PromptCache)

    def render(self, unit: Unit) -> tuple[list[dict[str, Any]], list[RunSpans]]:
        """The records (and an agent's spans) of one history unit."""
        if isinstance(unit, Call):
            return [self._one(unit, [Turn("user", unit.prompt)], unit.at)[0]], []
        if isinstance(unit, Session):
            return self._session(unit), []
        return self._agent(unit)

    def _one(
        self,
        call: Call,
        turns: list[Turn],
        at: datetime | None,
        trace: dict[str, str] | None = None,
        req: Request | None = None,
    ) -> tuple[dict[str, Any], Turn]:
        """``req`` replaces the call's own request (an agent's step, with its tools)."""
        assert at is not None
        return record(
            req or call_request(call, self.profiles, live=False),
            turns,
            at,
            call.latency_ms,
            call.ttft_ms,
            call.words,
            call.fault,
            self.cache,
            self.account,
            self._profiled(call.model),
            trace,
        )

    def _profiled(self, model: str) -> Profiled | None:
        name = model.removeprefix("profile:")
        if not model.startswith("profile:") or name not in self.profiles:
            return None
        copy_from = next(p.copy_from for p in PROFILES if p.name == name)
        block = {"arn": self.profiles[name], "name": name, "tags": self.tags.get(name, {})}
        return Profiled(copy_from, block)

    def _session(self, session: Session) -> list[dict[str, Any]]:
        session_id = "sess-" + new_id(8)
        at = session.turns[0].at
        assert at is not None
        turns: list[Turn] = []
        docs = []
        for i, call in enumerate(session.turns):
            if i:
                at += timedelta(milliseconds=session.turns[i - 1].latency_ms)
                at += timedelta(seconds=session.gap_s[i - 1])
            turns.append(Turn("user", call.prompt))
            doc, reply = self._one(call, turns, at, {"sessionId": session_id, "spanKind": "llm"})
            doc["requestHeaders"]["x-llmtrail-session-id"] = session_id
            docs.append(doc)
            turns.append(reply)
        return docs

    def _agent(self, run: AgentRun) -> tuple[list[dict[str, Any]], list[RunSpans]]:
        assert run.at is not None
        trace_id, agent_span = new_id(16), new_id(8)
        spans = RunSpans(run.app, trace_id, agent_span, dict(run.metadata))
        start = at = run.at
        docs: list[dict[str, Any]] = []
        answer = ""
        steps = agent_steps(run, self.profiles, False, trace_id, agent_span)
        step = next(steps, None)
        while step is not None:
            if isinstance(step, ModelStep):
                call = Call(
                    run.app, run.route, run.model, run.prompt, run.metadata, step.latency_ms, 0, 40
                )
                trace = {
                    "traceId": trace_id,
                    "spanId": step.span_id,
                    "parentSpanId": agent_span,
                    "spanKind": "llm",
                }
                doc, reply = self._one(call, step.turns, at, trace, step.request)
                docs.append(doc)
                at += timedelta(milliseconds=step.latency_ms)
                answer = reply.text or answer
                step = _send(steps, reply)
            else:
                end = at + timedelta(milliseconds=step.ms)
                spans.tool(
                    step.tool.name,
                    dict(step.arguments),
                    step.result,
                    step.failed,
                    _ns(at),
                    _ns(end),
                )
                at = end
                step = _send(steps, None)
        spans.agent(run.prompt, answer, _ns(start), _ns(at))
        return docs, [spans]


def _send(steps: Any, value: Turn | None) -> Any:
    try:
        return steps.send(value)
    except StopIteration:
        return None


def _ns(at: datetime) -> int:
    return int(at.timestamp() * _NS)
