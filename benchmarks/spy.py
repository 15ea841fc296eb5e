"""Optional py-spy profiles of the server processes (``run.py --py-spy``).

``py-spy record --gil --threads --format raw`` samples only the thread that holds the GIL, so
the shares below are shares of the one core a Python process can use: for a GIL-bound server
they say where its throughput goes. Profiling slows the server down; read the shares, not the
benchmark numbers of a profiled run.
"""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

from rich import box
from rich.markup import escape
from rich.table import Table

RATE_HZ = 250


def py_spy() -> str | None:
    """The py-spy executable (next to this interpreter, or on PATH), if installed."""
    local = Path(sys.executable).parent / "py-spy"
    return str(local) if local.exists() else shutil.which("py-spy")


class Recorder:
    def __init__(self, pid: int, out: Path) -> None:
        exe = py_spy()
        if exe is None:
            raise RuntimeError("py-spy is not installed (.venv/bin/pip install py-spy)")
        self.out = out
        argv = [exe, "record", "--pid", str(pid), "--gil", "--threads", "--nonblocking"]
        argv += ["--rate", str(RATE_HZ), "--format", "raw", "-o", str(out)]
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def stop(self) -> None:
        """Stop sampling (SIGINT makes py-spy write its output) and wait for the file."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)


_LINE = re.compile(r" \(([^()]*?):\d+\)$")


def _frame(raw: str) -> str:
    """``func (path/file.py:123)`` without the line number."""
    return _LINE.sub(r" (\1)", raw)


_BORING = ("llmtrail/__main__.py", "llmtrail/cli/", "llmtrail/server/serve.py", "server/app.py")


def summary(path: Path, title: str, top_self: int = 12, top_inclusive: int = 16) -> Table:
    """Per-thread GIL share, the llmtrail functions with the most inclusive samples, and the
    frames with the most self samples."""
    threads: Counter[str] = Counter()
    own: Counter[tuple[str, str]] = Counter()
    inclusive: Counter[tuple[str, str]] = Counter()
    total = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = stack.split(";")
        thread = re.sub(r"^thread \(\d+\): ", "", frames[0])
        total += n
        threads[thread] += n
        own[(_frame(frames[-1]), thread)] += n
        for frame in {_frame(f) for f in frames[1:] if "llmtrail/" in f}:
            if not any(b in frame for b in _BORING):
                inclusive[(frame, thread)] += n
    t = Table(title=title, box=box.MARKDOWN, title_justify="left")
    t.add_column("kind")
    t.add_column("frame")
    t.add_column("thread")
    t.add_column("GIL samples", justify="right")
    t.add_column("share", justify="right")
    seconds = total / RATE_HZ
    t.caption = f"{total:,} samples at {RATE_HZ} Hz ≈ {seconds:.1f} s holding the GIL; raw: {path}"
    t.caption_justify = "left"
    rows = [("thread", "", k, v) for k, v in threads.most_common()]
    rows += [("llmtrail, inclusive", *k, v) for k, v in inclusive.most_common(top_inclusive)]
    rows += [("self", *k, v) for k, v in own.most_common(top_self)]
    for kind, frame, thread, n in rows:
        t.add_row(kind, escape(frame), escape(thread), f"{n:,}", f"{n / max(1, total):.1%}")
    return t
