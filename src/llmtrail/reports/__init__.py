"""Reports: the performance report, the cost report and the chargeback statement, each as
JSON, CSV, HTML and PDF (and their charts as PNG).

Built in two steps so that each surface stays thin:

1. *Build* (`build_report`, or `performance_report` / `cost_report` / `chargeback_report`):
   aggregate the ``records`` table of a DuckDB `Database` over a `ReportScope` (time range
   ``[start, end)``, workspace, the time zone of its days and months) into a `Report` —
   headline figures, named tables and chart descriptions. The SQL is fixed text with bound
   parameters; money stays `Decimal` from the DECIMAL columns onwards.
2. *Render* (`render`): turn any `Report` into bytes — JSON (`report_document` gives the
   dict), CSV (one table), HTML (Jinja2 template, plotly charts, plotly.js inlined so it
   works offline), PDF (matplotlib; plotly's static export needs a browser download), and
   `chart_png` for one chart. Renderers know nothing of which report they draw.

The CLI (``llmtrail report …``) and the HTTP API call these functions and add nothing.
"""

from llmtrail.reports.chargeback import chargeback_report
from llmtrail.reports.cost import cost_report
from llmtrail.reports.dimension import DEFAULT_DIMENSION, Dimension, resolve_dimension
from llmtrail.reports.json_output import report_document
from llmtrail.reports.performance import performance_report
from llmtrail.reports.render import FORMATS, MEDIA_TYPES, REPORTS, build_report, render
from llmtrail.reports.report import Chart, ChartKind, Column, Figure, Kind, Report, Table
from llmtrail.reports.scope import ReportScope


def chart_png(report: Report, key: str, *, dpi: int = 100) -> bytes:
    """Chart ``key`` of ``report`` as a PNG image, drawn with matplotlib."""
    from llmtrail.reports.matplotlib_charts import chart_png as draw

    return draw(report, key, dpi=dpi)


__all__ = [
    "DEFAULT_DIMENSION",
    "FORMATS",
    "MEDIA_TYPES",
    "REPORTS",
    "Chart",
    "ChartKind",
    "Column",
    "Dimension",
    "Figure",
    "Kind",
    "Report",
    "ReportScope",
    "Table",
    "build_report",
    "chargeback_report",
    "chart_png",
    "cost_report",
    "performance_report",
    "render",
    "report_document",
    "resolve_dimension",
]
