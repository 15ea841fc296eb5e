"""Part C: many long streams through the gateway (issue 3's streaming benchmark).

One upstream process (``stream_upstream.py``: aiohttp on uvloop, every stream on its own
drift-free clock) serves every target, and one load-generator process
(``stream_loadgen.py``) runs one phase per target, one after the other:

* ``direct to upstream (baseline)``: the load generator talks to the upstream itself;
* ``llmtrail, logging on``: ``llmtrail serve`` routing ``bench-*`` to the upstream, every
  stream becomes a record;
* ``llmtrail, --no-record``: the same gateway without logging, to tell relaying from logging.

The upstream, the gateway and the load generator are three processes, so they do not share a
GIL. Added time to first byte is the gateway's percentile minus the direct phase's (a
difference of percentiles). The direct phase's bodies are the reference the gateway phases'
bodies must equal byte for byte (the upstream's bytes depend only on the stream's index), and
after the logging-on phase the server's counters and ``GET /api/records`` must account for
every request it streamed. The wire format is a parameter (``stream_formats``).
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import procs
import spy
from machine_load import (
    LoadSampler,
    OtherLoad,
    children_cpu_s,
    own_cpu_s,
    self_cpu_s,
    wait_quiet,
)
from stream_formats import MODEL, StreamFormat, expected_text, stream_format

HERE = Path(__file__).resolve().parent
LOADGEN = HERE / "stream_loadgen.py"
UPSTREAM = HERE / "stream_upstream.py"
GOAL_STALL_MS = 200.0  # no gap between chunks longer than this
GOAL_ADDED_TTFB_P99_MS = 2.0


@dataclass(frozen=True)
class Plan:
    streams: int  # measured concurrent streams
    chunks: int  # clock frames per stream
    rate: float  # frames per second per stream
    ramp_s: float  # the streams start evenly over this many seconds
    probe_interval_s: float  # one probe (a one-chunk stream) this often while all streams run

    @property
    def warmup(self) -> int:
        """Concurrent warm-up streams: a connection per stream and probe on every hop."""
        return self.streams + 8


FULL = Plan(streams=256, chunks=300, rate=20.0, ramp_s=2.0, probe_interval_s=0.02)
QUICK = Plan(streams=32, chunks=60, rate=20.0, ramp_s=0.5, probe_interval_s=0.02)


@dataclass
class Target:
    name: str
    base: str  # the base URL the load generator talks to
    pid: int  # the process that serves it (the upstream for the direct target)
    llmtrail_base: str | None = None  # set for the logging-on gateway: its records are checked


@dataclass
class RecordCheck:
    """What the logging-on gateway stored of one phase."""

    sent: int  # requests the load generator sent it (warm-up and probes included)
    accepted: float
    stored: float
    dropped: float
    listed: int  # measured streams found through GET /api/records (distinct, status OK)
    sample: str  # "ok", or what was wrong with the first stream's record
    streams: int  # measured streams in the phase

    @property
    def complete(self) -> bool:
        """Every request became a stored record, and the checks found nothing wrong."""
        return (
            self.accepted == self.stored == self.sent
            and self.dropped == 0
            and self.listed == self.streams
            and self.sample == "ok"
        )


@dataclass
class Phase:
    """One target's run: the load generator's output and what the processes spent."""

    target: Target
    load: dict[str, Any]
    server_cpu_s: float  # the target's server process (the upstream for the direct target)
    upstream_cpu_s: float
    client_cpu_s: float
    upstream_clock: dict[str, float]  # stream_upstream.ClockStats of the phase
    other_cpu_s: float  # CPU seconds other processes on the machine used during the phase
    other_peak_cores: float  # their highest load over a half-second sample
    quiet_cores: float  # their load (cores) just before the phase, after waiting for quiet
    records: RecordCheck | None = None
    same_bytes: int | None = None  # streams whose body equals the direct phase's (gateways)


@dataclass
class StreamsResult:
    plan: Plan
    format: str
    phases: list[Phase] = field(default_factory=list)
    profile: Path | None = None


def start_upstream(workdir: Path, fmt: StreamFormat, plan: Plan) -> tuple[procs.Proc, str]:
    """``stream_upstream.py`` for ``fmt`` at the plan's rate; the process and its base URL."""
    port = procs.free_port()
    argv = [sys.executable, str(UPSTREAM), "--port", str(port), "--format", fmt.name]
    argv += ["--rate", str(plan.rate)]
    proc = procs.Proc("stream-upstream", argv, workdir / "stream-upstream.log", {})
    base = f"http://127.0.0.1:{port}"
    try:
        proc.wait_until(base + "/healthz", 30)
    except BaseException:
        proc.stop()
        raise
    return proc, base


