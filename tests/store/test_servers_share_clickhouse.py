"""Two server runtimes on one ClickHouse (the session's chdb engine, which any number of
clients in one process share, or ``CLICKHOUSE_URL``): what one writes the other reads —
records, control-plane state, inference profiles, a revoked key — while each commits its
own spool position. The groundwork for N stateless servers behind a load balancer."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from llmtrail.config import load_settings
from llmtrail.record import InvocationRecord
from llmtrail.security.keys import KeySpec
from llmtrail.server.runtime import Runtime
from tests.store.conftest import store_url

SECRET_VARIABLE = "LLMTRAIL_TEST_SHARED_SECRET"


@pytest.fixture
def servers(
    clickhouse_url: str,
    clickhouse_database: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[tuple[Runtime, Runtime]]:
    url, env = store_url(clickhouse_url, clickhouse_database)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv(SECRET_VARIABLE, secrets.token_urlsafe(48))  # one secret, as documented
    settings = {"LLMTRAIL_STORE__URL": url, "LLMTRAIL_SERVER__SECRET_ENV": SECRET_VARIABLE}
    runtimes: list[Runtime] = []
    try:
        for name in ("a", "b"):
            runtime = Runtime(
                load_settings(
                    None, env={**env, **settings}, overrides={"data_dir": tmp_path / name}
                )
            )
            runtimes.append(runtime)
            runtime.start()
        yield runtimes[0], runtimes[1]
    finally:
        for runtime in runtimes:
            runtime.close()


def test_what_one_server_writes_the_other_reads(servers: tuple[Runtime, Runtime]) -> None:
    a, b = servers
    assert a.stores.engine in ("chdb", "clickhouse") and a.db.available
    record = InvocationRecord.from_dict(
        {
            "requestId": f"shared-{secrets.token_hex(4)}",
            "timestamp": datetime.now(UTC).isoformat(),
            "modelId": "sim/a",
            "input": {"inputTokenCount": 7},
        }
    )
    fresh, stored = a.pipeline.ingest([record])
    assert fresh == [True]
    stored.result(timeout=30)
    seen = _eventually(lambda: b.records.get(record.request_id))
    assert seen is not None and seen.data["input"]["inputTokenCount"] == 7
    # each server its own spool position (written just after the batch it covers)
    assert _eventually(a.records.committed_position) is not None
    assert b.records.committed_position() is None

    profile = a.profiles.create("shared-team", "sim/a", tags={"dept": "claims"})
    assert b.profiles.get(profile.arn).name == "shared-team"
    a.state.put("notes", "k", {"v": 1})
    assert b.state.get("notes", "k") == {"v": 1}


def test_a_key_revoked_on_one_server_stops_working_on_the_other(
    servers: tuple[Runtime, Runtime],
) -> None:
    a, b = servers
    issued = a.keys.create(KeySpec(role="reader", name="shared"))
    assert _eventually(lambda: b.keys.authenticate(issued.key, "test")) is not None
    a.keys.revoke(issued.id)
    assert a.keys.authenticate(issued.key, "test") is None
    gone = _eventually(lambda: b.keys.authenticate(issued.key, "test") is None or None)
    assert gone is True  # within [server] key_refresh_s


def _eventually(read: object, timeout: float = 20.0) -> object:
    """``read()`` once it is not None (another server's view refreshes on its own)."""
    assert callable(read)
    deadline = time.monotonic() + timeout
    while True:
        value = read()
        if value is not None or time.monotonic() > deadline:
            return value
        time.sleep(0.1)
