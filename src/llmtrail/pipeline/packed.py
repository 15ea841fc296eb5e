"""Values pickled once, where they were made, that cross a process unopened.

A large OTLP export is decoded in a worker process of the serving process, and what it holds
is stored by the record path, in the recorder process. The serving process reads none of the
export's spans and, of its model calls, only the keys it merges them into gateway calls by.
Unpickling the spans and records there, only to pickle them again for the recorder, cost ~8 µs
a span and ~24 µs a record on the GIL that relays model calls. So the worker pickles them once
(`Packed`), the serving process keeps the records of the calls it did not merge
(`Packed.select`), and the record path unpacks what it is given.

Records cross as JSON (`Packed.records`): a record is a JSON document, which orjson writes and
reads in about half a pickle's time both ways (~11 against ~21 µs a record). What JSON says
otherwise than Python (a tuple comes back a list; orjson writes NaN and the infinities as
null) the spool's frame of the record, JSON too, says the same way; a record orjson cannot
write at all (an integer beyond 64 bits, a key that is not text) crosses as a pickle.
"""

from __future__ import annotations

import itertools
import pickle
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Generic, TypeVar

import orjson

from llmtrail.pipeline.frames import decode_payload, encode_span_payload
from llmtrail.pipeline.link import from_ipc, ipc
from llmtrail.record import InvocationRecord
from llmtrail.span import Span
from llmtrail.store.arrow import span_table

if TYPE_CHECKING:
    import pyarrow as pa

T = TypeVar("T")
# how the values were packed: as one pickle, one pickle each, or one JSON record each
_WHOLE, _EACH, _RECORDS = "whole", "each", "records"


class Packed(Generic[T]):
    """Values as one pickle (`Packed(values)`), or as one pickle each (`Packed.each`) or one
    JSON document each (`Packed.records`), so that those not kept (`select`) never cross
    again."""

    __slots__ = ("_blobs", "_count", "_kind")

    def __init__(self, values: Sequence[T]) -> None:
        self._blobs = [pickle.dumps(list(values), pickle.HIGHEST_PROTOCOL)] if values else []
        self._count, self._kind = len(values), _WHOLE

    @classmethod
    def each(cls, values: Iterable[T]) -> Packed[T]:
        blobs = [pickle.dumps(v, pickle.HIGHEST_PROTOCOL) for v in values]
        return cls._of(blobs, _EACH)

    @staticmethod
    def records(records: Iterable[InvocationRecord]) -> Packed[InvocationRecord]:
        """`each` for records, as JSON."""
        return Packed._of([_record_blob(r) for r in records], _RECORDS)

    @classmethod
    def _of(cls, blobs: list[bytes], kind: str) -> Packed[T]:
        out: Packed[T] = cls.__new__(cls)
        out._blobs, out._count, out._kind = blobs, len(blobs), kind
        return out

    def select(self, positions: Iterable[int]) -> Packed[T]:
        """The values at ``positions``, in that order, of a pack made by `each` or
        `records`."""
        if self._kind == _WHOLE:
            raise TypeError("only a pack of values packed one by one can be selected from")
        return self._of([self._blobs[i] for i in positions], self._kind)

    def __len__(self) -> int:
        return self._count

    def unpack(self) -> list[T]:
        if self._kind == _WHOLE:
            return list(pickle.loads(self._blobs[0])) if self._blobs else []
        if self._kind == _RECORDS:
            return [_record_of(b) for b in self._blobs]  # type: ignore[misc]
        return [pickle.loads(b) for b in self._blobs]


def _record_blob(record: InvocationRecord) -> bytes:
    """``[data, derived]`` as JSON, or the record pickled when orjson cannot write it."""
    try:
        return orjson.dumps((record.data, record.derived))
    except orjson.JSONEncodeError:
        return pickle.dumps(record, pickle.HIGHEST_PROTOCOL)


def _record_of(blob: bytes) -> InvocationRecord:
    if blob[:1] != b"[":  # a pickle (protocol 2 and later start with 0x80)
        record: InvocationRecord = pickle.loads(blob)
        return record
    data, derived = orjson.loads(blob)
    return InvocationRecord(data, tuple(derived))