def start_gateway(
    workdir: Path, name: str, fmt: StreamFormat, upstream: str, record: bool
) -> tuple[procs.Proc, str]:
    """``llmtrail serve`` on a fresh data directory, routing ``bench-*`` to ``upstream``."""
    port = procs.free_port()
    config = workdir / f"{name}.toml"
    route = '[[routes]]\nmatch = "bench-*"\nprovider = "up"\n'
    config.write_text(fmt.provider_toml(upstream) + route)
    argv = [sys.executable, "-m", "llmtrail", "serve", "--data-dir", str(workdir / f"data-{name}")]
    argv += ["--port", str(port), "--config", str(config)]
    if not record:
        argv.append("--no-record")
    env = {"LLMTRAIL_LOG_LEVEL": "info", **fmt.gateway_env()}
    proc = procs.Proc(name, argv, workdir / f"{name}.log", env)
    base = f"http://127.0.0.1:{port}"
    try:
        proc.wait_until(base + "/readyz", 60)
        proc.wait_for_log("pipeline ready", 60)  # the tokenizer warm-up has ended
    except BaseException:
        proc.stop()
        raise
    return proc, base


def _load(
    target: Target, fmt: StreamFormat, plan: Plan, out: Path, ours: list[int]
) -> tuple[dict[str, Any], LoadSampler]:
    """Run the load generator against ``target``; its JSON output (kept in ``out``), and the
    load other processes than ``ours`` and it put on the machine meanwhile."""
    argv = [sys.executable, str(LOADGEN), "--base", target.base, "--format", fmt.name]
    argv += ["--output", str(out)]
    argv += ["--streams", str(plan.streams), "--chunks", str(plan.chunks)]
    argv += ["--rate", str(plan.rate), "--ramp", str(plan.ramp_s)]
    argv += ["--warmup", str(plan.warmup), "--probe-interval", str(plan.probe_interval_s)]
    if target.llmtrail_base is not None:
        argv += ["--settle-metrics", target.llmtrail_base + "/metrics"]
    timeout = plan.ramp_s + plan.chunks / plan.rate + 180
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    sampler = LoadSampler([*ours, proc.pid], self_cpu_s).start()
    try:
        _, stderr = proc.communicate(timeout=timeout)
    except BaseException:
        proc.kill()
        proc.communicate()
        raise
    finally:
        sampler.stop()
    if proc.returncode != 0:
        raise RuntimeError(f"load generator failed: {stderr.decode(errors='replace')[-2000:]}")
    result: dict[str, Any] = json.loads(out.read_bytes())
    return result, sampler


def check_records(base: str, fmt: StreamFormat, plan: Plan, load: dict[str, Any]) -> RecordCheck:
    """After the phase: the server's counters, the measured streams' records listed through
    ``GET /api/records``, and the first stream's record read field by field. A stream's
    facts are handed over once its last byte has reached the client (`relay`): the counters
    are read once every request sent was accepted, or after 30 s."""
    sent = int(load["sent_requests"])
    deadline = time.monotonic() + 30
    while procs.metrics(base).get("accepted", 0.0) < sent and time.monotonic() < deadline:
        time.sleep(0.05)
    m = procs.wait_drained(base)
    listed: set[int] = set()
    cursor: str | None = None
    while True:
        query = {"model": MODEL, "bodies": "0", "limit": "1000", "order": "ingested"}
        if cursor:
            query["cursor"] = cursor
        status, raw = procs.http(f"{base}/api/records?{urllib.parse.urlencode(query)}", timeout=60)
        if status != 200:
            raise RuntimeError(f"GET /api/records answered {status}: {raw[:300]!r}")
        page = json.loads(raw)
        for record in page["records"]:
            user = record.get("requestMetadata", {}).get("user_id", "")
            index = int(user.removeprefix("stream-")) if user.startswith("stream-") else -1
            if 0 <= index < plan.streams and record.get("status") == "OK":
                listed.add(index)
        cursor = page.get("nextCursor")
        if not cursor or not page["records"]:
            break
    return RecordCheck(
        sent=sent,
        accepted=m.get("accepted", 0.0),
        stored=m.get("stored", 0.0),
        dropped=m.get("dropped_queue_full", 0.0),
        listed=len(listed),
        sample=_check_sample(base, fmt, plan, load["streams"][0]),
        streams=plan.streams,
    )


