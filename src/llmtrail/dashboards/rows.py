"""A metric widget's ``metrics`` array → one `MetricRow` per entry.

Each entry is ``[Namespace, MetricName, DimName, DimValue, …, {options}]`` or
``[{"expression": …, "id": …}]``. The console writes rows short: ``"."`` takes the value at the
same place in the row above, and ``"..."`` stands for as many of the row above's values as
the row leaves out (``["...", "app-b"]`` is the row above with its last value replaced), so
rows are expanded against the previous row, in order.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from llmtrail.errors import ValidationError

REPEAT_ONE = "."
REPEAT_REST = "..."


@dataclass
class MetricRow:
    """One expanded row. ``expression`` rows have no namespace or metric."""

    namespace: str | None
    metric: str | None
    dimensions: tuple[tuple[str, str], ...] = ()
    options: dict[str, Any] = field(default_factory=dict)
    expression: str | None = None

    @property
    def values(self) -> list[str]:
        """The row as positional values (what the next row's ``.`` and ``...`` refer to)."""
        if self.namespace is None or self.metric is None:
            return []
        return [self.namespace, self.metric, *(v for pair in self.dimensions for v in pair)]


def expand_rows(metrics: list[Any]) -> list[MetricRow]:
    """Every entry of ``metrics`` expanded; `ValidationError` with ``field`` ``[i]`` or
    ``[i][j]`` (relative to the array) for an entry that is not a metric row."""
    rows: list[MetricRow] = []
    previous: list[str] = []
    for i, entry in enumerate(metrics):
        if not isinstance(entry, list) or not entry:
            raise ValidationError(f"[{i}]", "must be a non-empty array")
        options: dict[str, Any] = {}
        items = entry
        if isinstance(entry[-1], dict):
            options, items = entry[-1], entry[:-1]
        for j, item in enumerate(items):
            if not isinstance(item, str):
                raise ValidationError(
                    f"[{i}][{j}]", "must be a string (or the last item an object)"
                )
        expression = options.get("expression")
        if not items:
            if expression is None:
                raise ValidationError(f"[{i}]", "an options-only row needs an expression")
            rows.append(MetricRow(None, None, (), options, expression))
            continue
        values = _expand(items, previous, i)
        if len(values) < 2:
            raise ValidationError(f"[{i}]", "needs a namespace and a metric name")
        if len(values) % 2:
            raise ValidationError(f"[{i}]", "dimensions come in name and value pairs")
        pairs = tuple((values[k], values[k + 1]) for k in range(2, len(values), 2))
        row = MetricRow(values[0], values[1], pairs, options, expression)
        rows.append(row)
        previous = row.values
    return rows


def _expand(items: list[str], previous: list[str], i: int) -> list[str]:
    if REPEAT_REST in items:
        k = items.index(REPEAT_REST)
        if not previous:
            raise ValidationError(f"[{i}][{k}]", '"..." needs a metric row above it')
        before, after = items[:k], items[k + 1 :]
        if REPEAT_REST in after:
            raise ValidationError(f"[{i}][{k}]", '"..." may appear once in a row')
        middle = previous[len(before) : max(len(before), len(previous) - len(after))]
        items = [*before, *middle, *after]
    out = []
    for j, item in enumerate(items):
        if item == REPEAT_ONE:
            if j >= len(previous):
                raise ValidationError(f"[{i}][{j}]", '"." has no value above it to repeat')
            out.append(previous[j])
        else:
            out.append(item)
    return out
