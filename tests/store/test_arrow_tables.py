"""The Arrow tables of a batch (`batch_tables`) and its columns (`to_columns`) against the
general way they were first built, over many varied records.

`reference_columns` and `reference_table` below are that general way, kept here as the
specification: one row at a time, every column looked up in `held_values`, the residue from
`residue`, timestamps through `parse_timestamp` and `format_timestamp`, money through
`Decimal`, and every column built by ``pa.array`` from its list. The store's own conversion
takes one pass over each record's keys and lets Arrow cast money and timestamps from text;
whatever records it gets, its tables must be equal to these (same schema, values and row
order), its columns the same Python values, and a batch the general way refuses must be
refused with the same error.

The records: every record fixture (Bedrock's invocation logs, here and in the shared
fixtures), every wire-format fixture as a record's bodies, gateway records built by the record
path's own `record_of` for each wire format's answers and streams (priced, with errors,
refusals, cancelled streams, metadata promoted or not, traces, identities, inference
profiles), and hand-made ones: missing fields, explicit nulls, empty and odd objects, unknown
keys at every depth, huge and non-ASCII bodies, timestamps and money of every shape.
"""

from __future__ import annotations

import base64
import copy
import json
import random
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pytest

from llmtrail.capture.gateway.bedrock.eventstream import event
from llmtrail.capture.gateway.facts import (
    ERROR_BODY,
    NO_ANSWER,
    STREAM,
    CallFacts,
    record_of,
)
from llmtrail.capture.gateway.readers import readers
from llmtrail.config import Settings
from llmtrail.pipeline.enrich import Enricher
from llmtrail.record import InvocationRecord, format_timestamp, parse_timestamp
from llmtrail.schema import (
    RecordSchema,
    Role,
    Type,
    held_values,
    metadata_column_name,
    residue,
)
from llmtrail.store.arrow import arrow_schema
from llmtrail.store.duckdb.records import batch_tables
from llmtrail.store.rows import BODY_NAMES, to_columns
from tests.test_response_readers import MISSING, SHAPES

ROOT = Path(__file__).resolve().parents[2]
FIXTURE_DIRS = [ROOT / "tests" / "fixtures", Path("/work/shared/fixtures")]
NOW = datetime(2026, 12, 6, 12, 0, 0, 123456, tzinfo=UTC)
SCHEMAS = [
    RecordSchema(),
    RecordSchema(("team", "user_id", "Cost-Center", "variant")),
    RecordSchema(()),
]

# -- the general way -------------------------------------------------------------------------

_SPECIAL = {"timestamp", "request_metadata", "derived", "ingested_at", "extra"}


def _text(value: Any) -> str:
    return orjson.dumps(value).decode()


def reference_columns(
    records: Sequence[InvocationRecord], schema: RecordSchema, ingested_at: datetime
) -> tuple[dict[str, list[Any]], dict[str, list[Any]]]:
    cols: dict[str, list[Any]] = {c.name: [] for c in schema.record_columns}
    bodies: dict[str, list[Any]] = {name: [] for name in BODY_NAMES}
    promoted = frozenset(schema.promoted_keys)
    for record in records:
        doc = record.data
        held = held_values(doc)
        for column in schema.record_columns:
            if column.name in _SPECIAL or column.role is Role.METADATA:
                continue
            value = held.get(column.path)
            if column.type is Type.DECIMAL and value is not None:
                value = Decimal(str(value))
            cols[column.name].append(value)
        extra = residue(doc)
        raw = held.get(("timestamp",))
        stamp = None
        if raw is not None:
            stamp = parse_timestamp(raw)
            if format_timestamp(stamp) != raw:
                extra["timestamp"] = raw
        cols["timestamp"].append(stamp)
        meta = held.get(("requestMetadata",))
        for key in schema.promoted_keys:
            cols[metadata_column_name(key)].append(None if meta is None else meta.get(key))
        cols["request_metadata"].append(
            None if meta is None else {k: v for k, v in meta.items() if k not in promoted}
        )
        cols["derived"].append(_text(list(record.derived)) if record.derived else None)
        cols["extra"].append(_text(extra) if extra else None)
        body_in, body_out = (
            held.get(("input", "inputBodyJson")),
            held.get(("output", "outputBodyJson")),
        )
        if body_in is not None or body_out is not None:
            bodies["record_id"].append(record.record_id)
            bodies["input_body_json"].append(None if body_in is None else _text(body_in))
            bodies["output_body_json"].append(None if body_out is None else _text(body_out))
    cols["ingested_at"] = [ingested_at] * len(records)
    return cols, bodies


