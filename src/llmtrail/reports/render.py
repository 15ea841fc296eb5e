"""One entry point from a built report to the bytes of a file in any format.

The heavy renderers (plotly, matplotlib) are imported only when their format is asked for,
so building a report or writing JSON and CSV does not load them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from llmtrail.errors import ValidationError
from llmtrail.query.reads import ReadSource
from llmtrail.reports.chargeback import chargeback_report
from llmtrail.reports.cost import cost_report
from llmtrail.reports.dimension import DEFAULT_DIMENSION
from llmtrail.reports.performance import performance_report
from llmtrail.reports.report import Report
from llmtrail.reports.scope import ReportScope

Format = Literal["json", "csv", "html", "pdf"]
FORMATS: tuple[Format, ...] = ("json", "csv", "html", "pdf")
REPORTS: tuple[str, ...] = ("performance", "cost", "chargeback")
MEDIA_TYPES: dict[str, str] = {
    "json": "application/json",
    "csv": "text/csv; charset=utf-8",
    "html": "text/html; charset=utf-8",
    "pdf": "application/pdf",
    "png": "image/png",
}


def build_report(
    db: ReadSource,
    name: str,
    scope: ReportScope,
    *,
    dimension: str | None = None,
    now: datetime | None = None,
) -> Report:
    """Report ``name`` (performance | cost | chargeback) of ``scope``. ``dimension`` is the
    record field a chargeback splits by (default ``requestMetadata.tenant_id``); the other
    reports take none. Raises `ValidationError` on a bad name or dimension."""
    if name not in REPORTS:
        raise ValidationError("report", f"expected one of {'|'.join(REPORTS)}, got {name!r}")
    if name == "chargeback":
        return chargeback_report(db, scope, dimension or DEFAULT_DIMENSION, now=now)
    if dimension is not None:
        raise ValidationError("dimension", f"only the chargeback report takes one, not {name}")
    if name == "cost":
        return cost_report(db, scope, now=now)
    return performance_report(db, scope, now=now)


def render(report: Report, fmt: str, *, table: str | None = None) -> bytes:
    """``report`` as a file in format ``fmt`` (json | csv | html | pdf). ``table`` picks the
    table CSV holds (default: the report's `csv_table`). Raises `ValidationError` on a bad
    format or table."""
    if fmt not in FORMATS:
        raise ValidationError("format", f"expected one of {'|'.join(FORMATS)}, got {fmt!r}")
    if table is not None and fmt != "csv":
        raise ValidationError("table", "only CSV output holds a single table")
    if fmt == "json":
        from llmtrail.reports.json_output import render_json

        return render_json(report)
    if fmt == "csv":
        from llmtrail.reports.csv_output import render_csv

        if table is not None and table not in {t.key for t in report.tables}:
            raise ValidationError(
                "table",
                f"expected one of {'|'.join(t.key for t in report.tables)}, got {table!r}",
            )
        return render_csv(report, table)
    if fmt == "html":
        from llmtrail.reports.html_output import render_html

        return render_html(report)
    from llmtrail.reports.pdf_output import render_pdf

    return render_pdf(report)
