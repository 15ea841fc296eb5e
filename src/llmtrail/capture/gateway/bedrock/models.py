"""What the Bedrock runtime's routes need to know about models and payloads.

Three things, all pure functions of strings and JSON so the routes can call them on any
upstream answer without a try/except (a ``{modelId}`` is taken apart by
`llmtrail.model_ids.parse_model_id`, whose family decides how InvokeModel bodies are read):

- `invoke_usage` and `StreamAssembler`: InvokeModel bodies and InvokeModelWithResponseStream
  chunks per family (the per-shape knowledge is in `native`), falling back to the
  ``X-Amzn-Bedrock-*-Token-Count`` headers and to the ``amazon-bedrock-invocationMetrics``
  object Bedrock adds to a stream's last chunk.
- `converse_usage` and `ConverseStreamAssembler` for Converse / ConverseStream (in
  `converse`, re-exported here).
- `error_code_for_status`: the Bedrock ``errorCode`` a failed call is logged with.

Counts are ``None`` when neither the body nor Bedrock says, so the caller can estimate and
flag the record; nothing here raises on odd input, because logging must not break a call.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from llmtrail.capture.gateway.bedrock.converse import ConverseStreamAssembler, converse_usage
from llmtrail.capture.gateway.bedrock.native import BodyShape, StreamShape, body_shape, chunk_shape
from llmtrail.capture.gateway.usage import Usage, as_dict, token_count

__all__ = [
    "INVOCATION_METRICS_KEY",
    "ConverseStreamAssembler",
    "StreamAssembler",
    "converse_usage",
    "error_code_for_status",
    "guess_family",
    "header_usage",
    "invoke_usage",
    "metrics_usage",
]

INVOCATION_METRICS_KEY = "amazon-bedrock-invocationMetrics"


def guess_family(request_body: Any) -> str:
    """The family an InvokeModel request body is written for, when the model id does not say
    (an application inference profile); ``unknown`` when the body could be several."""
    body = as_dict(request_body)
    if "anthropic_version" in body or "max_tokens_to_sample" in body:
        return "anthropic"
    if "schemaVersion" in body or "inferenceConfig" in body:
        return "amazon-nova"
    if isinstance(body.get("inputText"), str) or isinstance(body.get("inputImage"), str):
        return "amazon-titan-text" if "textGenerationConfig" in body else "amazon-titan-embed"
    if isinstance(body.get("texts"), list) and "input_type" in body:
        return "cohere-embed"
    if isinstance(body.get("message"), str) or "num_generations" in body:
        return "cohere"
    if isinstance(body.get("prompt"), str) and "max_gen_len" in body:
        return "meta-llama"
    return "unknown"


def header_usage(headers: Mapping[str, str]) -> Usage:
    """Counts and latency from Bedrock's InvokeModel response headers (any letter case)."""
    try:
        lowered = {str(k).lower(): v for k, v in headers.items()}
    except (AttributeError, TypeError):
        return Usage()

    def count(name: str) -> int | None:
        value = lowered.get(name)
        return token_count(value) if isinstance(value, str) else None

    return Usage(
        input_tokens=count("x-amzn-bedrock-input-token-count"),
        output_tokens=count("x-amzn-bedrock-output-token-count"),
        cache_read_tokens=count("x-amzn-bedrock-cache-read-input-token-count"),
        cache_write_tokens=count("x-amzn-bedrock-cache-write-input-token-count"),
        latency_ms=count("x-amzn-bedrock-invocation-latency"),
    )


def invoke_usage(
    family: str,
    request_body: dict[str, Any] | None,
    response_body: dict[str, Any] | None,
    headers: Mapping[str, str],
) -> Usage:
    """What an InvokeModel call used: read from the response body in the family's shape (or
    whichever known shape it is in), each missing count taken from the response headers.

    ``family`` is `ModelRef.family`; when it is ``unknown`` the request body is used to guess.
    """
    if family == "unknown":
        family = guess_family(request_body)
    shape = body_shape(family, response_body)
    usage = shape.read(response_body) if shape is not None and response_body else Usage()
    return usage.filled_from(header_usage(headers))


