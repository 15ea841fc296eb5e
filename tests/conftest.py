from __future__ import annotations

import gc
import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings

from tests.harness import ENGINES

# Property tests explore the same examples on every run (a suite that passes today passes
# tomorrow) and never fail on time; HYPOTHESIS_PROFILE=explore searches afresh each run.
settings.register_profile("repeatable", derandomize=True, deadline=None, print_blob=True)
settings.register_profile("explore", deadline=None, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "repeatable"))

LOCAL_FIXTURES = Path(__file__).resolve().parent / "fixtures"


@pytest.fixture(scope="module", autouse=True)
def _collect_after_module() -> Iterator[None]:
    """Collect the garbage once a test module is done, its module fixtures closed too (autouse:
    set up first, torn down last). An SDK client or socket a module never closed, kept alive by
    a reference cycle, is then reported in that module's last teardown, every run, instead of in
    whichever test on the worker the collector happened to run during. What survives is frozen
    (`gc.freeze`), so each collection looks only at what the module since made: ~20 ms, where
    a full one took ~0.25 s."""
    yield
    gc.collect()
    gc.freeze()


def bedrock_fixture_lines() -> list[str]:
    """The Bedrock invocation-log fixture (a copy ships in tests/fixtures for clean clones)."""
    path = LOCAL_FIXTURES / "bedrock-invocation-logs.jsonl"
    return [line for line in path.read_text().splitlines() if line.strip()]


@pytest.fixture
def bedrock_docs() -> list[dict]:
    return [json.loads(line) for line in bedrock_fixture_lines()]


@pytest.fixture(scope="module", params=ENGINES)
def engine(request: pytest.FixtureRequest) -> str:
    """The store engine of an end-to-end suite's server (``ServerProcess(..., engine=engine)``):
    every test that takes it runs on DuckDB and on chdb, one module-scoped server per engine,
    the engine in its id. ``tests.harness.engines("duckdb", reason=...)`` narrows one test.
    """
    return str(request.param)


@pytest.fixture(scope="session")
def clickhouse_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Where ClickHouse tests connect: ``CLICKHOUSE_URL`` when set, else the embedded chdb
    engine on one session-wide data path (chdb hosts one path per process, so every test in
    the session shares it and tells its data apart by database: `clickhouse_database`). A
    client stays open for the session, so the engine starts once."""
    from llmtrail.store.clickhouse import connect

    url = os.environ.get("CLICKHOUSE_URL")
    if url:
        yield url
        return
    url = f"chdb://{tmp_path_factory.mktemp('chdb')}"
    keeper = connect(url)
    yield url
    keeper.close()


@pytest.fixture
def clickhouse_database(clickhouse_url: str) -> Iterator[str]:
    """A database name of this test's own on the session's ClickHouse, dropped afterwards."""
    from llmtrail.store.clickhouse import connect

    name = f"test_{uuid.uuid4().hex[:16]}"
    yield name
    client = connect(clickhouse_url)
    try:
        client.command(f"DROP DATABASE IF EXISTS `{name}`")
    finally:
        client.close()


# -- no process outlives the test session ------------------------------------------------------

SESSION_MARK = "LLMTRAIL_TEST_SESSION"
# How long the processes still running at the end get to go before they count as leaked.
LEAK_GRACE_S = float(os.environ.get("LLMTRAIL_TEST_LEAK_GRACE_S", "10"))
_mark_key = pytest.StashKey[str]()


def _is_xdist_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    """Every process the tests start inherits this mark, so the session can find them all at
    the end, whoever their parent is by then (a killed server's workers are re-parented).

    It is set once, in the process that checks at the end: under pytest-xdist the controller,
    before it starts its workers, which inherit it unchanged and pass it on to all they start.
    A session run by a test extends the mark of the session around it, so that one's check
    finds what the inner session left too."""
    if _is_xdist_worker(config):
        return
    own = f"{os.getpid()}-{uuid.uuid4().hex}"
    outer = os.environ.get(SESSION_MARK)
    mark = f"{outer}/{own}" if outer else own
    config.stash[_mark_key] = mark
    os.environ[SESSION_MARK] = mark


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Test files holding a ``slow`` test run first, the slowest mark's files in their
    collection order: a worker given one last (the longest take a minute and more) would
    finish alone while the other idles. The order is the same in every xdist worker."""
    slow_files = {item.path for item in items if item.get_closest_marker("slow") is not None}
    items.sort(key=lambda item: item.path not in slow_files)  # stable: the rest keep theirs


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fail the session if a marked process is still alive. Last of the finish hooks: by then
    pytest-xdist has stopped its workers, so what is left was started by a test."""
    mark = session.config.stash.get(_mark_key, None)
    if mark is None:
        return
    from tests.processes import marked_processes, own_resource_tracker, stop_processes

    survivors = marked_processes(mark, wait_s=LEAK_GRACE_S, ignore=own_resource_tracker)
    if not survivors:
        return
    stop_processes(survivors)
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    lines = [f"  pid {pid}: {cmdline}" for pid, cmdline in sorted(survivors.items())]
    message = "\nprocesses started by the tests outlived the session:\n" + "\n".join(lines)
    if reporter is not None:
        reporter.write_line(message, red=True, bold=True)
    session.exitstatus = pytest.ExitCode.TESTS_FAILED
