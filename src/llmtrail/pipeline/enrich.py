"""What llmtrail adds to a record at capture, after the call: its cost (priced with the
version in force at the call's time, or the reason there is none), and the characters of its
input and output text (Bedrock's per-profile character count).

Pricing never fails a capture: `cost_of` returns an empty cost with a reason instead of
raising, and anything unexpected here leaves the record without a cost rather than losing it.
The price table loads once (genai-prices takes ~1 s to import), before the server is ready.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from llmtrail.pricing.body_text import input_chars, output_chars
from llmtrail.pricing.cost import cost_dict
from llmtrail.pricing.table import PriceTable
from llmtrail.record import InvocationRecord

log = logging.getLogger("llmtrail.capture")


class Enricher:
    """Adds ``cost`` and ``textCharacters`` to record documents; thread-safe."""

    def __init__(
        self,
        overrides: Callable[[], Iterable[Mapping[str, Any]]] = tuple,
        provider_aliases: Mapping[str, str] | None = None,
    ) -> None:
        self._overrides = overrides
        self._aliases = dict(provider_aliases or {})
        self._table: PriceTable | None = None
        self._in_force: tuple[Any, ...] = ()  # the overrides the table was built with
        self._lock = threading.Lock()
        # told of every reload (the recorder process prices with its own table)
        self.listeners: list[Callable[[], None]] = []

    @property
    def table(self) -> PriceTable:
        table = self._table
        if table is None:
            with self._lock:
                if self._table is None:
                    self._build()
                assert self._table is not None
                table = self._table
        return table

    def reload(self) -> None:
        """Rebuild the table after the price overrides changed (at its next use, when it was
        not loaded yet: a serving process whose recorder prices never loads it)."""
        with self._lock:
            if self._table is not None:
                self._build()
        for listener in self.listeners:
            listener()

    def _build(self) -> PriceTable:
        overrides = tuple(self._overrides())
        self._table = PriceTable(list(overrides), provider_aliases=self._aliases)
        self._in_force = overrides
        return self._table

    def in_force(self) -> tuple[tuple[Any, ...], tuple[tuple[str, str], ...]]:
        """The price overrides and provider aliases the table prices with (loading it), for
        a worker process to price the same way."""
        with self._lock:
            if self._table is None:
                self._build()
            return self._in_force, tuple(sorted(self._aliases.items()))

    def __call__(self, doc: dict[str, Any]) -> None:
        """Add the cost and the character counts to ``doc`` (in place)."""
        try:
            table = self._table
            if table is None:
                table = self.table
            doc["cost"] = cost_dict(doc, table)
        except Exception:  # never lose a record over its price
            log.exception("could not price a record")
        inp, out = doc.get("input"), doc.get("output")
        chars: dict[str, int] = {}
        if isinstance(inp, dict):
            body = inp.get("inputBodyJson")
            if body is not None:
                chars["input"] = input_chars(body)
        if isinstance(out, dict):
            body = out.get("outputBodyJson")
            if body is not None:
                chars["output"] = output_chars(body)
        if chars:
            doc["textCharacters"] = chars


def enriched(records: list[InvocationRecord], enrich: Enricher) -> list[InvocationRecord]:
    """Imported or OTLP records with the cost and character counts they lack, marked as
    derived (so a Bedrock log serialises back without them); a record that carries its own
    ``cost`` keeps it."""
    out = []
    for record in records:
        if "cost" in record.data:
            out.append(record)
            continue
        doc = dict(record.data)
        enrich(doc)
        added = tuple(k for k in ("cost", "textCharacters") if k in doc and k not in record.data)
        out.append(InvocationRecord(doc, record.derived + added))
    return out
