"""Ways a value used to reach the store without passing the workspace's redaction policy or
its logging configuration, each shown on a real server (``llmtrail serve`` with its recorder
process): every test here failed before `Redactor.redact_record` read the whole record and
`RecordPolicy.prepare_span` / `prepare_link` the whole span. Each sits next to a control that
the same value is redacted on the neighbouring path.

The workspace's policy is the default (API keys masked everywhere) plus the opt-in ``email``
and ``ip`` detectors, set once for the module.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import openai
import pytest

from tests.harness import ServerProcess
from tests.security.test_canaries import OPENAI_KEY
from tests.security.test_front_door import call

JSON = {"content-type": "application/json"}
EMAIL = "jane.canary@example.org"
IP = "203.0.113.77"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with ServerProcess(tmp_path_factory.mktemp("paths") / "data") as s:
        policy = json.dumps({"detectors": ["email", "ip"]}).encode()
        status, _, body = call(s.url + "/api/redaction", "PUT", policy, JSON)
        assert status == 200, body
        yield s


# -- helpers ----------------------------------------------------------------------------------


def value(v: Any) -> dict[str, Any]:
    if isinstance(v, list):
        return {"arrayValue": {"values": [value(x) for x in v]}}
    return {"stringValue": v}


def attrs(**pairs: Any) -> list[dict[str, Any]]:
    return [{"key": k.replace("__", "."), "value": value(v)} for k, v in pairs.items()]


def span(trace_id: str, span_id: str, name: str, attributes: list[dict[str, Any]],
         **more: Any) -> dict[str, Any]:  # fmt: skip
    now = time.time_ns()
    return {"traceId": trace_id, "spanId": span_id, "name": name,
            "startTimeUnixNano": str(now), "endTimeUnixNano": str(now + 5_000_000),
            "attributes": attributes, **more}  # fmt: skip


def export(server: ServerProcess, spans: list[dict[str, Any]],
           resource: list[dict[str, Any]] | None = None) -> Any:  # fmt: skip
    scope = {"scopeSpans": [{"scope": {"name": "t"}, "spans": spans}]}
    if resource is not None:
        scope["resource"] = {"attributes": resource}
    body = json.dumps({"resourceSpans": [scope]}).encode()
    status, headers, answer = call(server.url + "/v1/traces", "POST", body, JSON)
    assert status == 200, answer
    return headers


def get(server: ServerProcess, path: str) -> Any:
    status, _, body = call(server.url + path)
    assert status == 200, (path, body)
    return json.loads(body)


def trace_summary(server: ServerProcess, trace_id: str) -> dict[str, Any]:
    traces = get(server, "/api/traces?limit=1000")["traces"]
    (found,) = [t for t in traces if t["traceId"] == trace_id]
    return found  # type: ignore[no-any-return]


def one_span(server: ServerProcess, trace_id: str) -> dict[str, Any]:
    (only,) = get(server, f"/api/traces/{trace_id}")["spans"]
    return only  # type: ignore[no-any-return]


def chat(server: ServerProcess, model: str, content: str = "hi", **kwargs: Any) -> str:
    """A gateway call to the sim provider; its request id."""
    with openai.OpenAI(base_url=server.url + "/v1", api_key="sk-test", max_retries=0) as c:
        reply = c.chat.completions.with_raw_response.create(
            model=model, messages=[{"role": "user", "content": content}], **kwargs
        )
    return str(reply.headers["x-llmtrail-request-id"])


def sized(spans: list[dict[str, Any]], size: str, trace_id: str) -> list[dict[str, Any]]:
    """``spans``, and for ``large`` a filler span of trace ``trace_id`` taking the export past
    64 KB: decoded in a worker process, whose spans cross framed (`SpanFrames`) and are
    stored as they are only where the workspace's policies leave every one alone."""
    if size == "small":
        return spans
    filler = attrs(llmtrail__span__kind="tool", llmtrail__input=json.dumps("x" * 70_000))
    return [*spans, span(trace_id, "a8" * 8, "filler", filler)]