class SpanFrames:
    """An export's spans, one workspace's, ready to spool and store: each span's spool frame
    (`encode_span_payload`), the key it is stored under, and all of them as the Arrow rows the
    store inserts (`span_table`, as an IPC stream)."""

    __slots__ = ("frames", "keys", "rows", "workspace")

    def __init__(
        self, workspace: str, frames: list[bytes], keys: list[tuple[str, str]], rows: bytes
    ) -> None:
        self.workspace, self.frames, self.keys, self.rows = workspace, frames, keys, rows

    @staticmethod
    def of(spans: Sequence[Span], workspace: str) -> SpanFrames | Packed[Span]:
        """``spans`` framed; pickled (`Packed`) when a frame cannot be written (a value
        orjson refuses), for the record path to prepare and frame one by one as before."""
        try:
            frames = [encode_span_payload(s) for s in spans]
        except (TypeError, ValueError):  # orjson's JSONEncodeError is a TypeError
            return Packed(spans)
        keys = [(s.trace_id, s.span_id) for s in spans]
        return SpanFrames(workspace, frames, keys, ipc(span_table(spans)))

    def __len__(self) -> int:
        return len(self.frames)

    def spans(self) -> list[Span]:
        """The spans read back from their frames, as a replay reads them."""
        return [decode_payload(f) for f in self.frames]  # type: ignore[misc]


class RecordFrames:
    """An ingest body's valid records, one workspace's, ready to spool and store: each
    record's spool frame (`encode_payload`), its ``(workspace, requestId)``, and all of them
    as the two Arrow tables the store inserts (`batch_tables`, as IPC streams), made in a
    worker process. ``policies`` is the record path's count of policy changes when the
    records were checked against them (`RecordPolicy.generation`)."""

    __slots__ = ("bodies", "frames", "keys", "policies", "rows")

    def __init__(
        self,
        frames: list[bytes],
        keys: list[tuple[str, str]],
        rows: bytes,
        bodies: bytes,
        policies: int = 0,
    ) -> None:
        self.frames, self.keys, self.rows, self.bodies = frames, keys, rows, bodies
        self.policies = policies

    def __len__(self) -> int:
        return len(self.frames)

    def records(self) -> list[InvocationRecord]:
        """The records read back from their frames, as a replay reads them."""
        return [decode_payload(f) for f in self.frames]  # type: ignore[misc]

    @staticmethod
    def read_back(framed: Iterable[RecordFrames]) -> list[InvocationRecord]:
        """The records of each of ``framed`` (`records`), one after the other."""
        return [r for f in framed for r in f.records()]

    def tables(self) -> tuple[pa.Table, pa.Table]:
        return from_ipc(self.rows), from_ipc(self.bodies)


def span_batch(spans: Sequence[Span | SpanFrames]) -> pa.Table:
    """A batch's spans, prepared ones and framed ones, as the Arrow rows inserted: the last
    copy of each (a span sent twice is stored once, as `latest_of` keeps it)."""
    import pyarrow as pa

    tables: list[pa.Table] = []
    keys: list[tuple[str, str, str]] = []
    for framed, group in itertools.groupby(spans, lambda s: isinstance(s, SpanFrames)):
        if framed:
            for frames in group:
                assert isinstance(frames, SpanFrames)
                tables.append(from_ipc(frames.rows))
                keys += [(frames.workspace, t, s) for t, s in frames.keys]
        else:  # a run of prepared spans, converted here
            run = [s for s in group if isinstance(s, Span)]
            tables.append(span_table(run))
            keys += [(s.workspace, s.trace_id, s.span_id) for s in run]
    table = tables[0] if len(tables) == 1 else pa.concat_tables(tables)
    last = {key: i for i, key in enumerate(keys)}
    return table if len(last) == len(keys) else table.take(sorted(last.values()))


def span_count(spans: Sequence[Span | SpanFrames]) -> int:
    return sum(len(s) if isinstance(s, SpanFrames) else 1 for s in spans)
