"""``llmtrail.sdk`` works with only the base dependency (orjson) and imports nothing of the
server, the stores or OpenTelemetry; its public API is pinned."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import orjson

from llmtrail import sdk
from tests.sdk.collector import Collector

SRC = Path(__file__).resolve().parents[2] / "src"
HEAVY = (
    "duckdb",
    "pyarrow",
    "starlette",
    "uvicorn",
    "aiohttp",
    "opentelemetry",
    "google",
    "sqlglot",
    "rich",
    "bpe_openai",
    "clickhouse_connect",
    "chdb",
)


def test_the_sdk_works_with_only_orjson_installed(tmp_path: Path, collector: Collector) -> None:
    """``python -S`` hides site-packages; only orjson is linked onto the path."""
    only = tmp_path / "only-orjson"
    only.mkdir()
    (only / "orjson").symlink_to(Path(orjson.__file__).parent, target_is_directory=True)
    absent = (*HEAVY, "httpx", "httpx2", "botocore", "openai", "anthropic")
    script = f"""
        import importlib.util, sys
        assert sys.flags.no_site
        assert all(importlib.util.find_spec(m) is None for m in {absent!r}), "not isolated"
        from llmtrail import sdk
        sdk.configure(url={collector.url!r}, app="light")

        @sdk.tool
        def ping():
            return "pong"

        with sdk.span("light", kind="workflow"):
            ping()
        assert sdk.flush(30)
        assert sdk.stats()["exported"] == 2, sdk.stats()
        loaded = sorted(m for m in sys.modules if m.split(".")[0] in {absent!r})
        assert not loaded, loaded
        print("ok")
    """
    done = subprocess.run(
        [sys.executable, "-S", "-c", textwrap.dedent(script)],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": f"{SRC}:{only}"},
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"
    assert collector.span_named("light")["resource"]["service.name"] == "light"


def test_configuring_the_sdk_imports_nothing_heavy() -> None:
    """With everything installed. ``configure`` imports httpx and botocore to patch them
    (only when installed); httpx itself imports ``rich`` when that is installed, so ``rich``
    is not checked here."""
    heavy = tuple(m for m in HEAVY if m != "rich")
    script = f"""
        import sys
        from llmtrail import sdk
        loaded = sorted(m for m in sys.modules if m.split(".")[0] in {HEAVY!r})
        assert not loaded, ("on import", loaded)
        sdk.configure(url="http://127.0.0.1:9", enabled=True)
        with sdk.span("x"):
            pass
        sdk.shutdown(timeout=0.1)
        loaded = sorted(m for m in sys.modules if m.split(".")[0] in {heavy!r})
        assert not loaded, loaded
        print("ok")
    """
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(SRC)},
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


def test_public_api() -> None:
    """The names others build on; ruff (RUF022) keeps the list in isort order."""
    assert all(hasattr(sdk, name) for name in sdk.__all__)
    assert sdk.__all__ == [
        "SPAN_KINDS",
        "FinishedSpan",
        "IdGenerator",
        "RandomIds",
        "Span",
        "SpanDecorator",
        "agent",
        "annotate",
        "configure",
        "current_span",
        "current_traceparent",
        "embedding",
        "flush",
        "format_traceparent",
        "instrument_boto3",
        "llm",
        "outgoing_headers",
        "parse_traceparent",
        "retrieval",
        "shutdown",
        "span",
        "stats",
        "task",
        "tool",
        "workflow",
    ]
