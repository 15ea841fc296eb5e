"""Why a replayed spool batch is stored once on ClickHouse, though nothing is transactional.

DuckDB commits a batch and its spool position in one transaction. ClickHouse inserts the
bodies, then the records (so a record is never read without its bodies), then the position,
each on its own; a crash between them leaves rows stored whose position is not. After a
restart the pipeline replays the spool from the committed position, re-batched by size, so
the replayed batches need not match the batch that was cut short, and an insert
de-duplication token made of the position alone would not recognise them (and would silently
drop a *different* batch that reuses a position, as a fresh spool next to an old database
does). So:

* every insert with a position carries the token ``spool:segment:offset:digest``, the digest
  being that of the batch's recordIds: a retried insert of the same batch is dropped by
  ClickHouse itself, and nothing else can match it;
* records that may already be stored are looked up by ``recordId`` (and bodies apart from
  records) before inserting, and the stored ones skipped. Those are the records created
  before the store was opened (a recordId is a UUIDv7 of the capture time), which is where
  a replay's records come from, and every record of the batch after an append that failed
  part-way in this process.

Records captured while the store is open are never looked up, so the steady state costs no
query. A wall clock set back across a restart by more than `CLOCK_SLACK` can let a replayed
duplicate through; a recordId that is not a UUIDv7 is always looked up.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import timedelta

CLOCK_SLACK = timedelta(seconds=5)


def dedup_token(spool: str, position: str, record_ids: Iterable[str]) -> str:
    """The insert de-duplication token of one batch at one spool position."""
    digest = hashlib.blake2b(digest_size=12)
    for record_id in record_ids:
        digest.update(record_id.encode())
        digest.update(b"\n")
    return f"{spool}:{position}:{digest.hexdigest()}"


def uuid7_micros(record_id: str) -> int | None:
    """The creation time in epoch microseconds of a UUIDv7 recordId, or None if it is not one."""
    text = record_id.replace("-", "")
    if len(text) != 32 or text[12] != "7":
        return None
    try:
        return int(text[:12], 16) * 1000
    except ValueError:
        return None


def may_be_stored(record_id: str, opened_us: int) -> bool:
    """Whether a record could have been stored before a store opened at ``opened_us``."""
    created = uuid7_micros(record_id)
    slack = CLOCK_SLACK // timedelta(microseconds=1)
    return created is None or created < opened_us + slack
