"""Part C's tables: time to first byte, and chunk timing with the checks.

Two tables rather than one wide one, so each fits a terminal and a README. Every number comes
from `streams.StreamsResult`; nothing here measures.
"""

from __future__ import annotations

from dataclasses import dataclass

from rich import box
from rich.table import Table

from streams import GOAL_ADDED_TTFB_P99_MS, GOAL_STALL_MS, Phase, StreamsResult, percentile


@dataclass
class PhaseStats:
    """One phase's measurements, sorted for percentiles (ms, durations in s)."""

    ok: int
    ttfb: list[float]
    probes: list[float]
    gaps: list[float]
    behind_max_ms: float
    durations: list[float]

    @classmethod
    def of(cls, phase: Phase) -> PhaseStats:
        good = [s for s in phase.load["streams"] if not s["error"]]
        return cls(
            ok=len(good),
            ttfb=sorted(s["ttfb_s"] * 1000 for s in good),
            probes=sorted(ttfb * 1000 for _, ttfb in phase.load["probes"]),
            gaps=sorted(g / 1000 for s in good for g in s["gaps_us"]),
            behind_max_ms=max((s["behind_ms"] for s in good), default=float("nan")),
            durations=sorted(s["duration_s"] for s in good),
        )


def _verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def _new_table(title: str, columns: list[str], goal: str) -> Table:
    t = Table(title=title, box=box.MARKDOWN, title_justify="left", caption_justify="left")
    t.add_column("target", no_wrap=True)
    for name in columns:
        t.add_column(name, justify="right", no_wrap=True)
    t.add_column(goal, no_wrap=True)
    return t


def ttfb_table(result: StreamsResult) -> Table:
    """Time to first byte per target, and what the gateway adds to the direct phase's."""
    p = result.plan
    t = _new_table(
        f"C1. Streams, time to first byte: {p.streams} concurrent streams × {p.chunks} chunks "
        f"at {p.rate:g}/s ({result.format})",
        [
            "streams ok",
            "TTFB p50 ms",
            "TTFB p99 ms",
            "added p50 ms",
            "added p99 ms",
            "probes",
            "probe p50 ms",
            "probe p99 ms",
            "probe added p50",
            "probe added p99",
        ],
        f"goal: added p99 ≤ {GOAL_ADDED_TTFB_P99_MS:g} ms",
    )
    stats = [PhaseStats.of(phase) for phase in result.phases]
    base = stats[0]
    b50, b99 = percentile(base.ttfb, 50), percentile(base.ttfb, 99)
    q50, q99 = percentile(base.probes, 50), percentile(base.probes, 99)
    for i, (phase, s) in enumerate(zip(result.phases, stats, strict=True)):
        p50, p99 = percentile(s.ttfb, 50), percentile(s.ttfb, 99)
        r50, r99 = percentile(s.probes, 50), percentile(s.probes, 99)
        goal = _verdict(p99 - b99 <= GOAL_ADDED_TTFB_P99_MS) if i else ""
        t.add_row(
            phase.target.name,
            f"{s.ok}/{p.streams}",
            f"{p50:.3f}",
            f"{p99:.3f}",
            f"{p50 - b50:+.3f}" if i else "-",
            f"{p99 - b99:+.3f}" if i else "-",
            f"{len(s.probes):,}",
            f"{r50:.3f}",
            f"{r99:.3f}",
            f"{r50 - q50:+.3f}" if i else "-",
            f"{r99 - q99:+.3f}" if i else "-",
            goal,
        )
    t.caption = (
        f"TTFB: from just before the request is written to the first body byte. Streams start "
        f"evenly over {p.ramp_s:g} s; a probe (a one-chunk stream) every "
        f"{p.probe_interval_s * 1000:g} ms while all {p.streams} run. Added = this row's "
        "percentile minus the direct row's (a difference of percentiles)."
    )
    return t