def reference_table(columns: dict[str, list[Any]], schema: pa.Schema) -> pa.Table:
    arrays = []
    for field in schema:
        values = columns[field.name]
        if pa.types.is_map(field.type):
            values = [None if v is None else list(v.items()) for v in values]
        arrays.append(pa.array(values, type=field.type))
    return pa.Table.from_arrays(arrays, schema=schema)


def reference_tables(
    records: Sequence[InvocationRecord], schema: RecordSchema, ingested_at: datetime
) -> tuple[pa.Table, pa.Table]:
    cols, bodies = reference_columns(records, schema, ingested_at)
    return (
        reference_table(cols, arrow_schema(schema.record_columns)),
        reference_table(bodies, arrow_schema(schema.body_columns)),
    )


# -- the records -----------------------------------------------------------------------------


def _fixture_records() -> list[InvocationRecord]:
    """Every record fixture, imported as `llmtrail import` does, and every other fixture
    file as the bodies of a record (Bedrock-shaped, with the file's name in its metadata)."""
    out = []
    files = sorted(p for d in FIXTURE_DIRS if d.is_dir() for p in d.rglob("*") if p.is_file())
    assert any(p.suffix == ".jsonl" for p in files) and any(p.suffix == ".sse" for p in files)
    for i, path in enumerate(files):
        if path.suffix == ".jsonl":
            for line in path.read_text().splitlines():
                if line.strip():
                    out.append(InvocationRecord.from_dict(json.loads(line), now=NOW))
            continue
        if path.suffix not in (".json", ".sse"):
            continue
        text = path.read_text()
        content: Any = json.loads(text) if path.suffix == ".json" else text
        if isinstance(content, dict) and ("request" in content or "response" in content):
            request, response = content.get("request"), content.get("response")
        else:
            request, response = {"fixture": path.name}, content
        doc: dict[str, Any] = {
            "schemaType": "ModelInvocationLog",
            "schemaVersion": "1.0",
            "timestamp": f"2026-11-{1 + i % 28:02d}T0{i % 10}:00:00.{i:03d}Z",
            "requestId": f"fixture-{i}",
            "operation": "InvokeModel",
            "modelId": str(content.get("model_id", "fixture"))
            if isinstance(content, dict)
            else "fixture",
            "requestMetadata": {"application_name": "fixtures", "file": path.name[:200]},
            "input": {"inputContentType": "application/json", "inputBodyJson": request},
            "output": {"outputContentType": "application/json", "outputBodyJson": response},
        }
        out.append(InvocationRecord.from_dict(doc, now=NOW))
    return out


def _anthropic_stream_fixtures() -> list[bytes]:
    return sorted(p.read_bytes() for p in (ROOT / "tests" / "fixtures" / "anthropic").glob("*.sse"))


def _bedrock_stream_fixtures() -> list[tuple[str, bytes]]:
    """(model, the event stream's bytes) of each Bedrock stream fixture."""
    out = []
    for path in sorted((ROOT / "tests" / "fixtures" / "bedrock" / "stream").glob("*.json")):
        content = json.loads(path.read_text())
        chunks = content.get("chunks") or content.get("events") or []
        frames = []
        for chunk in chunks:
            if isinstance(chunk, dict) and len(chunk) == 1:
                ((name, payload),) = chunk.items()
                frames.append(event(name, payload if isinstance(payload, dict) else {}))
            else:
                raw = json.dumps(chunk).encode()
                frames.append(event("chunk", {"bytes": base64.b64encode(raw).decode()}))
        out.append((str(content.get("model_id", "us.amazon.nova-pro-v1:0")), b"".join(frames)))
    return out


