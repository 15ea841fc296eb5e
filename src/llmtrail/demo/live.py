"""Live traffic: the plan's live units sent through the gateway now, several at a time.

Plain HTTP (aiohttp), no provider SDK: the demo must run where only llmtrail's ``server``
extra is installed. Streams are read to the end (an OpenAI stream's text is assembled, so a
session's next turn repeats what the assistant said); an agent's run waits for each answer to
take its next step and ends by exporting its agent and tool spans to ``/v1/traces``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import aiohttp
import orjson

from llmtrail.demo.plan import AgentRun, Call, Session, Unit
from llmtrail.demo.scripts import ModelStep, agent_steps, call_request, new_id
from llmtrail.demo.spans import RunSpans, export_json
from llmtrail.demo.wire import Request, Turn, http_request, reply_turn

CONCURRENCY = 16
_TIMEOUT = aiohttp.ClientTimeout(total=120)


class LiveSender:
    """Sends live units; ``done(route, status)`` is called after every gateway call."""

    def __init__(
        self,
        url: str,
        profiles: dict[str, str],
        done: Callable[[str, int], None],
        concurrency: int = CONCURRENCY,
    ) -> None:
        self.url = url.rstrip("/")
        self.profiles = profiles
        self.done = done
        self.slots = asyncio.Semaphore(concurrency)
        self.span_errors: list[str] = []
        self.spans_sent = 0

    async def send_all(self, units: list[Unit]) -> None:
        connector = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(connector=connector, timeout=_TIMEOUT) as http:
            await asyncio.gather(*(self._unit(http, unit) for unit in units))

    async def _unit(self, http: aiohttp.ClientSession, unit: Unit) -> None:
        async with self.slots:
            if isinstance(unit, Call):
                req = call_request(unit, self.profiles, live=True)
                await self._call(http, req, [Turn("user", unit.prompt)])
            elif isinstance(unit, Session):
                await self._session(http, unit)
            else:
                await self._agent(http, unit)

    async def _call(
        self, http: aiohttp.ClientSession, req: Request, turns: list[Turn]
    ) -> tuple[int, Turn]:
        sent = http_request(req, turns)
        async with http.post(
            self.url + sent.path, data=orjson.dumps(sent.body), headers=sent.headers
        ) as response:
            raw = await response.read()
            status = response.status
        self.done(req.route, status)
        if status >= 400:
            return status, Turn("assistant")
        if req.route == "openai chat stream":
            return status, Turn("assistant", _sse_text(raw))
        if req.route.endswith("stream"):
            return status, Turn("assistant")
        return status, reply_turn(req.route, orjson.loads(raw))

    async def _session(self, http: aiohttp.ClientSession, session: Session) -> None:
        session_id = "sess-" + new_id(8)
        turns: list[Turn] = []
        for call in session.turns:
            turns.append(Turn("user", call.prompt))
            req = call_request(call, self.profiles, live=True, session_id=session_id)
            _, reply = await self._call(http, req, turns)
            turns.append(reply)

    async def _agent(self, http: aiohttp.ClientSession, run: AgentRun) -> None:
        trace_id, agent_span = new_id(16), new_id(8)
        spans = RunSpans(run.app, trace_id, agent_span, dict(run.metadata))
        start = time.time_ns()
        answer = ""
        steps = agent_steps(run, self.profiles, True, trace_id, agent_span)
        step: Any = next(steps, None)
        while step is not None:
            if isinstance(step, ModelStep):
                status, reply = await self._call(http, step.request, step.turns)
                answer = reply.text or answer
                step = _send(steps, reply if status < 400 else None)
            else:
                began = time.time_ns()
                await asyncio.sleep(step.ms / 1000)
                spans.tool(
                    step.tool.name,
                    dict(step.arguments),
                    step.result,
                    step.failed,
                    began,
                    time.time_ns(),
                )
                step = _send(steps, None)
        spans.agent(run.prompt, answer, start, time.time_ns())
        body = orjson.dumps(export_json([spans]))
        headers = {"content-type": "application/json"}
        async with http.post(self.url + "/v1/traces", data=body, headers=headers) as response:
            if response.status >= 400:
                self.span_errors.append(f"{response.status}: {(await response.text())[:200]}")
            else:
                self.spans_sent += len(spans.spans)


def _send(steps: Any, value: Turn | None) -> Any:
    try:
        return steps.send(value)
    except StopIteration:
        return None


def _sse_text(raw: bytes) -> str:
    """The text of an OpenAI chat-completion stream (its ``data:`` events' deltas)."""
    parts = []
    for line in raw.decode("utf-8", "replace").splitlines():
        if not line.startswith("data: ") or line == "data: [DONE]":
            continue
        event = orjson.loads(line[6:])
        for choice in event.get("choices") or []:
            parts.append((choice.get("delta") or {}).get("content") or "")
    return "".join(parts)
