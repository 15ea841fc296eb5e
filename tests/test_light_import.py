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
    assert run_source(python, code) == "ok"


def test_the_recorder_validates_ingest_bodies_without_the_servers_http_modules() -> None:
    """The recorder process validates every ingest body; the records API's module (with
    Starlette, the runtime and the query layer) loaded there on the first body cost ~0.3 s
    of its time."""
    code = (
        "import sys\n"
        "import llmtrail.server.recorder, llmtrail.server.record_path\n"
        "from llmtrail.capture.ingest_body import validate_batch\n"
        'line = b\'{"requestId": "r1", "timestamp": "2026-01-01T00:00:00Z"}\'\n'
        "results, valid, where = validate_batch(line + b'\\n' + b'{}', False, 10**6, 10, 64)\n"
        "assert [r['status'] for r in results] == ['stored', 'rejected'], results\n"
        "assert where == [0] and valid[0].data['requestId'] == 'r1'\n"
        "web = ('starlette', 'uvicorn', 'llmtrail.server.api', 'llmtrail.server.runtime')\n"
        "print(sorted(m for m in web if m in sys.modules))\n"
    )
    assert run_source(Path(sys.executable), code) == "[]"


def run_source(python: Path, code: str) -> str:
    """What ``code`` prints, run by ``python`` in a fresh process on this checkout's
    sources (which fails the test if it fails)."""
    done = subprocess.run(
        [str(python), "-c", code],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(SRC)},
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()