def timing_table(result: StreamsResult) -> Table:
    """Gaps between chunks, lateness, durations, CPU, and the byte and record checks."""
    p = result.plan
    t = _new_table(
        f"C2. Streams, chunk timing: {p.streams} × {p.chunks} chunks, a chunk every "
        f"{1000 / p.rate:g} ms ({result.format}); gaps and lateness in ms",
        [
            "gaps",
            "p50",
            "p99",
            "p99.9",
            "max",
            f">{GOAL_STALL_MS:g}",
            "behind",
            "longest s",
            "up late",
            "CPU s",
            "other CPU",
            "same bytes",
            "records",
        ],
        f"no gap > {GOAL_STALL_MS:g} ms",
    )
    for i, phase in enumerate(result.phases):
        s = PhaseStats.of(phase)
        stalls = sum(1 for g in s.gaps if g > GOAL_STALL_MS)
        clock = phase.upstream_clock
        gap_max = s.gaps[-1] if s.gaps else float("nan")
        goal = _verdict(stalls == 0) if i else ""
        t.add_row(
            phase.target.name,
            f"{len(s.gaps):,}",
            f"{percentile(s.gaps, 50):.1f}",
            f"{percentile(s.gaps, 99):.1f}",
            f"{percentile(s.gaps, 99.9):.1f}",
            f"{gap_max:.1f}",
            str(stalls),
            f"{s.behind_max_ms:.1f}",
            f"{s.durations[-1] if s.durations else float('nan'):.2f}",
            f"{clock['late_writes']:.0f} ({clock['max_late_ms']:.0f})",
            f"{phase.server_cpu_s:.1f}/{phase.upstream_cpu_s:.1f}/{phase.client_cpu_s:.1f}",
            f"{phase.other_cpu_s:.1f} ({phase.other_peak_cores:.1f})",
            "(reference)" if phase.same_bytes is None else f"{phase.same_bytes}/{p.streams}",
            _records(phase),
            goal,
        )
    t.caption = "\n".join(_checks(result))
    return t


def _records(phase: Phase) -> str:
    r = phase.records
    if r is None:
        return "-"
    return f"{r.stored:,.0f}/{r.sent:,} {'ok' if r.complete else 'MISSING'}"


def _checks(result: StreamsResult) -> list[str]:
    p = result.plan
    lines = [
        "Gaps (ms): between the arrivals of consecutive chunks of a stream, all streams "
        "together. Behind (ms): the latest any chunk arrived, against its stream's first chunk "
        "and the upstream's clock. Longest: the slowest stream, request to last byte (the "
        f"upstream's clock alone takes {(p.chunks - 1) / p.rate:g} s). Up late: the upstream's "
        "writes more than 10 ms after their deadline (the latest, ms). CPU s: user + system of "
        "the target's server (the gateway; the upstream on the direct row) / the upstream / the "
        "load generator during the phase. Other CPU: seconds used meanwhile by processes "
        "outside the benchmark (/proc/stat), and their peak in cores over 0.5 s; each phase "
        "first waits up to 60 s for them to use under 0.25 cores (they used "
        + ", ".join(f"{phase.quiet_cores:.2f}" for phase in result.phases)
        + " cores when the phases began). A row with much other CPU measured the neighbours as "
        "much as the gateway. Same bytes: streams whose body equals the direct phase's. "
        "Records: stored of sent, and whether the checks below passed."
    ]
    for phase in result.phases:
        load = phase.load
        if load["errors"]:
            lines.append(
                f"{phase.target.name}: {load['errors']} failed requests, e.g. "
                + " | ".join(load["first_errors"])
            )
        r = phase.records
        if r is not None:
            probes = r.sent - p.warmup - p.streams
            lines.append(
                f"{phase.target.name}, records: sent {r.sent:,} requests ({p.warmup} warm-up, "
                f"{p.streams} streams, {probes} probes); accepted {r.accepted:,.0f}, stored "
                f"{r.stored:,.0f}, dropped {r.dropped:,.0f}; GET /api/records lists "
                f"{r.listed}/{p.streams} measured streams with status OK; the first stream's "
                f"record: {r.sample}."
            )
    return lines


def tables(result: StreamsResult) -> list[Table]:
    """Both tables, in print order."""
    return [ttfb_table(result), timing_table(result)]