def metrics_usage(metrics: Any) -> Usage:
    """Counts and latency from an ``amazon-bedrock-invocationMetrics`` object."""
    metrics = as_dict(metrics)
    return Usage(
        input_tokens=token_count(metrics.get("inputTokenCount")),
        output_tokens=token_count(metrics.get("outputTokenCount")),
        cache_read_tokens=token_count(metrics.get("cacheReadInputTokenCount")),
        cache_write_tokens=token_count(metrics.get("cacheWriteInputTokenCount")),
        latency_ms=token_count(metrics.get("invocationLatency")),
    )


class StreamAssembler:
    """Builds the InvokeModel body an InvokeModelWithResponseStream amounts to.

    Feed each chunk's decoded JSON (the ``bytes`` of a ``chunk`` event, base64-decoded and
    parsed) to `add`. The body shape is the family's, or for an ``unknown`` family the shape
    of the first chunk that has one. `result` is the body in the family's non-stream shape
    (e.g. a Claude ``message``), `text` equals the concatenated text deltas, and `usage`
    prefers the body's own counts, filling gaps from ``amazon-bedrock-invocationMetrics``.
    """

    def __init__(self, family: str) -> None:
        self.family = family
        self.shape: BodyShape | None = None  # the payload shape, once a chunk has shown it
        self.invocation_metrics: dict[str, Any] | None = None
        self._inner: StreamShape | None = None

    def add(self, chunk: Any) -> None:
        """Take one decoded chunk; chunks before the shape is known that show none are dropped."""
        if not isinstance(chunk, dict):
            return
        metrics = chunk.get(INVOCATION_METRICS_KEY)
        if isinstance(metrics, dict):
            self.invocation_metrics = dict(metrics)
        if self._inner is None:
            shape = chunk_shape(self.family, chunk)
            if shape is None or shape.stream is None:
                return
            self.shape, self._inner = shape, shape.stream()
        self._inner.add(chunk)

    @property
    def text(self) -> str:
        """The concatenated text deltas so far."""
        return self._inner.text if self._inner is not None else ""

    @property
    def tool_input_malformed(self) -> bool:
        """True when a streamed tool call's JSON does not parse."""
        return bool(getattr(self._inner, "tool_input_malformed", False))

    def result(self) -> dict[str, Any]:
        """The assembled body in the family's non-stream InvokeModel shape ({} if none)."""
        return self._inner.result() if self._inner is not None else {}

    def usage(self, result: dict[str, Any] | None = None) -> Usage:
        """What the stream used: the assembled body (``result`` when the caller has made it
        already, else `result`'s) read like a non-stream body, gaps filled from the invocation
        metrics."""
        if self.shape is None:
            own = Usage()
        else:
            own = self.shape.read(self.result() if result is None else result)
        return own.filled_from(metrics_usage(self.invocation_metrics))


# Bedrock's HTTP status → errorCode, from botocore's bedrock-runtime service model; where
# two exceptions share a status the commoner one is used (429: Throttling, not ModelNotReady;
# 400: Validation, not ServiceQuotaExceeded or Conflict).
_STATUS_CODES = {
    400: "ValidationException",
    401: "AccessDeniedException",
    403: "AccessDeniedException",
    404: "ResourceNotFoundException",
    408: "ModelTimeoutException",
    424: "ModelErrorException",
    429: "ThrottlingException",
    500: "InternalServerException",
    503: "ServiceUnavailableException",
    504: "ModelTimeoutException",
}
_ERROR_TYPE = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,127}")


def error_code_for_status(status: int, x_amzn_error_type: str | None) -> str:
    """The Bedrock ``errorCode`` for a failed call.

    The ``x-amzn-ErrorType`` header wins when it holds a plausible name; AWS may append
    ``:http://internal.amazon.com/coral/…`` or prefix a ``namespace#``, both stripped.
    Otherwise the status decides; any other 4xx is ``ValidationException`` and anything else
    (5xx, or a status below 400 with no type, as when a stream fails after its 200) is
    ``InternalServerException``.
    """
    if isinstance(x_amzn_error_type, str):
        name = x_amzn_error_type.strip().split(":", 1)[0].rpartition("#")[2].strip()
        if _ERROR_TYPE.fullmatch(name):
            return name
    if isinstance(status, bool) or not isinstance(status, int):
        return "InternalServerException"
    if status in _STATUS_CODES:
        return _STATUS_CODES[status]
    return "ValidationException" if 400 <= status < 500 else "InternalServerException"
