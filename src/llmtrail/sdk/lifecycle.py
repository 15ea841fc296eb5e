"""`configure`, `flush`, `shutdown` and `stats`: the SDK's process-wide state.

`configure` builds one tracer and its exporter and makes it active; calling it again shuts
the previous one down first (flushing it), so reconfiguring in tests or after reading
settings is safe. Arguments not given come from ``LLMTRAIL_URL``, ``LLMTRAIL_API_KEY`` and
``LLMTRAIL_APP``. An ``atexit`` hook shuts the active tracer down, so spans still queued
when the program ends are sent (within ``exit_timeout`` seconds).
"""

from __future__ import annotations

import atexit
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass

from llmtrail import __version__
from llmtrail.sdk.exporter import SpanExporter
from llmtrail.sdk.ids import IdGenerator
from llmtrail.sdk.otlp_json import export_body
from llmtrail.sdk.propagation import install_propagation
from llmtrail.sdk.spans import AttributeValue, FinishedSpan
from llmtrail.sdk.tracer import Clock, Tracer, active_tracer, set_active_tracer

DEFAULT_URL = "http://127.0.0.1:7788"
TRACES_PATH = "/v1/traces"
_LOCK = threading.Lock()


@dataclass
class _Process:
    exit_timeout: float = 5.0
    atexit_registered: bool = False
    last_exporter: SpanExporter | None = None


_PROCESS = _Process()


def configure(
    url: str | None = None,
    *,
    api_key: str | None = None,
    app: str | None = None,
    session_id: str | None = None,
    enabled: bool = True,
    max_queue: int = 2048,
    max_batch: int = 256,
    export_interval: float = 1.0,
    max_retries: int = 3,
    retry_delay: float = 0.5,
    request_timeout: float = 10.0,
    max_value_chars: int = 32_768,
    propagate: bool = True,
    exit_timeout: float = 5.0,
    clock: Clock | None = None,
    id_generator: IdGenerator | None = None,
) -> None:
    """Start recording spans and sending them to the llmtrail server at ``url`` (its
    ``/v1/traces``) as ``app`` (the resource's ``service.name``), in the background.

    ``api_key`` is sent as ``Authorization: Bearer``; ``session_id`` is every root span's
    session and is sent to the gateway with each call. ``enabled=False`` turns the SDK off:
    decorated code runs untouched. ``max_queue`` bounds the spans waiting to be sent (more
    are dropped and counted); a batch goes when ``max_batch`` spans wait or the oldest has
    waited ``export_interval`` seconds; a failed post is retried ``max_retries`` times from
    ``retry_delay`` seconds, doubling. Inputs and outputs keep at most ``max_value_chars``
    characters. ``propagate`` adds ``traceparent`` to httpx (openai, anthropic) and botocore
    calls made inside spans. ``clock`` (nanoseconds) and ``id_generator`` are for tests.
    """
    with _LOCK:
        previous = set_active_tracer(None)
        if previous is not None:
            _close(previous, exit_timeout)
        _PROCESS.exit_timeout = exit_timeout
        if not enabled:
            return
        base = (url or os.environ.get("LLMTRAIL_URL") or DEFAULT_URL).rstrip("/")
        key = api_key if api_key is not None else os.environ.get("LLMTRAIL_API_KEY")
        resource: dict[str, AttributeValue] = {
            "service.name": app or os.environ.get("LLMTRAIL_APP") or "unknown_service:python",
            "telemetry.sdk.name": "llmtrail",
            "telemetry.sdk.language": "python",
            "telemetry.sdk.version": __version__,
        }

        def encode(spans: Sequence[FinishedSpan]) -> bytes:
            return export_body(spans, resource, __version__)

        exporter = SpanExporter(
            base + TRACES_PATH,
            encode,
            headers={"Authorization": f"Bearer {key}"} if key else None,
            max_queue=max_queue,
            max_batch=max_batch,
            interval=export_interval,
            max_retries=max_retries,
            retry_delay=retry_delay,
            request_timeout=request_timeout,
        )
        tracer = Tracer(
            exporter,
            session_id=session_id,
            clock=clock,
            ids=id_generator,
            max_value_chars=max_value_chars,
            propagate=propagate,
        )
        if propagate:
            install_propagation()
        if not _PROCESS.atexit_registered:
            atexit.register(_shutdown_at_exit)
            _PROCESS.atexit_registered = True
        _PROCESS.last_exporter = exporter
        set_active_tracer(tracer)


def flush(timeout: float = 5.0) -> bool:
    """Send every span finished so far; True once all were exported or dropped, False when
    ``timeout`` seconds passed first (or True at once when the SDK is off)."""
    tracer = active_tracer()
    if tracer is None or tracer.exporter is None:
        return True
    return tracer.exporter.flush(timeout)


def shutdown(timeout: float = 5.0) -> bool:
    """Flush for at most ``timeout`` seconds, then stop: later spans are not recorded.
    `stats` still answers for the exporter that was shut down."""
    with _LOCK:
        tracer = set_active_tracer(None)
    if tracer is None:
        return True
    return _close(tracer, timeout)


def stats() -> dict[str, int]:
    """The exporter's counters: ``exported``, ``dropped``, ``failed_batches``, ``queued``,
    ``retries`` and the drop reasons apart (see `SpanExporter.stats`); all zero before
    `configure`."""
    if _PROCESS.last_exporter is not None:
        return _PROCESS.last_exporter.stats()
    return dict.fromkeys(
        (
            "exported",
            "dropped",
            "queued",
            "dropped_queue_full",
            "dropped_export",
            "dropped_after_shutdown",
            "failed_batches",
            "retries",
        ),
        0,
    )


def _close(tracer: Tracer, timeout: float) -> bool:
    if tracer.exporter is None:
        return True
    return tracer.exporter.shutdown(timeout)


def _shutdown_at_exit() -> None:
    shutdown(_PROCESS.exit_timeout)