def _gateway_records() -> list[InvocationRecord]:
    """Records as the record path builds them from the serving process's facts, priced."""
    settings = Settings()
    by_wire = readers(settings)
    enrich = Enricher()
    started = datetime(2026, 12, 1, 9, 30, 0, 250000, tzinfo=UTC)
    facts: list[CallFacts] = []
    for n, (name, shape) in enumerate(SHAPES.items()):
        for value in (MISSING, 12, "12", 2**40):
            answer = shape(value)
            facts.append(
                CallFacts(
                    wire=answer.wire,
                    operation=answer.operation,
                    started=started + timedelta(microseconds=n * 1013 + 7),
                    request_id=f"{name}-{value!r}",
                    latency_ms=40 + n,
                    model_id=answer.model,
                    workspace="default" if n % 2 else "team-a",
                    input_body=answer.body,
                    answer=answer.answer,
                    raw=answer.raw,
                    time_to_first_token_ms=9 if answer.answer == STREAM else None,
                )
            )
    for raw in _anthropic_stream_fixtures():
        facts.append(
            CallFacts(
                wire="anthropic",
                operation="Messages",
                started=started,
                request_id=f"anthropic-fixture-{len(facts)}",
                latency_ms=120,
                model_id="claude-sonnet-4-5-20250929",
                workspace="default",
                input_body={"model": "claude-sonnet-4-5-20250929", "stream": True},
                answer=STREAM,
                raw=raw,
            )
        )
    for model, raw in _bedrock_stream_fixtures():
        facts.append(
            CallFacts(
                wire="bedrock",
                operation="ConverseStream",
                started=started,
                request_id=f"bedrock-fixture-{len(facts)}",
                latency_ms=300,
                model_id=model,
                workspace="default",
                input_body={"messages": [{"role": "user", "content": [{"text": "hi"}]}]},
                answer=STREAM,
                raw=raw,
            )
        )
    base = facts[0]
    error = {"type": "upstream_error", "message": "Überlastet – bitte später 🙏", "httpStatus": 529}
    facts += [
        replace(
            base,
            request_id="error-body",
            answer=ERROR_BODY,
            raw=b'{"error": {"message": "rate limited", "type": "rate_limit"}}',
            status="ERROR",
            error=error,
            error_code="ThrottlingException",
        ),
        replace(base, request_id="refused", answer=NO_ANSWER, status="ERROR", error=error),
        replace(base, request_id="not-json", answer=ERROR_BODY, raw=b"<html>502</html>"),
        replace(
            facts[1],
            request_id="cancelled",
            status="CANCELLED",
            cancelled_code="ClientDisconnected",
            truncated=True,
        ),
        replace(facts[1], request_id="mid-stream-error", error_status=500),
        replace(
            base,
            request_id="everything",
            identity=("arn:aws:iam::123456789012:user/alice", "sigv4_claimed"),
            headers={"user-agent": "ünïcode/1.0", "x-request-id": "abc"},
            trace={"traceId": "0af7651916cd43dd8448eb211c80319c", "spanId": "b7ad6b7169203331"},
            provider="openai",
            resolved_model="gpt-4o-mini-2024-07-18",
            metadata={"application_name": "app", "tenant_id": "t-1", "feature": "search"},
            metadata_truncated=True,
            additions={
                "inferenceProfile": {
                    "arn": "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/x",
                    "name": "x",
                    "tags": {"team": "search", "env": ""},
                }
            },
        ),
        replace(base, request_id="only-promoted", metadata={"team": "a", "user_id": "u"}),
        replace(base, request_id="none-promoted", metadata={"feature": "f", "Team": "T"}),
        replace(base, request_id="empty-headers", headers={}),
        replace(base, request_id="no-body", input_body=None, answer=NO_ANSWER),
    ]
    return [record_of(f, settings, by_wire[f.wire], enrich=enrich) for f in facts]


_STAMPS = [
    "2026-11-20T08:00:00Z",  # Bedrock's own: kept in extra
    "2026-11-20T08:00:00.123Z",
    "2026-11-20T08:00:00.000Z",
    "2026-11-20T08:00:00.123456Z",
    "2026-11-20T08:00:00.123000Z",  # six digits that three would say: kept in extra
    "2026-11-20T08:00:00.1234567Z",
    "2026-11-20T08:00:00.12Z",
    "2026-11-20T08:00:00.123+02:00",
    "2026-11-20T08:00:00.123-00:30",
    "2026-11-20T08:00:00.123",  # no zone: UTC
    "2026-11-20 08:00:00.123Z",
    " 2026-11-20T08:00:00.123Z ",
    "2024-02-29T23:59:59.999999Z",
    "0500-01-01T00:00:00.000Z",
    "1000-01-01T00:00:00.000Z",
    "9998-12-31T23:59:59.999Z",
    "2026-11-20T08:00Z",
    "20261120T080000Z",
]
_MONEY: list[Any] = [
    "0.000018000",
    "0.000125",
    "0",
    "-0.000000000",
    "-1.5",
    "1000000",
    "1e-5",
    "1.5E3",
    "+2.5",
    ".5",
    " 1.5",  # whitespace: Decimal's, not Arrow's
    "1_000",
    "0.100000000000",
    3,
    0,
    0.125,
    1e-05,
]


