"""The garbage collector as every server process sets it (the serving process, the recorder
and the decoding workers).

Records and spans are many short-lived dicts: with the default thresholds the collector keeps
rescanning the process's long-lived objects (measured: parsing an ingest batch 2.5x slower,
decoding an OTLP export ~10 % slower). So the objects alive now (modules, settings, caches)
are frozen out of its scans, and the young generation is collected less often.

The record path's processes collect it later still (`RECORD_PATH_YOUNG`). Their records and
spans are trees of dicts and lists that reference counting frees once stored, but they live
for a second or two in the spool's queue and the store's batch, so every young collection
found tens of thousands of them alive and scanned them, and every middle one all of those again.
At 50,000 the recorder spent 1.5 s of a 10 s ingest run of 100,000 records in the collector
(~15 µs a record, a fifth of its CPU); at 1,000,000 it ran twice, 0.3 s in all.
"""

from __future__ import annotations

import gc

YOUNG = 50_000
# allocations less deallocations between young collections in the recorder and the decoding
# workers: the records in flight die before that many pile up, so a collection only runs when
# the objects alive grew by that much (each costs ~0.15 s then, on the record path's own core)
RECORD_PATH_YOUNG = 1_000_000


def settle_collector(young: int = YOUNG) -> None:
    """Freeze what is alive now and collect the young generation every ``young``
    allocations; call it again after a late import (a worker's first job) to freeze that
    too."""
    gc.freeze()
    gc.set_threshold(young, 20, 20)
