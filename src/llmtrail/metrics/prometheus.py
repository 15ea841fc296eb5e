"""The OpenTelemetry GenAI client metrics in Prometheus' text format, from the rollups.

``gen_ai_client_operation_duration_seconds`` and ``gen_ai_server_time_to_first_token_seconds``
are histograms with the buckets the GenAI semantic conventions advise; their counts come from
the latency sketches (`sketch`), so a bucket boundary is exact to within 1 %.
``gen_ai_client_token_usage`` counts tokens by ``gen_ai_token_type``; per-call token
distributions are not kept, so it has only the ``+Inf`` bucket, its sum and count. Labels are
the rollup's (`dimensions`: operation, provider, model, error type), capped like every series,
and cover the rollups' retention (counters restart when old hours are dropped).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta

from llmtrail.metrics import sketch
from llmtrail.metrics.dimensions import dimension_set
from llmtrail.record import DEFAULT_WORKSPACE
from llmtrail.store.interfaces import MetricStore, SeriesRead

DURATION_BUCKETS = (
    0.01,
    0.02,
    0.04,
    0.08,
    0.16,
    0.32,
    0.64,
    1.28,
    2.56,
    5.12,
    10.24,
    20.48,
    40.96,
    81.92,
)
TTFT_BUCKETS = (
    0.001,
    0.005,
    0.01,
    0.02,
    0.04,
    0.06,
    0.08,
    0.1,
    0.25,
    0.5,
    0.75,
    1.0,
    2.5,
    5.0,
    7.5,
    10.0,
)
_LABELS = ("ModelId", "Operation", "Provider", "ErrorType")
_OPERATIONS = {
    "Embeddings": "embeddings",
    "InvokeModel": "chat",
    "InvokeModelWithResponseStream": "chat",
    "Converse": "chat",
    "ConverseStream": "chat",
    "ChatCompletions": "chat",
    "Messages": "chat",
}
_PROVIDERS = {"bedrock": "aws.bedrock", "sim": "sim"}


def genai_metrics(
    store: MetricStore, keep: timedelta, workspace: str = DEFAULT_WORKSPACE
) -> list[str]:
    """The exposition lines of the three GenAI metrics (two reads of the rollups)."""
    end = datetime.now(UTC) + timedelta(hours=1)
    span = int(keep.total_seconds() // 3600 + 2) * 3600
    start = end - timedelta(seconds=span)
    read = SeriesRead(workspace, dimension_set(_LABELS), (), 3600, span, start, end)
    tokens: list[str] = []
    duration: list[str] = []
    ttft: list[str] = []
    for series in store.totals(read):
        model, operation, provider, error = series.values
        labels = {
            "gen_ai_operation_name": _OPERATIONS.get(operation, operation.lower() or "chat"),
            "gen_ai_provider_name": _PROVIDERS.get(provider, provider),
            "gen_ai_request_model": model,
        }
        if error:
            labels["error_type"] = error
        measures = series.measures
        count = int(measures["invocations"] or 0)
        if count == 0:
            continue
        for kind, key in (("input", "input_tokens"), ("output", "output_tokens")):
            token_labels = {**labels, "gen_ai_token_type": kind}
            total = int(measures[key] or 0)
            tokens += _histogram("gen_ai_client_token_usage", token_labels, (), {}, total, count)
        for name, metric, bounds, out in (
            ("gen_ai_client_operation_duration_seconds", "latency", DURATION_BUCKETS, duration),
            ("gen_ai_server_time_to_first_token_seconds", "ttft", TTFT_BUCKETS, ttft),
        ):
            counts = series.histograms.get(metric, {})
            if counts:
                seconds = float(measures[f"{metric}_sum"] or 0) / 1000
                out += _histogram(name, labels, bounds, counts, seconds, sum(counts.values()))
    lines = []
    for name, kind_lines, help_text in (
        ("gen_ai_client_token_usage", tokens, "Number of input and output tokens used"),
        ("gen_ai_client_operation_duration_seconds", duration, "GenAI operation duration"),
        ("gen_ai_server_time_to_first_token_seconds", ttft, "Time to generate first token"),
    ):
        lines.append(f"# HELP {name} {help_text}")
        lines.append(f"# TYPE {name} histogram")
        lines += kind_lines
    return lines


def _histogram(
    name: str,
    labels: Mapping[str, str],
    bounds: Iterable[float],
    counts: Mapping[int, int],
    total: float,
    count: int,
) -> list[str]:
    out = []
    ordered = sorted((sketch.bucket_value(i) / 1000, n) for i, n in counts.items())
    for bound in bounds:
        below = sum(n for value, n in ordered if value <= bound)
        out.append(f"{name}_bucket{_labels({**labels, 'le': repr(float(bound))})} {below}")
    out.append(f"{name}_bucket{_labels({**labels, 'le': '+Inf'})} {count}")
    out.append(f"{name}_sum{_labels(labels)} {total!r}")
    out.append(f"{name}_count{_labels(labels)} {count}")
    return out


def _labels(labels: Mapping[str, str]) -> str:
    def escape(value: str) -> str:
        return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')

    return "{" + ",".join(f'{k}="{escape(v)}"' for k, v in labels.items()) + "}"