def _handmade_records() -> list[InvocationRecord]:
    """Missing fields, nulls, odd shapes, unknown keys at every depth, huge and unicode bodies,
    every timestamp and money shape: built directly, as a spool replay or an import would
    hand them over (not all would pass ingest's validation; all must convert the same)."""
    huge = {"messages": [{"role": "user", "content": "ж" * 150_000 + "🙂" * 1000}]}
    docs: list[tuple[dict[str, Any], Any]] = [
        ({"recordId": "r-min", "timestamp": "2026-11-20T08:00:00.000Z"}, ()),
        ({"recordId": "r-nothing"}, ()),
        ({}, ()),
        (
            {
                "recordId": "r-nulls",
                "timestamp": None,
                "requestId": None,
                "requestMetadata": None,
                "requestHeaders": None,
                "input": None,
                "output": {"outputTokenCount": None, "outputBodyJson": None},
                "cost": {"inputUsd": None, "totalUsd": "0.1"},
                "error": {},
                "trace": {"traceId": None},
            },
            ("recordId",),
        ),
        (
            {
                "recordId": "r-unknown",
                "timestamp": "2026-11-20T08:00:00.5Z",
                "requestId": "u",
                "newTopLevel": {"deep": {"deeper": [1, 2, {"x": None}]}},
                "input": {"inputTokenCount": 3, "newInside": "x", "inputBodyJson": "text"},
                "identity": {"arn": "a", "principalId": "p", "nested": {}},
                "output": {"outputBodyJson": [1, "two", None, {"3": 4.5}], "outputTokenCount": 0},
                "error": {"type": "t", "code": 7},
                "inferenceProfile": {"tags": {}, "id": "ip"},
                "textCharacters": {"input": 5, "output": 6, "other": 7},
                "cost": {"inputUsd": "0.1", "otherUsd": "0.000000000", "note": "x"},
                "requestMetadata": {},
                "requestHeaders": {"a": "b"},
            },
            ["recordId", "workspace"],  # a list, as a decoded frame could hold
        ),
        (
            {
                "recordId": "r-odd-parents",
                "timestamp": "2026-11-20T08:00:00.000001Z",
                "input": "not an object",
                "output": [],
                "identity": 5,
                "trace": None,
                "cost": {},
            },
            ("recordId", "x"),
        ),
        (
            {
                "recordId": "r-subclass",
                "timestamp": "2026-11-20T08:00:00.000Z",
                "requestId": "s",
                "input": OrderedDict(inputTokenCount=4, inputBodyJson={"a": 1}, more=1),
                "output": {"outputTokenCount": 2, "outputBodyJson": {"b": 2}},
                "extraKey": 1,
            },
            (),
        ),
        (
            {
                "recordId": "r-huge",
                "timestamp": "2026-11-20T08:00:00.999999Z",
                "requestId": "huge-ünïcode-🙂",
                "modelId": "模型/v1",
                "requestMetadata": {"application_name": "ünï", "tenant_id": "t", "k": "🙂"},
                "input": {"inputBodyJson": huge, "inputTokenCount": 2**31 - 1},
                "output": {"outputBodyJson": {"text": "\u0000\u2028\ud7ff" + "é" * 10}},
            },
            ("recordId",),
        ),
        (
            {
                "recordId": "r-bools",
                "timestamp": "2026-11-20T08:00:00.000Z",
                "requestMetadataTruncated": False,
                "tokenCountEstimated": True,
                "latencyMs": 0,
                "error": {"httpStatus": 0, "message": "", "stackTrace": "line\nline"},
            },
            (),
        ),
        (
            {
                "recordId": "r-timestamp-key-order",
                "extraFirst": 1,
                "timestamp": "2026-11-20T08:00:00Z",
                "extraLast": {"x": 1},
            },
            (),
        ),
    ]
    out = [InvocationRecord(doc, derived) for doc, derived in docs]
    for i, stamp in enumerate(_STAMPS):
        out.append(InvocationRecord({"recordId": f"ts-{i}", "timestamp": stamp}, ()))
    for i, money in enumerate(_MONEY):
        cost = {"inputUsd": money, "outputUsd": "0.000001000", "totalUsd": money}
        out.append(
            InvocationRecord(
                {"recordId": f"money-{i}", "timestamp": "2026-11-20T08:00:00.000Z", "cost": cost},
                ("cost",),
            )
        )
    return out


