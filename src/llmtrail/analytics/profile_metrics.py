"""Per-profile metrics, as Bedrock reports them for an application inference profile:
invocation count, processing time, token count and character count.

A pure aggregation over record dicts (the records carry ``inferenceProfile.arn``; those
without one are not counted). Character counts are the characters of the input and output
*text* (`body_text`), so they need the bodies: a record whose body was offloaded or not
delivered adds nothing to the character counts and is counted in ``records_without_text``,
so a reader knows how complete those counts are.

Over the store the same figures are one GROUP BY with bound values, reading only hot
columns (character counts need ``input_character_count`` / ``output_character_count``
columns filled at capture; bodies are too heavy to parse in a query)::

    SELECT inference_profile_arn, count(*) AS invocations,
           count(*) FILTER (WHERE status = 'ERROR') AS errors,
           sum(latency_ms) AS processing_time_ms, avg(latency_ms) AS average_ms,
           sum(input_token_count) AS input_tokens, sum(output_token_count) AS output_tokens
    FROM records
    WHERE workspace = ? AND timestamp >= ? AND timestamp < ?
      AND inference_profile_arn IS NOT NULL
    GROUP BY inference_profile_arn
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from llmtrail.pricing.body_text import input_text, output_text


@dataclass
class ProfileMetrics:
    """The figures of one profile over the records given.

    ``invocations`` counts every record (``errors`` those with status ERROR);
    ``processing_time_ms`` sums ``latencyMs`` over the ``timed`` records that have it.
    """

    profile_arn: str
    invocations: int = 0
    errors: int = 0
    timed: int = 0
    processing_time_ms: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    input_characters: int = 0
    output_characters: int = 0
    records_without_text: int = 0

    @property
    def average_processing_time_ms(self) -> float | None:
        """Mean ``latencyMs`` of the timed records, or None when there are none."""
        return self.processing_time_ms / self.timed if self.timed else None

    @property
    def token_count(self) -> int:
        """Input plus output tokens."""
        return self.input_tokens + self.output_tokens

    @property
    def character_count(self) -> int:
        """Input plus output characters."""
        return self.input_characters + self.output_characters

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, camelCase like the record."""
        return {
            "inferenceProfileArn": self.profile_arn,
            "invocationCount": self.invocations,
            "errorCount": self.errors,
            "processingTimeMs": self.processing_time_ms,
            "averageProcessingTimeMs": self.average_processing_time_ms,
            "inputTokenCount": self.input_tokens,
            "outputTokenCount": self.output_tokens,
            "tokenCount": self.token_count,
            "inputCharacterCount": self.input_characters,
            "outputCharacterCount": self.output_characters,
            "characterCount": self.character_count,
            "recordsWithoutText": self.records_without_text,
        }


def _int(value: Any) -> int | None:
    return value if type(value) is int else None


def _section(record: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = record.get(key)
    return value if isinstance(value, Mapping) else {}


def profile_metrics(records: Iterable[Mapping[str, Any]]) -> dict[str, ProfileMetrics]:
    """Metrics per ``inferenceProfile.arn``, for the records that carry one."""
    out: dict[str, ProfileMetrics] = {}
    for record in records:
        arn = _section(record, "inferenceProfile").get("arn")
        if not isinstance(arn, str) or not arn:
            continue
        m = out.get(arn)
        if m is None:
            m = out[arn] = ProfileMetrics(arn)
        m.invocations += 1
        if record.get("status") == "ERROR":
            m.errors += 1
        latency = _int(record.get("latencyMs"))
        if latency is not None:
            m.timed += 1
            m.processing_time_ms += latency
        inp, outp = _section(record, "input"), _section(record, "output")
        m.input_tokens += _int(inp.get("inputTokenCount")) or 0
        m.output_tokens += _int(outp.get("outputTokenCount")) or 0
        in_body, out_body = inp.get("inputBodyJson"), outp.get("outputBodyJson")
        if in_body is None or (out_body is None and record.get("status") != "ERROR"):
            m.records_without_text += 1
        m.input_characters += len(input_text(in_body))
        m.output_characters += len(output_text(out_body))
    return out