def put_logging(server: ServerProcess, **flags: bool) -> None:
    """The workspace's logging configuration: text on unless ``flags`` say otherwise."""
    config = {"textDataDeliveryEnabled": True, **{f"{k}DataDeliveryEnabled": v
                                                  for k, v in flags.items()}}  # fmt: skip
    body = json.dumps({"loggingConfig": config}).encode()
    status, _, answer = call(server.url + "/api/logging-configuration", "PUT", body, JSON)
    assert status == 200, answer


# -- the gaps ---------------------------------------------------------------------------------


# 1. a merged span's link keeps the exporter's application_name unredacted (Span.app)
@pytest.mark.parametrize("size", ["small", "large"])
def test_a_merged_links_app_is_redacted(server: ServerProcess, size: str) -> None:
    """Was open: the link a merged OTLP model-call span leaves copies the exporter's
    ``requestMetadata.application_name`` into the span's ``app`` as sent
    (`capture/merge.py` `merged_link`: ``app=...``); `RecordPolicy.prepare_link` redacts only
    the link's error. Had the span not merged, the same value would be stored masked in the
    record's ``requestMetadata``. Both decoding paths (in the serving process, and a worker's
    for exports of 64 KB or more) build the link from the same `link_fields`."""
    trace_id, parent = ("a1" if size == "small" else "b2") * 16, "c3" * 8
    model = f"sim/link-app-{size}"
    request_id = chat(server, model, extra_headers={"traceparent": f"00-{trace_id}-{parent}-01"})
    server.wait_for_record(request_id, timeout=30)
    app = f"billing {OPENAI_KEY}"
    model_call = attrs(gen_ai__operation__name="chat", gen_ai__request__model=model,
                       llmtrail__metadata__application_name=app)  # fmt: skip
    control_trace = ("d4" if size == "small" else "e5") * 16
    spans = [
        span(trace_id, parent, "chat", model_call),  # merges into the gateway call
        span(control_trace, "f6" * 8, "chat", model_call),  # merges into nothing: a record
    ]
    headers = export(server, sized(spans, size, "f7" * 16))
    assert headers["x-llmtrail-merged"] == "1"
    server.settle()
    control = get(server, f"/api/records/otlp-{control_trace}-{'f6' * 8}")
    assert "[REDACTED:" in control["requestMetadata"]["application_name"]  # the record path
    assert OPENAI_KEY not in json.dumps(control)
    stored = trace_summary(server, trace_id)
    assert stored["app"] is not None
    assert OPENAI_KEY not in stored["app"], f"the link stored app={stored['app']!r}"


# 2. a span's tags, session id and app (moved out of its attributes) skip redaction
@pytest.mark.parametrize("size", ["small", "large"])
@pytest.mark.parametrize("field", ["tags", "sessionId", "app"])
def test_a_spans_tags_session_and_app_are_redacted(
    server: ServerProcess, field: str, size: str
) -> None:
    """Was open: `RecordPolicy.prepare_span` redacts a span's input, output, attributes and error,
    but `otlp_genai.to_span` has already moved ``llmtrail.tags`` / ``tag.tags`` into
    ``Span.tags``, ``session.id`` / ``gen_ai.conversation.id`` into ``Span.session_id`` and the
    resource's ``service.name`` into ``Span.app``: those are stored as sent. The same
    ``service.name`` of a model call is masked in its record (``application_name``); the
    same text in any other attribute is masked (the control below)."""
    trace_id = {"tags": "1a", "sessionId": "2b", "app": "3c"}[field] * 15
    trace_id += "00" if size == "small" else "01"
    secret = f"key {OPENAI_KEY}"
    given: dict[str, Any] = {"llmtrail__span__kind": "tool", "note": secret}
    resource = None
    if field == "tags":
        given["llmtrail__tags"] = ["billing", secret]
    elif field == "sessionId":
        given["session__id"] = secret
    else:
        resource = attrs(service__name=f"svc {OPENAI_KEY}")
    spans = [span(trace_id, "4d" * 8, "lookup", attrs(**given))]
    export(server, sized(spans, size, trace_id[:-2] + "ff"), resource)
    server.settle()
    stored = one_span(server, trace_id)
    assert "[REDACTED:" in stored["attributes"]["note"]  # attributes are redacted
    assert stored[field], stored  # the field was stored
    assert OPENAI_KEY not in json.dumps(stored[field]), f"{field} stored {stored[field]!r}"


