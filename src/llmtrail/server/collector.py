"""The garbage collector as every server process sets it (the serving process, the recorder
and the decoding workers).

Records and spans are many short-lived dicts: with the default thresholds the collector keeps
rescanning the process's long-lived objects (measured: parsing an ingest batch 2.5x slower,
decoding an OTLP export ~10 % slower). So the objects alive now (modules, settings, caches)
are frozen out of its scans, and the young generation is collected less often.
"""

from __future__ import annotations

import gc


def settle_collector() -> None:
    """Freeze what is alive now and collect the young generation every 50,000 allocations;
    call it again after a late import (a worker's first job) to freeze that too."""
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)
