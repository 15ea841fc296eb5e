"""A report as one self-contained HTML page.

The page is rendered from a Jinja2 template shipped in this package (``templates/``), with
the headline figures, plotly charts and the tables. plotly.js is inlined from the installed
``plotly`` package, so the file opens offline and loads nothing from elsewhere (no CDN, no
fonts); it is large (about 5 MB) for that reason. Values are escaped by the template;
only the plotly markup and library, which this package generates, are inserted as-is.
"""

from __future__ import annotations

import functools
from pathlib import Path

import jinja2
from markupsafe import Markup

from llmtrail.reports.plotly_charts import chart_html, plotly_js
from llmtrail.reports.report import Kind, Report
from llmtrail.reports.values import display_value

TEMPLATES = Path(__file__).resolve().parent / "templates"
_TEXT_KINDS = (Kind.TEXT, Kind.DATE, Kind.MONTH)


@functools.cache
def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render_html(report: Report) -> bytes:
    """``report`` as a UTF-8 HTML document with its charts."""
    template = _environment().get_template("report.html.j2")
    tables = [
        {
            "key": t.key,
            "title": t.title,
            "columns": [
                {"label": c.label, "numeric": c.kind not in _TEXT_KINDS} for c in t.columns
            ],
            "rows": [
                [
                    "(none)" if c.kind is Kind.TEXT and row.get(c.key) is None
                    else display_value(row.get(c.key), c.kind)
                    for c in t.columns
                ]
                for row in t.rows
            ],
        }
        for t in report.tables
    ]  # fmt: skip
    page = template.render(
        report=report,
        period=report.scope.period_text(),
        generated=report.generated_at.strftime("%Y-%m-%d %H:%M:%S %Z"),
        figures=[(f.label, display_value(f.value, f.kind)) for f in report.figures],
        charts=[Markup(chart_html(report, c)) for c in report.charts],
        tables=tables,
        plotly_js=Markup(plotly_js()),
    )
    return page.encode()
