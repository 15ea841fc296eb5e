"""``llmtrail demo``: fill a server with realistic traffic (see `llmtrail.demo`).

The server is found as every command finds it (``--url``, ``LLMTRAIL_URL``, the data
directory's ``server.json``). With none running, the demo needs the gateway all the same, so
it starts ``llmtrail serve`` on the data directory on a free loopback port for the time of
the demo and stops it after (SIGTERM: the server drains and flushes as it always does).
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from llmtrail.cli.arguments import add_common_options
from llmtrail.cli.output import Table, print_object
from llmtrail.cli.usage import UsageError, add_command
from llmtrail.errors import LlmtrailError

START_TIMEOUT_S = 60.0


def register(sub: Any) -> None:
    demo = add_command(
        sub,
        "demo",
        "fill a server with realistic demo traffic",
        """Send realistic traffic to a running server so that every page has something to
        show: five applications with tenants, teams and cost centers, all three wire formats
        (OpenAI, Anthropic, Bedrock) with streams, an A/B test, an agent whose runs call tools
        inside traces, chat sessions, errors, throttles and a slow tail. The last hour goes
        live through the gateway (--calls calls); the days before it (--days) are sent as
        records through the ingest API, shaped like the gateway's, with a daily rhythm. It
        also creates two inference profiles with cost tags, prices for the demo models, saved
        queries and budgets (one near its limit).

        With no server running, it starts one on the data directory for the time of the
        demo. The same --seed sends the same plan: applications, routes, models, prompts,
        faults and times relative to now (ids are always new).""",
        [
            "llmtrail demo",
            "llmtrail demo --calls 1000 --days 14 --seed 7",
            "llmtrail demo --url http://127.0.0.1:7788 --format json",
        ],
    )
    add_common_options(demo)
    demo.add_argument(
        "--calls", type=int, default=300, help="live calls through the gateway (default 300)"
    )
    demo.add_argument(
        "--days",
        type=float,
        default=7.0,
        help="days of history before the last hour (default 7; 0 for none); "
        "each day holds twice --calls records",
    )
    demo.add_argument("--seed", type=int, default=1, help="the plan's random seed (default 1)")
    demo.set_defaults(local_handler=_demo)


def _demo(settings: Any, args: argparse.Namespace) -> int:
    from llmtrail.cli.client import server_url
    from llmtrail.demo import run_demo

    if args.calls < 0 or args.calls > 1_000_000:
        raise UsageError("--calls must be from 0 to 1000000")
    if not 0 <= args.days <= 366:
        raise UsageError("--days must be from 0 to 366")
    url = server_url(settings, args.url)
    with _server(settings, args, url) as found:
        tally = run_demo(found, args.calls, args.days, args.seed)
    print_object(tally.to_dict(), args.format, *_tables(tally))
    if args.format == "table":
        for warning in tally.warnings:
            print(f"warning: {warning}", file=sys.stderr)
        if url:
            print(f"\nSent in {tally.seconds:.1f} s. Open {tally.url}/ to look around.")
        else:
            print(
                f"\nSent in {tally.seconds:.1f} s. The demo's server has stopped: run "
                f"llmtrail serve --data-dir {settings.data_dir} and open "
                f"http://{settings.host}:{settings.port}/ to look around."
            )
    return 0


@contextmanager
def _server(settings: Any, args: argparse.Namespace, url: str | None) -> Iterator[str]:
    """``url``, or a server started on the data directory for the demo's time."""
    if url:
        yield url
        return
    command = [sys.executable, "-m", "llmtrail", "serve", "--data-dir", str(settings.data_dir)]
    command += ["--host", "127.0.0.1", "--port", "0"]
    if args.config is not None:
        command += ["--config", str(args.config)]
    print(f"No server owns {settings.data_dir}: starting one for the demo.", file=sys.stderr)
    with tempfile.TemporaryFile() as log:  # a file, not a pipe: a full pipe would block it
        proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=log)
        try:
            yield _started(proc, settings.data_dir / "server.json", log)
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(START_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _started(proc: subprocess.Popen[bytes], marker: Any, log: Any) -> str:
    """The URL of the server ``proc`` once it is ready (its ``server.json`` names it)."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            log.seek(0)
            error = log.read().decode(errors="replace")
            raise LlmtrailError(f"the demo's server did not start:\n{error[-2000:]}")
        try:
            info = json.loads(marker.read_text())
            if int(info["pid"]) == proc.pid:
                with urllib.request.urlopen(info["url"] + "/readyz", timeout=2) as answer:
                    if answer.status == 200:
                        return str(info["url"])
        except (OSError, ValueError, KeyError):
            pass
        time.sleep(0.1)
    raise LlmtrailError(f"the demo's server was not ready within {START_TIMEOUT_S:g} s")


def _tables(tally: Any) -> list[Table]:
    rows = [
        [route, count, tally.live_errors.get(route, 0)]
        for route, count in sorted(tally.live.items())
    ]
    live = Table(
        ["live route", "calls", "errors"],
        rows,
        [["total", sum(tally.live.values()), sum(tally.live_errors.values())]],
    )
    plan = tally.planned
    other = Table(
        ["sent", "count"],
        [
            ["live throttles (429)", tally.throttles],
            ["historical records stored", tally.history_stored],
            ["historical errors", plan.get("history errors", 0)],
            ["agent runs", plan.get("agent runs", 0)],
            ["sessions", plan.get("sessions", 0)],
            ["agent and tool spans", tally.spans_sent],
            ["budgets", len(tally.budgets)],
        ],
    )
    return [live, other]