# 3. a gateway record's requestHeaders and trace.sessionId skip redaction
def test_gateway_session_id_and_forwarded_for_are_redacted(server: ServerProcess) -> None:
    """Was open: a gateway record keeps the recorded request headers (``requestHeaders``: an
    allow-list, `capture/gateway/call.py` RECORDED_HEADERS) and the caller's session header
    (``trace.sessionId``) as sent: `Redactor.redact_record` reads only bodies,
    ``requestMetadata`` and the error texts. With the workspace's ``email`` and ``ip``
    detectors on, the caller's address in ``x-forwarded-for`` and an e-mail address in
    ``x-llmtrail-session-id`` reach the store, while the same e-mail address as the call's
    ``user`` (``requestMetadata.user_id``) and in the prompt is masked."""
    request_id = chat(
        server,
        "sim/echo",
        f"write to {EMAIL} from {IP}",
        user=EMAIL,
        extra_headers={"x-forwarded-for": IP, "x-llmtrail-session-id": f"support-{EMAIL}"},
    )
    record = server.wait_for_record(request_id, timeout=30)
    assert "[REDACTED:email]" in record["requestMetadata"]["user_id"]  # the controls
    assert EMAIL not in json.dumps(record["input"]) and IP not in json.dumps(record["input"])
    places = {f"requestHeaders.{k}": v for k, v in (record.get("requestHeaders") or {}).items()}
    places["trace.sessionId"] = (record.get("trace") or {}).get("sessionId")
    leaked = {k: v for k, v in places.items() if isinstance(v, str) and (EMAIL in v or IP in v)}
    assert not leaked, leaked


# 4. text delivery off withholds a span's input/output only, not text in its attributes
@pytest.mark.parametrize("size", ["small", "large"])
def test_text_delivery_off_withholds_text_in_span_attributes(
    server: ServerProcess, size: str
) -> None:
    """Was open: with the workspace's text delivery off, `RecordPolicy.prepare_span` drops a span's
    ``input`` and ``output`` but keeps every other attribute (only redacted). Text that no
    convention maps to input or output stays: an OpenInference retriever span's
    ``retrieval.documents.N.document.content`` (the documents it found) is stored whole."""
    document = "Refund policy draft, internal only: refunds above 500 EUR need two approvals"
    trace_id = "5e" * 15 + ("00" if size == "small" else "01")
    given = {
        "openinference__span__kind": "RETRIEVER",
        "input__value": "which refund policy applies?",
        "retrieval__documents__0__document__content": document,
    }
    put_logging(server, text=False)
    try:
        spans = [span(trace_id, "6f" * 8, "retrieve", attrs(**given))]
        export(server, sized(spans, size, "5e" * 15 + "ff"))
        server.settle()
        stored = one_span(server, trace_id)
    finally:
        put_logging(server)
    assert stored["input"] is None  # the control: the query that became its input went
    assert document not in json.dumps(stored), stored["attributes"]


# 5. image/video/audio delivery off is never applied to spans
@pytest.mark.parametrize("size", ["small", "large"])
def test_image_delivery_off_withholds_images_in_span_input(
    server: ServerProcess, size: str
) -> None:
    """Was open: with image delivery off (text on), a record's image blocks become placeholders
    (`security/delivery.py` `_withhold_media`), but `RecordPolicy.prepare_span` looks only at
    the text flag: a workflow span whose input (the SDK's ``llmtrail.input``: the function's
    arguments) holds the caller's messages keeps their images whole."""
    image = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgCANARYIMAGE"
    messages = [{"role": "user", "content": [
        {"type": "text", "text": "what is in this picture?"},
        {"type": "image_url", "image_url": {"url": image}},
    ]}]  # fmt: skip
    trace_id = "7a" * 15 + ("00" if size == "small" else "01")
    given = {"llmtrail__span__kind": "workflow", "llmtrail__input": json.dumps(messages)}
    put_logging(server, image=False)
    try:
        # the control: a gateway record of the same messages loses its image
        with openai.OpenAI(base_url=server.url + "/v1", api_key="sk-test", max_retries=0) as c:
            reply = c.chat.completions.with_raw_response.create(
                model="sim/echo",
                messages=messages,  # type: ignore[arg-type]
            )
        request_id = str(reply.headers["x-llmtrail-request-id"])
        export(
            server,
            sized([span(trace_id, "8b" * 8, "answer", attrs(**given))], size, "7a" * 15 + "ff"),
        )
        server.settle()
        record = server.wait_for_record(request_id, timeout=30)
        stored = one_span(server, trace_id)
    finally:
        put_logging(server)
    shown = json.dumps(record["input"])
    assert image not in shown and "not delivered" in shown
    assert stored["input"] is not None  # text is delivered: the input stays
    assert image not in json.dumps(stored["input"]), stored["input"]