def _ingest_records() -> list[InvocationRecord]:
    """The ingest benchmark's 1 KB Bedrock-shaped records, decoded as ingest decodes them."""
    from benchmarks.bench_records import ndjson_bodies

    out = []
    for body in ndjson_bodies("0a1b2c3d", 300, 100):
        for line in body.split(b"\n"):
            out.append(InvocationRecord.from_dict(orjson.loads(line), source="ingest", now=NOW))
    return out


@pytest.fixture(scope="module")
def corpus() -> list[InvocationRecord]:
    records = _fixture_records() + _gateway_records() + _handmade_records() + _ingest_records()
    assert len(records) > 400
    return records


def _batches(records: list[InvocationRecord]) -> list[list[InvocationRecord]]:
    """The corpus in its order and shuffled, whole and cut into batches of several sizes."""
    shuffled = list(records)
    random.Random(18).shuffle(shuffled)
    out = [[], records[:1], records, shuffled]
    for size in (2, 7, 64):
        out += [shuffled[i : i + size] for i in range(0, len(shuffled), size)]
    return out


# -- the tests -------------------------------------------------------------------------------


def _same_values(got: dict[str, list[Any]], want: dict[str, list[Any]]) -> None:
    assert list(got) == list(want)
    for name, values in want.items():
        assert got[name] == values, name
        assert [type(v) for v in got[name]] == [type(v) for v in values], name
        if name.startswith("cost_"):  # as written: "1.50" stays 1.50
            assert [str(v) for v in got[name]] == [str(v) for v in values], name


@pytest.mark.parametrize("schema", SCHEMAS, ids=lambda s: ",".join(s.promoted_keys) or "none")
def test_tables_and_columns_equal_the_general_way(
    corpus: list[InvocationRecord], schema: RecordSchema
) -> None:
    before = copy.deepcopy([r.data for r in corpus])
    for batch in _batches(corpus):
        want = reference_tables(batch, schema, NOW)
        got = batch_tables(batch, schema, NOW)
        for table, expected in zip(got, want, strict=True):
            assert table.schema == expected.schema
            assert table.num_rows == expected.num_rows
            assert table.equals(expected), _first_difference(table, expected)
        _same_values(to_columns(batch, schema, NOW)[0], reference_columns(batch, schema, NOW)[0])
        _same_values(to_columns(batch, schema, NOW)[1], reference_columns(batch, schema, NOW)[1])
    assert [r.data for r in corpus] == before  # nothing of the records changed


def test_for_arrow_text_casts_to_the_same_values(corpus: list[InvocationRecord]) -> None:
    """`to_columns` ``for_arrow`` keeps money and timestamps as text: cast by Arrow they are
    the exact columns' values, and every other column is the exact one. Only batches with
    money Arrow cannot read (whitespace, underscores) are left to the exact way."""
    schema = RecordSchema()
    arrow_types = {f.name: f.type for f in arrow_schema(schema.record_columns)}
    refused = 0
    for batch in _batches(corpus):
        text, text_bodies = to_columns(batch, schema, NOW, for_arrow=True)
        exact, exact_bodies = to_columns(batch, schema, NOW)
        assert text_bodies == exact_bodies
        for name, values in exact.items():
            kind = arrow_types[name]
            if name != "timestamp" and kind != pa.decimal128(38, 9):
                assert text[name] == values, name
                continue
            assert {type(v) for v in text[name]} <= {str, int, float, type(None)}, name
            try:
                cast = pa.array(text[name], pa.string()).cast(kind)
            except (pa.ArrowInvalid, pa.ArrowTypeError):
                assert any(
                    v in (" 1.5", "1_000") or type(v) is not str
                    for v in text[name]
                    if v is not None
                )
                refused += 1
                continue
            assert cast.equals(pa.array(values, kind)), name
    assert 0 < refused < len(_batches(corpus)) // 4


def test_the_corpus_takes_every_way(corpus: list[InvocationRecord]) -> None:
    """The records cover what the conversion treats apart: bodies, extra, metadata split,
    money and timestamps Arrow casts and ones only the exact way takes, a dict subclass."""
    schema = RecordSchema()
    cols, bodies = reference_columns(corpus, schema, NOW)
    assert sum(v is not None for v in cols["extra"]) > 20
    assert sum(v is not None for v in bodies["input_body_json"]) > 100
    assert any(m == {} for m in cols["request_metadata"])
    assert any(isinstance(r.data.get("input"), OrderedDict) for r in corpus)
    # each batch of one converts; some only the exact way (Arrow refuses " 1.5")
    refused = [r for r in corpus if r.data.get("cost", {}).get("inputUsd") == " 1.5"]
    assert refused
    with pytest.raises(pa.ArrowInvalid):
        pa.array([" 1.5"], pa.string()).cast(pa.decimal128(38, 9))
    assert batch_tables(refused, schema, NOW)[0].equals(reference_tables(refused, schema, NOW)[0])