def _check_sample(base: str, fmt: StreamFormat, plan: Plan, stream: dict[str, Any]) -> str:
    if not stream.get("request_id"):
        return "no x-llmtrail-request-id header"
    rid = urllib.parse.quote(stream["request_id"], safe="")
    status, raw = procs.http(f"{base}/api/records/{rid}", timeout=30)
    if status != 200:
        return f"GET /api/records/{{id}} answered {status}"
    record = json.loads(raw)
    problems = []
    if record.get("status") != "OK":
        problems.append(f"status {record.get('status')!r}")
    if fmt.record_text(record) != expected_text(plan.chunks):
        problems.append("logged text differs from the streamed deltas")
    if record.get("output", {}).get("outputTokenCount") != plan.chunks:
        problems.append(f"outputTokenCount {record.get('output', {}).get('outputTokenCount')}")
    if not isinstance(record.get("timeToFirstTokenMs"), int):
        problems.append("no timeToFirstTokenMs")
    return "; ".join(problems) or "ok"


def run_phase(
    target: Target,
    fmt: StreamFormat,
    plan: Plan,
    upstream_at: tuple[procs.Proc, str],
    ours: list[int],
    raw_out: Path,
) -> Phase:
    """One load-generator run against ``target``, after waiting for a quiet machine, with the
    CPU each process spent on it; ``ours`` are the pids of every process the benchmark
    started. The load generator's output is kept in ``raw_out``."""
    quiet = wait_quiet(ours, own_cpu_s)
    upstream, up = upstream_at
    procs.http(up + "/stats/reset", b"")
    other = OtherLoad(ours, own_cpu_s)
    server, upstream_cpu = procs.tree_cpu_seconds(target.pid), procs.cpu_seconds(upstream.pid)
    client = children_cpu_s()
    load, sampler = _load(target, fmt, plan, raw_out, ours)
    raw_out.with_suffix(".other-load.json").write_text(json.dumps(sampler.samples))
    client = children_cpu_s() - client
    other_cpu = other.seconds()
    records = None
    if target.llmtrail_base is not None:  # storing the records is part of the phase's cost
        records = check_records(target.llmtrail_base, fmt, plan, load)
    _, raw = procs.http(up + "/stats")
    return Phase(
        target,
        load,
        server_cpu_s=procs.tree_cpu_seconds(target.pid) - server,
        upstream_cpu_s=procs.cpu_seconds(upstream.pid) - upstream_cpu,
        client_cpu_s=client,
        upstream_clock=json.loads(raw),
        other_cpu_s=other_cpu,
        other_peak_cores=sampler.peak_cores(),
        quiet_cores=quiet,
        records=records,
    )


def run(
    workdir: Path,
    plan: Plan,
    log: procs.Log,
    profile: Path | None = None,
    format_name: str = "openai",
) -> StreamsResult:
    """Start the upstream and both gateways, run one phase per target, stop them all."""
    fmt = stream_format(format_name)
    result = StreamsResult(plan, fmt.name, profile=profile)
    started: list[procs.Proc] = []
    with procs.stopping(started):
        upstream, up = start_upstream(workdir, fmt, plan)
        started.append(upstream)
        rec, rec_base = start_gateway(workdir, "llmtrail-streams-record", fmt, up, True)
        started.append(rec)
        norec, norec_base = start_gateway(workdir, "llmtrail-streams-norecord", fmt, up, False)
        started.append(norec)
        targets = [
            Target("direct to upstream (baseline)", up, upstream.pid),
            Target("llmtrail, logging on", rec_base, rec.pid, rec_base),
            Target("llmtrail, --no-record", norec_base, norec.pid),
        ]
        for n, target in enumerate(targets):
            log(
                f"  {target.name}: {plan.streams} streams × {plan.chunks} chunks "
                f"at {plan.rate:g}/s ({fmt.name})"
            )
            recorder = None
            ours = [p.pid for p in started]
            if profile is not None and target.llmtrail_base is not None:
                recorder = spy.Recorder(target.pid, profile)
                ours.append(recorder.proc.pid)
            try:
                raw_out = workdir / f"streams-phase{n}.json"
                phase = run_phase(target, fmt, plan, (upstream, up), ours, raw_out)
                result.phases.append(phase)
            finally:
                if recorder is not None:
                    recorder.stop()
    direct = {s["index"]: s["sha256"] for s in result.phases[0].load["streams"] if not s["error"]}
    for phase in result.phases[1:]:
        phase.same_bytes = sum(
            1
            for s in phase.load["streams"]
            if not s["error"] and direct.get(s["index"]) == s["sha256"]
        )
    return result


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (``q`` in percent, fractions allowed) of an ascending list."""
    if not values:
        return float("nan")
    rank = max(1, math.ceil(q * len(values) / 100 - 1e-9))
    return values[min(rank, len(values)) - 1]
