"""A report as a JSON document.

The shape, the same for every report::

    {
      "report": "cost",                       // performance | cost | chargeback
      "title": "Cost report",
      "generatedAt": "2026-11-30T12:00:00Z",
      "scope": {"start": "…Z", "end": "…Z", "workspace": "default", "tz": "UTC"},
      "parameters": {"dimension": "requestMetadata.tenant_id"},   // chargeback only
      "summary": {"totalUsd": "12.345678900", "invocations": 3000, …},
      "tables": {
        "models": {
          "title": "Cost by model",
          "columns": [{"key": "model", "label": "Model", "type": "text"}, …],
          "rows": [{"model": "sim/fast", "totalUsd": "1.250000000", …}, …]
        }, …
      },
      "csvTable": "models"                    // the table CSV output holds
    }

Money is a string with exactly nine decimals (the store's scale, so sums are exact); counts
are integers; measurements (milliseconds, averages) are numbers rounded to three decimals;
ratios are numbers from 0 to 1; days are ``YYYY-MM-DD`` and months ``YYYY-MM`` in the scope's
time zone; a missing value is ``null``. Column ``type`` is one of the `Kind` values.
"""

from __future__ import annotations

import json
from datetime import UTC
from typing import Any

from llmtrail.reports.report import Report
from llmtrail.reports.values import json_value


def report_document(report: Report) -> dict[str, Any]:
    """``report`` as a JSON-ready dict in the shape above."""
    return {
        "report": report.name,
        "title": report.title,
        "generatedAt": report.generated_at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        "scope": report.scope.describe(),
        "parameters": dict(report.parameters),
        "summary": {f.key: json_value(f.value, f.kind) for f in report.figures},
        "tables": {
            t.key: {
                "title": t.title,
                "columns": [
                    {"key": c.key, "label": c.label, "type": c.kind.value} for c in t.columns
                ],
                "rows": [
                    {c.key: json_value(row.get(c.key), c.kind) for c in t.columns} for row in t.rows
                ],
            }
            for t in report.tables
        },
        "csvTable": report.csv_table,
    }


def render_json(report: Report) -> bytes:
    """The JSON document of ``report``, indented, UTF-8."""
    return (json.dumps(report_document(report), indent=2, ensure_ascii=False) + "\n").encode()