@pytest.mark.parametrize(
    "ingested_at",
    [
        NOW,
        datetime(2026, 1, 1, 1, 2, 3, 4),
        datetime(2026, 6, 1, tzinfo=timezone(timedelta(hours=5))),
    ],
    ids=["utc", "naive", "offset"],
)
def test_ingested_at_as_given(corpus: list[InvocationRecord], ingested_at: datetime) -> None:
    schema = RecordSchema()
    got = batch_tables(corpus[:50], schema, ingested_at)[0]
    assert got.equals(reference_tables(corpus[:50], schema, ingested_at)[0])


def _good(i: int) -> dict[str, Any]:
    return {
        "recordId": f"g-{i}",
        "timestamp": "2026-11-20T08:00:00.000Z",
        "input": {"inputBodyJson": {"a": i}},
    }


BAD: dict[str, list[dict[str, Any]]] = {
    "timestamp text": [_good(0), {**_good(1), "timestamp": "yesterday"}],
    "timestamp month 13": [{**_good(1), "timestamp": "2026-13-20T08:00:00.000Z"}],
    "timestamp February 30": [{**_good(1), "timestamp": "2026-02-30T08:00:00.000Z"}],
    "timestamp lower case": [{**_good(1), "timestamp": "2026-11-20t08:00:00.123z"}],
    "timestamp year 9999": [{**_good(1), "timestamp": "9999-01-01T00:00:00.000Z"}],
    "timestamp number": [{**_good(1), "timestamp": 1700000000}],
    "money text": [{**_good(1), "cost": {"totalUsd": "a lot"}}],
    "money too precise": [{**_good(1), "cost": {"totalUsd": "0.0000000001"}}],
    "money then timestamp": [
        _good(0),
        {**_good(1), "cost": {"totalUsd": "NaN?"}},
        {**_good(2), "timestamp": "never"},
    ],
    "timestamp then money": [
        {**_good(1), "timestamp": "never"},
        {**_good(2), "cost": {"totalUsd": "NaN?"}},
    ],
    "body not JSON": [{**_good(1), "output": {"outputBodyJson": {1: "int key"}}}],
    "body and no record id": [
        {"timestamp": "2026-11-20T08:00:00.000Z", "input": {"inputBodyJson": 1}}
    ],
    "metadata not an object": [{**_good(1), "requestMetadata": "team=a"}],
    "metadata list": [{**_good(1), "requestMetadata": [["team", "a"]]}],
    "string column number": [_good(0), {**_good(1), "modelId": 5}],
    "integer column text": [{**_good(1), "input": {"inputTokenCount": "5"}}],
    "map of numbers": [{**_good(1), "requestHeaders": {"a": 1}}],
    "map as a list": [{**_good(1), "requestHeaders": [["a", "b"]]}],
    "extra not JSON": [{**_good(1), "unknown": {2: "x"}}],
}


@pytest.mark.parametrize("name", list(BAD))
def test_refused_as_the_general_way_refuses(name: str) -> None:
    schema = RecordSchema()
    records = [InvocationRecord(copy.deepcopy(d), ()) for d in BAD[name]]
    with pytest.raises(Exception) as want:
        reference_tables(records, schema, NOW)
    with pytest.raises(Exception) as got:
        batch_tables(records, schema, NOW)
    assert (type(got.value), str(got.value)) == (type(want.value), str(want.value))
    try:
        reference_columns(records, schema, NOW)
    except Exception as exc:
        with pytest.raises(type(exc)) as columns:
            to_columns(records, schema, NOW)
        assert str(columns.value) == str(exc)
    else:  # refused only by Arrow: the columns are the same
        _same_values(
            to_columns(records, schema, NOW)[0], reference_columns(records, schema, NOW)[0]
        )


def _first_difference(got: pa.Table, want: pa.Table) -> str:
    for name in want.column_names:
        a, b = got.column(name).to_pylist(), want.column(name).to_pylist()
        if a != b:
            row = next(i for i, (x, y) in enumerate(zip(a, b, strict=True)) if x != y)
            return f"column {name}, row {row}: {a[row]!r} != {b[row]!r}"
    return "schemas or chunking differ"
