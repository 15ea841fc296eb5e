"""The agent's own steps as OpenTelemetry spans, for ``POST /v1/traces`` (OTLP/HTTP JSON).

Model calls are recorded by the gateway (live) or rendered as records (history); what only the
agent knows — its run as a whole and each tool it ran, with the tool's arguments and result —
is exported as the llmtrail SDK exports it (`llmtrail.sdk.otlp_json`), so the server stores
them as ``agent`` and ``tool`` spans of the same trace, with the application as the resource's
``service.name``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from llmtrail.sdk.otlp_json import export_request
from llmtrail.sdk.spans import ExceptionInfo, FinishedSpan

SCOPE_VERSION = "demo"


@dataclass
class RunSpans:
    """The spans of one agent run, collected while it runs."""

    app: str
    trace_id: str
    agent_span: str
    metadata: dict[str, str]
    spans: list[FinishedSpan] = field(default_factory=list)

    def tool(
        self,
        name: str,
        arguments: dict[str, Any],
        result: str,
        failed: bool,
        start_ns: int,
        end_ns: int,
    ) -> None:
        from llmtrail.demo.scripts import new_id

        error = None
        if failed:
            error = ExceptionInfo("TimeoutError", f"{name} timed out after 30s", "", end_ns)
        self.spans.append(
            FinishedSpan(
                trace_id=self.trace_id,
                span_id=new_id(8),
                parent_span_id=self.agent_span,
                name=name,
                kind="tool",
                start_ns=start_ns,
                end_ns=end_ns,
                status="ERROR" if failed else "OK",
                input=json.dumps(arguments),
                output=result,
                exception=error,
            )
        )

    def agent(self, prompt: str, answer: str, start_ns: int, end_ns: int) -> None:
        self.spans.append(
            FinishedSpan(
                trace_id=self.trace_id,
                span_id=self.agent_span,
                parent_span_id=None,
                name=self.app,
                kind="agent",
                start_ns=start_ns,
                end_ns=end_ns,
                input=json.dumps({"task": prompt}),
                output=json.dumps({"answer": answer}),
                metadata={k: v for k, v in self.metadata.items() if k in ("tenant_id", "user_id")},
            )
        )


def export_json(runs: list[RunSpans]) -> dict[str, Any]:
    """One ``ExportTraceServiceRequest`` for many runs: one resource per application."""
    by_app: dict[str, list[FinishedSpan]] = {}
    for run in runs:
        by_app.setdefault(run.app, []).extend(run.spans)
    resource_spans = []
    for app, spans in by_app.items():
        resource = {"service.name": app, "deployment.environment.name": "production"}
        resource_spans += export_request(spans, resource, SCOPE_VERSION)["resourceSpans"]
    return {"resourceSpans": resource_spans}
