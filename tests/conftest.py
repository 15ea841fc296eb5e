from __future__ import annotations

import json
from pathlib import Path

import pytest

LOCAL_FIXTURES = Path(__file__).resolve().parent / "fixtures"


def bedrock_fixture_lines() -> list[str]:
    """The Bedrock invocation-log fixture (a copy ships in tests/fixtures for clean clones)."""
    path = LOCAL_FIXTURES / "bedrock-invocation-logs.jsonl"
    return [line for line in path.read_text().splitlines() if line.strip()]


@pytest.fixture
def bedrock_docs() -> list[dict]:
    return [json.loads(line) for line in bedrock_fixture_lines()]
