"""`import llmtrail` works with only the base dependencies installed and imports nothing heavy."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
HEAVY = ("duckdb", "pyarrow", "starlette", "uvicorn", "aiohttp", "rich", "bpe_openai")


def test_import_in_an_environment_with_only_base_dependencies(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    subprocess.run([str(python), "-m", "pip", "install", "-q", "orjson"], check=True, timeout=300)
    code = (
        "import importlib.util, sys\n"
        f"assert all(importlib.util.find_spec(m) is None for m in {HEAVY!r}), 'heavy present'\n"
        "import llmtrail\n"
        "r = llmtrail.InvocationRecord.from_dict("
        "{'requestId': 'r', 'timestamp': '2026-01-01T00:00:00Z'})\n"
        "assert r.data['status'] == 'OK'\n"
        f"loaded = [m for m in sys.modules if m.split('.')[0] in {HEAVY!r}]\n"
        "assert not loaded, loaded\n"
        "print('ok')\n"
    )
    done = subprocess.run(
        [str(python), "-c", code],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(SRC)},
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"
