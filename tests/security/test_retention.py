"""Retention on a real DuckDB file with real offloaded objects: the policy's validation, a
dry run that counts what the real run then deletes, records and their objects gone past
``recordsDays``, bodies gone but counts kept past ``bodiesDays``, spans past ``spansDays``,
rollups past the records' retention, an archive that holds every deleted record with its
bodies inline, another workspace untouched; the schedule runs on one server only; the API
answers bad input with the field named and runs on the caller's workspace."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pyarrow.parquet as pq
import pytest
from starlette.applications import Starlette

from llmtrail.errors import ValidationError
from llmtrail.pipeline.offload import offload_bodies
from llmtrail.record import InvocationRecord
from llmtrail.security.erasure import Eraser
from llmtrail.security.principal import ROLES, SCOPE_KEY, Principal
from llmtrail.security.retention import RetentionPolicies, RetentionPolicy
from llmtrail.security.retention_runner import RetentionRunner
from llmtrail.security.retention_schedule import RetentionSchedule
from llmtrail.server.retention_api import RetentionAPI
from llmtrail.span import Span
from llmtrail.store.duckdb import Database, DuckDBRecordStore, DuckDBSpanStore, DuckDBStateStore
from llmtrail.store.duckdb.erasure import DuckDBEraser
from llmtrail.store.duckdb.metric_store import DuckDBMetricStore
from llmtrail.store.duckdb.metrics import DuckDBRollups
from llmtrail.store.interfaces import RecordQuery
from llmtrail.store.memory import MemoryStateStore
from llmtrail.store.objects import DirectoryObjectStore
from llmtrail.store.spans import TraceQuery

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)


class Parts:
    def __init__(self, root: Path) -> None:
        self.db = Database(root / "llmtrail.duckdb")
        self.rollups = DuckDBRollups(self.db.schema)
        self.records = DuckDBRecordStore(self.db, self.rollups)
        self.spans = DuckDBSpanStore(self.db)
        self.state = DuckDBStateStore(self.db)
        self.metric_store = DuckDBMetricStore(self.db, self.rollups)
        self.objects = DirectoryObjectStore(root / "objects")
        self.eraser = DuckDBEraser(self.db, self.rollups)
        self.archive = root / "archive"

    def runner(self) -> RetentionRunner:
        return RetentionRunner(self.state, self.eraser, self.objects, self.archive, page=7)

    def rollups_before(self, workspace: str, moment: datetime) -> int:
        row = self.db.read(
            lambda c: c.execute(
                "SELECT count(*) FROM metric_rollups WHERE workspace = ? AND bucket < ?",
                [workspace, moment],
            ).fetchone()
        )
        return int(row[0]) if row else 0


@pytest.fixture
def parts(tmp_path: Path) -> Iterator[Parts]:
    p = Parts(tmp_path)
    yield p
    p.db.close()


def _records(workspace: str) -> list[InvocationRecord]:
    out = []
    for age in range(0, 100, 3):
        doc: dict[str, Any] = {
            "timestamp": (NOW - timedelta(days=age, hours=1)).isoformat().replace("+00:00", "Z"),
            "requestId": f"{workspace}-{age}",
            "modelId": "m",
            "operation": "Converse",
            "input": {
                "inputTokenCount": age,
                "inputBodyJson": {"q": "x" * (300 if age % 2 else 5)},
            },
            "output": {"outputTokenCount": 1, "outputBodyJson": {"a": age}},
            "latencyMs": 50,
        }
        out.append(InvocationRecord.from_dict(doc, workspace=workspace, now=NOW))
    return out


def _load(p: Parts) -> list[InvocationRecord]:
    records = _records("w1") + _records("w2")
    for r in records:
        offload_bodies(r, p.objects, 200)  # odd ages: the input body becomes an object
    p.records.append(records)
    p.spans.append(
        [
            Span(
                f"{age:032x}",
                f"{age:016x}",
                "step",
                NOW - timedelta(days=age),
                NOW - timedelta(days=age) + timedelta(seconds=1),
                workspace=ws,
            )
            for age in range(0, 100, 10)
            for ws in ("w1", "w2")
        ]
    )
    p.metric_store.maintain({})  # fold what the appends staged into the rollups
    return records


@pytest.mark.parametrize(
    ("doc", "field"),
    [
        ({"recordsDays": 0}, "recordsDays"),
        ({"recordsDays": 36_501}, "recordsDays"),
        ({"spansDays": "30"}, "spansDays"),
        ({"bodiesDays": True}, "bodiesDays"),
        ({"recordsDays": 10, "bodiesDays": 20}, "bodiesDays"),
        ({"archive": "yes"}, "archive"),
        ({"keepDays": 3}, "keepDays"),
        ([], "retention"),
    ],
)
def test_bad_policies_name_the_field(doc: Any, field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        RetentionPolicy.from_dict(doc)
    assert caught.value.field == field


def test_a_run_deletes_what_the_dry_run_counted(parts: Parts) -> None:
    records = _load(parts)
    policies = RetentionPolicies(parts.state)
    assert policies.get("w1") == RetentionPolicy()  # no policy: keep everything
    policies.put("w1", {"recordsDays": 60, "bodiesDays": 10, "spansDays": 30, "archive": True})
    records_cut, bodies_cut = NOW - timedelta(days=60), NOW - timedelta(days=10)
    old = [r for r in records if r.workspace == "w1" and r.timestamp < records_cut]
    middle = [r for r in records if r.workspace == "w1" and records_cut <= r.timestamp < bodies_cut]
    rollups_old = parts.rollups_before("w1", records_cut)
    assert old and middle and rollups_old

    dry = parts.runner().run(NOW, dry_run=True)
    [w1] = [w for w in dry.workspaces if w.workspace == "w1"]
    assert [w.workspace for w in dry.workspaces] == ["w1"]
    assert (w1.records, w1.bodies) == (len(old), len(old) + len(middle))
    assert w1.objects == sum(1 for r in old + middle if "inputBodyS3Path" in r.data["input"])
    assert w1.spans == sum(1 for age in range(0, 100, 10) if age > 30)  # 30: not before
    assert w1.rollups == rollups_old and not w1.archived
    assert len(parts.records.find(RecordQuery("w1", limit=1000)).records) == 34  # nothing gone

    done = parts.runner().run(NOW)
    [real] = done.workspaces
    assert (real.records, real.bodies, real.objects, real.spans, real.rollups) == (
        w1.records, w1.bodies, w1.objects, w1.spans, w1.rollups
    )  # fmt: skip
    left = {r.request_id: r for r in parts.records.find(RecordQuery("w1", limit=1000)).records}
    assert set(left) == {r.request_id for r in records if r.workspace == "w1"} - {
        r.request_id for r in old
    }
    for r in middle:  # metadata and counts kept, bodies and object paths gone
        kept = left[r.request_id].data
        assert kept["input"]["inputTokenCount"] == r.data["input"]["inputTokenCount"]
        assert "inputBodyJson" not in kept["input"] and "inputBodyS3Path" not in kept["input"]
        assert "outputBodyJson" not in kept["output"]
    objects = {str(p.relative_to(parts.objects.root)) for p in parts.objects.root.rglob("*.gz")}
    for r in old + middle:
        if "inputBodyS3Path" in r.data["input"]:
            assert r.data["input"]["inputBodyS3Path"].split("llmtrail/", 1)[1] not in objects
    assert parts.rollups_before("w1", records_cut) == 0
    assert parts.rollups_before("w2", records_cut) > 0
    traces = parts.spans.find_traces(TraceQuery(workspace="w1", limit=100)).traces
    assert all(t.start >= NOW - timedelta(days=30) for t in traces)
    assert len(parts.records.find(RecordQuery("w2", limit=1000)).records) == 34

    archived = [orjson.loads(row["record"]) for f in real.archived if "records-" in f
                for row in pq.read_table(f).to_pylist()]  # fmt: skip
    by_id = {d["requestId"]: d for d in archived}
    assert set(by_id) == {r.request_id for r in old + middle}
    for r in old + middle:  # bodies inline, those that were objects too
        assert by_id[r.request_id]["input"]["inputBodyJson"] == _input_body(r, parts)
    spans_archived = sum(pq.read_table(f).num_rows for f in real.archived if "spans-" in f)
    assert spans_archived == real.spans
    again = parts.runner().run(NOW)
    assert (again.workspaces[0].records, again.workspaces[0].bodies) == (0, 0)


def _input_body(record: InvocationRecord, parts: Parts) -> Any:
    return {"q": "x" * (300 if record.data["input"]["inputTokenCount"] % 2 else 5)}


def test_the_schedule_runs_on_the_lease_holder_only() -> None:
    state = MemoryStateStore()
    clock = [NOW]
    runner = RetentionRunner(state, _NoData())
    a = RetentionSchedule(runner, state, 60, clock=lambda: clock[0], holder="a")
    b = RetentionSchedule(runner, state, 60, clock=lambda: clock[0], holder="b")
    assert a.run_once() is not None
    assert b.run_once() is None
    clock[0] += timedelta(seconds=179)
    assert b.run_once() is None  # a's lease lasts three intervals
    clock[0] += timedelta(seconds=2)
    assert b.run_once() is not None and a.run_once() is None
    b.stop()  # gives the lease up
    assert a.run_once() is not None
    assert a.lease.holder_now(clock[0]) == "a" and state.get("leases", "alarm-evaluator") is None


class _NoData:
    def select(self, *a: Any, **k: Any) -> Any:
        raise AssertionError("no policy: nothing is selected")

    delete_records = delete_spans = delete_rollups = select

    def reclaim(self) -> None:
        raise AssertionError("nothing deleted: nothing to reclaim")


def _call(
    app: Starlette, method: str, path: str, body: Any, workspace: str, role: str
) -> tuple[int, Any]:
    principal = Principal(role=role, workspace=workspace, key_id="k1", permissions=ROLES[role])
    scope_app = app

    async def with_principal(scope: Any, receive: Any, send: Any) -> None:
        scope[SCOPE_KEY] = principal
        await scope_app(scope, receive, send)

    from llmtrail.server.inprocess import call_asgi

    data = b"" if body is None else orjson.dumps(body)
    status, answer = asyncio.run(call_asgi(with_principal, method, path, "", data))
    return status, orjson.loads(answer)


def test_the_api_works_on_the_callers_workspace(parts: Parts) -> None:
    _load(parts)
    api = RetentionAPI(parts.state, parts.runner(), Eraser(parts.eraser), clock=lambda: NOW)
    app = Starlette(routes=api.routes())
    status, answer = _call(app, "PUT", "/api/retention", {"recordsDays": 0}, "w2", "admin")
    assert status == 400 and answer["field"] == "recordsDays"
    status, _ = _call(app, "PUT", "/api/retention", {"recordsDays": 30}, "w2", "reader")
    assert status == 403
    status, answer = _call(app, "PUT", "/api/retention", {"recordsDays": 30}, "w2", "admin")
    assert status == 200 and answer["recordsDays"] == 30
    status, answer = _call(app, "GET", "/api/retention", None, "w1", "reader")
    assert status == 200 and answer["recordsDays"] is None  # w2's policy is not w1's
    status, answer = _call(app, "POST", "/api/retention/run", {"dryRun": "no"}, "w2", "admin")
    assert status == 400 and answer["field"] == "dryRun"
    status, answer = _call(app, "POST", "/api/retention/run", {"dryRun": True}, "w2", "admin")
    assert status == 200 and [w["workspace"] for w in answer["workspaces"]] == ["w2"]
    assert answer["workspaces"][0]["records"] == sum(1 for age in range(0, 100, 3) if age >= 30)
    status, answer = _call(app, "POST", "/api/erase", {"user": "a", "tenant": "b"}, "w2", "admin")
    assert status == 400 and answer["field"] == "tenant"
    status, answer = _call(
        app, "POST", "/api/erase", {"requestIds": ["w1-0", "w2-0"]}, "w2", "admin"
    )
    assert status == 200 and answer["removed"]["records"] == 1  # w1's id is out of reach
    assert parts.records.get("w1-0", "w1") is not None and parts.records.get("w2-0", "w2") is None
    status, answer = _call(app, "DELETE", "/api/retention", None, "w2", "admin")
    assert status == 200 and answer["deleted"] is True
