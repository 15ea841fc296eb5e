"""Latencies as mergeable histograms with logarithmic buckets (as DDSketch keeps them).

A value ``v`` ≥ 1 ms falls in bucket ``ceil(log(v) / log(GAMMA))``; every value of a bucket is
within `RELATIVE_ERROR` of the bucket's representative value, so a percentile read from merged
buckets is within 1 % of the exact one. Buckets merge by adding counts, which is what the
rollups do per minute, per hour and per query range. ``ZERO_BUCKET`` holds 0 ms.
"""

from __future__ import annotations

import math

RELATIVE_ERROR = 0.01
GAMMA = (1 + RELATIVE_ERROR) / (1 - RELATIVE_ERROR)
LOG_GAMMA = math.log(GAMMA)
ZERO_BUCKET = -1


def bucket_of(value: float) -> int:
    if value <= 0:
        return ZERO_BUCKET
    return math.ceil(math.log(value) / LOG_GAMMA)


def bucket_value(index: int) -> float:
    """The representative value of a bucket: within `RELATIVE_ERROR` of all it holds."""
    if index == ZERO_BUCKET:
        return 0.0
    return 2 * GAMMA**index / (GAMMA + 1)
