"""Values pickled once, where they were made, that cross a process unopened.

A large OTLP export is decoded in a worker process of the serving process, and what it holds
is stored by the recorder process. The serving process reads none of the export's spans and,
of its model calls, only the keys it merges them into gateway calls by. Unpickling the spans
and records there, only to pickle them again for the recorder, cost ~8 µs a span and ~24 µs a
record on the GIL that relays model calls. So the worker pickles them once (`Packed`), the
serving process picks which to keep by position (`Packed.select`), and the recorder unpacks.
"""

from __future__ import annotations

import pickle
from collections.abc import Iterable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")


class Packed(Generic[T]):
    """A list of values as one pickle, and which of them to keep (all, unless selected)."""

    __slots__ = ("blob", "keep")

    def __init__(self, values: Sequence[T]) -> None:
        self.blob = pickle.dumps(list(values), pickle.HIGHEST_PROTOCOL)
        self.keep: list[int] | int = len(values)  # positions kept, or how many (all) there are

    def select(self, positions: Iterable[int]) -> Packed[T]:
        """The same values, keeping those at ``positions`` only (in that order)."""
        out: Packed[T] = Packed.__new__(Packed)
        out.blob, out.keep = self.blob, list(positions)
        return out

    def __len__(self) -> int:
        return self.keep if isinstance(self.keep, int) else len(self.keep)

    def unpack(self) -> list[T]:
        if not len(self):
            return []
        values: list[T] = pickle.loads(self.blob)
        return values if isinstance(self.keep, int) else [values[i] for i in self.keep]