# 6. an OTLP model call's trace.sessionId and error.type skip redaction
@pytest.mark.parametrize("field", ["sessionId", "errorType"])
def test_an_otlp_model_calls_session_and_error_type_are_redacted(
    server: ServerProcess, field: str
) -> None:
    """Was open: `Redactor.redact_record` reads only bodies, ``requestMetadata`` and
    ``error.message`` / ``error.stackTrace``. An OTLP model call's ``session.id`` becomes
    ``trace.sessionId`` and its ``error.type`` attribute ``error.type`` as sent; ``error.type``
    is what ``GET /api/errors`` groups by and the ``error_type`` metric dimension (its values
    kept in ``metric_dimension_values``), so a key there shows on the errors page, as the
    merged link's error message did before `RecordPolicy.prepare_link`."""
    trace_id, span_id = {"sessionId": "8c", "errorType": "9d"}[field] * 16, "ae" * 8
    given = {"gen_ai__operation__name": "chat", "gen_ai__request__model": "m-otlp"}
    extra: dict[str, Any] = {}
    if field == "sessionId":
        given["session__id"] = f"key {OPENAI_KEY}"
    else:
        given["error__type"] = f"Refused {OPENAI_KEY}"
        extra["status"] = {"code": 2, "message": f"refused {OPENAI_KEY}"}
    export(server, [span(trace_id, span_id, "chat", attrs(**given), **extra)])
    server.settle()
    record = get(server, f"/api/records/otlp-{trace_id}-{span_id}")
    stored = record["trace"].get("sessionId") if field == "sessionId" else record["error"]
    if field == "errorType":
        assert "[REDACTED:" in record["error"]["message"]  # the control: the message is masked
    assert stored, record
    assert OPENAI_KEY not in json.dumps(stored), stored


# 7. an ingested record's keys outside bodies, metadata and error texts skip redaction
def test_an_ingested_records_other_keys_are_redacted(server: ServerProcess) -> None:
    """Was open: a record's keys llmtrail does not know are kept verbatim (DESIGN.md, *Round
    trip*) and so are its own ``requestHeaders``; `Redactor.redact_record` never reads them.
    A JSONL export of another tool (an importer's input, `POST /api/records`) that keeps a
    prompt or a caller's key beside the Bedrock body keys reaches the store as sent, while
    the same text in ``inputBodyJson`` or ``requestMetadata`` is masked."""
    secret = f"my key is {OPENAI_KEY}"
    record = {
        "schemaType": "ModelInvocationLog", "schemaVersion": "1.0",
        "timestamp": "2026-12-07T09:00:00Z", "requestId": "paths-ingest-1",
        "modelId": "m", "operation": "Converse",
        "requestMetadata": {"note": secret},
        "input": {"inputBodyJson": {"prompt": secret}, "inputBodyText": secret},
        "requestHeaders": {"user-agent": secret},
        "response": {"text": secret},
    }  # fmt: skip
    status, _, body = call(server.url + "/api/records", "POST", json.dumps(record).encode(),
                           {"content-type": "application/x-ndjson"})  # fmt: skip
    assert status == 200 and b'"stored":1' in body, body
    server.settle()
    stored = get(server, "/api/records/paths-ingest-1")
    assert OPENAI_KEY not in json.dumps(stored["input"]["inputBodyJson"])  # the controls
    assert OPENAI_KEY not in stored["requestMetadata"]["note"]
    leaked = sorted(
        k for k in ("input.inputBodyText", "requestHeaders", "response")
        if OPENAI_KEY in json.dumps(stored.get(k) if "." not in k else stored["input"].get(k[6:]))
    )  # fmt: skip
    assert not leaked, leaked
