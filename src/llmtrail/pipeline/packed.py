"""Values pickled once, where they were made, that cross a process unopened.

A large OTLP export is decoded in a worker process of the serving process, and what it holds
is stored by the record path, in the recorder process. The serving process reads none of the
export's spans and, of its model calls, only the keys it merges them into gateway calls by.
Unpickling the spans and records there, only to pickle them again for the recorder, cost ~8 µs
a span and ~24 µs a record on the GIL that relays model calls. So the worker pickles them once
(`Packed`), the serving process keeps the records of the calls it did not merge
(`Packed.select`), and the record path unpacks what it is given.
"""

from __future__ import annotations

import pickle
from collections.abc import Iterable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")


class Packed(Generic[T]):
    """Values as one pickle (`Packed(values)`), or as one pickle each (`Packed.each`), so
    that those not kept (`select`) never cross again."""

    __slots__ = ("_blobs", "_count", "_whole")

    def __init__(self, values: Sequence[T]) -> None:
        self._blobs = [pickle.dumps(list(values), pickle.HIGHEST_PROTOCOL)] if values else []
        self._count, self._whole = len(values), True

    @classmethod
    def each(cls, values: Iterable[T]) -> Packed[T]:
        return cls._of([pickle.dumps(v, pickle.HIGHEST_PROTOCOL) for v in values], whole=False)

    @classmethod
    def _of(cls, blobs: list[bytes], whole: bool) -> Packed[T]:
        out: Packed[T] = cls.__new__(cls)
        out._blobs, out._count, out._whole = blobs, len(blobs), whole
        return out

    def select(self, positions: Iterable[int]) -> Packed[T]:
        """The values at ``positions``, in that order, of a pack made by `each`."""
        if self._whole:
            raise TypeError("only a pack of values pickled one by one can be selected from")
        return self._of([self._blobs[i] for i in positions], whole=False)

    def __len__(self) -> int:
        return self._count

    def unpack(self) -> list[T]:
        if self._whole:
            return list(pickle.loads(self._blobs[0])) if self._blobs else []
        return [pickle.loads(b) for b in self._blobs]
