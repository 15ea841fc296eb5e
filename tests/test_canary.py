"""Canary secrets sent through every path are found nowhere on disk or in the server's log."""

from __future__ import annotations

import contextlib
from pathlib import Path

import httpx
import openai

from llmtrail.testing.openai_upstream import OpenAIUpstream
from tests.harness import ServerProcess

CALLER = "sk-canary-caller-5f1e2d3c4b5a"
UPSTREAM = "sk-canary-upstream-a1b2c3d4e5f6"
OTHER = "canary-x-api-key-77aa88bb"


def test_keys_never_reach_records_spool_or_log(tmp_path: Path) -> None:
    with OpenAIUpstream() as up:
        config = f"""
[providers.keyed]
type = "openai"
base_url = "{up.base_url}"
api_key_env = "CANARY_UPSTREAM_KEY"
[providers.open]
type = "openai"
base_url = "{up.base_url}"
[[routes]]
match = "keyed/*"
provider = "keyed"
[[routes]]
match = "open/*"
provider = "open"
"""
        server = ServerProcess(
            tmp_path / "data",
            config=config,
            env={"CANARY_UPSTREAM_KEY": UPSTREAM, "LLMTRAIL_LOG_LEVEL": "debug"},
        )
        with server:
            with openai.OpenAI(base_url=server.url + "/v1", api_key=CALLER, max_retries=0) as c:
                for model in ("sim/a", "keyed/gpt-4o", "open/gpt-4o"):
                    c.chat.completions.create(
                        model=model, messages=[{"role": "user", "content": "hi"}]
                    )
                    for _ in c.chat.completions.create(
                        model=model, stream=True, messages=[{"role": "user", "content": "s"}]
                    ):
                        pass
                for model in ("sim/error-500", "open/fail-429", "no-route", "keyed/fail-500"):
                    with contextlib.suppress(openai.APIStatusError):
                        c.chat.completions.create(
                            model=model, messages=[{"role": "user", "content": "e"}]
                        )
                c.embeddings.create(model="open/emb", input="x")
            for header in (
                {"x-api-key": OTHER},
                {"api-key": OTHER},
                {
                    "authorization": f"Bearer {OTHER}",
                    "cookie": f"s={OTHER}",
                    "x-amz-security-token": OTHER,
                },
            ):
                httpx.post(
                    server.url + "/v1/chat/completions",
                    headers=header,
                    json={"model": "sim/h", "messages": [{"role": "user", "content": "h"}]},
                )
                httpx.post(
                    server.url + "/v1/chat/completions?key=" + OTHER,
                    headers=header,
                    content=b"{bad json",
                )
            metrics = server.settle()
            assert metrics["stored"] >= 12
            # the upstream saw the right keys: the canaries were really sent through
            auths = {r.headers.get("authorization") for r in up.received}
            assert f"Bearer {UPSTREAM}" in auths and f"Bearer {CALLER}" in auths
            # DuckDB may compress strings on disk, so also read every record back whole
            records = httpx.get(server.url + "/api/records?limit=1000").text
            assert records.count('"requestId"') == metrics["stored"]
            for secret in (CALLER, UPSTREAM, OTHER):
                assert secret not in records
        files = [p for p in tmp_path.rglob("*") if p.is_file() and p.suffix != ".toml"]
        assert any(p.name.endswith(".duckdb") for p in files)
        assert any(p.name.endswith(".log") for p in files)
        for path in files:
            data = path.read_bytes()
            for secret in (CALLER, UPSTREAM, OTHER):
                assert secret.encode() not in data, f"{secret} found in {path}"
