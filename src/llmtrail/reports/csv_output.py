"""A report as CSV: one table, with a header row of column keys.

CSV holds one table, so each report names the one it writes by default (`Report.csv_table`):

* performance → ``models`` (model usage: invocations, errors, error rate, throttles, average
  and p95 latency, tokens);
* cost → ``models`` (cost by model, per usage type and in total);
* chargeback → ``statement`` (one line per month and tenant).

The other tables (performance ``daily`` and ``errors``; cost ``usage`` and ``daily``;
chargeback ``tenants``) are written when asked for by key. Cells are written as in JSON
(money with nine decimals, ratios from 0 to 1), with an empty cell for a missing value.
"""

from __future__ import annotations

import csv
import io

from llmtrail.reports.report import Report
from llmtrail.reports.values import csv_value


def render_csv(report: Report, table: str | None = None) -> bytes:
    """Table ``table`` of ``report`` (its `csv_table` when None) as UTF-8 CSV with CRLF line
    ends (RFC 4180). Raises `KeyError` for a table the report does not have."""
    chosen = report.table(table or report.csv_table)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([c.key for c in chosen.columns])
    for row in chosen.rows:
        writer.writerow([csv_value(row.get(c.key), c.kind) for c in chosen.columns])
    return out.getvalue().encode()
