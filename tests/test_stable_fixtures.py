"""Golden and fixture files hold no installed package's version: a file that embeds
``genai-prices:0.2.3`` (a price version) or ``openai==1.40.0`` breaks the suite the day the
lock is refreshed, though nothing in llmtrail changed. Such values are normalised or come from
the test's own data (see tests/test_otlp_receiver.py's price overrides)."""

from __future__ import annotations

import re
from importlib.metadata import distributions
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent


def fixture_files() -> list[Path]:
    """Every data file under tests/: goldens, fixtures, expected outputs."""
    return sorted(
        p
        for p in TESTS.rglob("*")
        if p.is_file() and p.suffix not in (".py", ".pyc") and "__pycache__" not in p.parts
    )


def installed_versions() -> dict[str, str]:
    """Each installed distribution's name (as written, and normalised) → its version."""
    versions: dict[str, str] = {}
    for dist in distributions():
        name = dist.metadata["Name"]
        if not name:
            continue
        for spelling in {name, re.sub(r"[-_.]+", "-", name), re.sub(r"[-_.]+", "_", name)}:
            versions[spelling.lower()] = dist.version
    return versions


def version_pattern(versions: dict[str, str]) -> re.Pattern[str]:
    """``name:version``, ``name==version`` or ``name/version`` for any installed package."""
    alternatives = sorted(
        f"{re.escape(name)}(?::|==|/){re.escape(version)}" for name, version in versions.items()
    )
    return re.compile(rf"(?<![\w.-])(?:{'|'.join(alternatives)})(?!\w|\.\d)", re.IGNORECASE)


@pytest.fixture(scope="module")
def pattern() -> re.Pattern[str]:
    return version_pattern(installed_versions())


def test_the_pattern_finds_an_embedded_version(pattern: re.Pattern[str]) -> None:
    name, version = next(iter(installed_versions().items()))
    assert pattern.search(f'"priceVersion": "{name}:{version}:openai/gpt-4o-mini@initial"')
    assert pattern.search(f"built with {name}=={version}.")
    assert not pattern.search('"schemaVersion": "1.0"')
    assert not pattern.search(f"{name}:{version}1")  # another version is not this one


def test_there_are_fixture_files_to_check() -> None:
    names = {p.name for p in fixture_files()}
    assert {"genai_before_1_37.json", "bedrock-invocation-logs.jsonl"} <= names


@pytest.mark.parametrize("path", fixture_files(), ids=lambda p: str(p.relative_to(TESTS)))
def test_no_installed_package_version_in(path: Path, pattern: re.Pattern[str]) -> None:
    text = path.read_text(encoding="utf-8", errors="replace")
    found = sorted({m.group(0) for m in pattern.finditer(text)})
    assert not found, f"{path.relative_to(TESTS)} embeds installed package versions: {found}"
