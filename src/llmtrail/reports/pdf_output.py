"""A report as a PDF: a title page with the headline figures, then the tables, then the
charts, on A4 landscape pages drawn by matplotlib.

matplotlib's PDF backend embeds its own fonts (DejaVu Sans) and needs no display or browser,
so the file is the same offline and on a server. Tables are set in a monospaced font, one text
per row with columns padded to their widths, rather than with matplotlib's cell-by-cell
``Table``, which is several times slower to lay out; long tables continue over as many pages
as they need, `ROWS_PER_PAGE` rows each. The file's metadata carries the report's title and
generation time, so one report renders to the same document every time.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

from matplotlib.backends.backend_pdf import PdfPages
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from llmtrail.reports.matplotlib_charts import CHART_SIZE_IN, draw_chart, plain
from llmtrail.reports.report import Kind, Report, Table
from llmtrail.reports.values import display_value

ROWS_PER_PAGE = 24
MAX_CELL = 40
_TEXT_KINDS = (Kind.TEXT, Kind.DATE, Kind.MONTH)
_PAGE_WIDTH_PT = CHART_SIZE_IN[0] * 72
_MARGIN = 0.04  # of the page width
_STRIPE = "#f3f5f8"
_MONO_EM = 0.602  # the advance of one DejaVu Sans Mono character, in font sizes
_LINE_EM = 1.9  # the height of one table line, in font sizes
_GAP = 2  # characters between columns
_PAD = 0.5  # font sizes between a stripe's edge and its text


def render_pdf(report: Report) -> bytes:
    """``report`` as the bytes of a PDF document."""
    buffer = io.BytesIO()
    metadata = {"Title": report.title, "Creator": "llmtrail", "CreationDate": report.generated_at}
    with PdfPages(buffer, metadata=metadata) as pdf:
        pdf.savefig(_title_page(report))
        for table in report.tables:
            for page in _table_pages(table):
                pdf.savefig(page)
        for chart in report.charts:
            page = Figure(figsize=CHART_SIZE_IN)
            draw_chart(page, report, chart)
            pdf.savefig(page)
    return buffer.getvalue()


def _title_page(report: Report) -> Figure:
    page = Figure(figsize=CHART_SIZE_IN)
    page.text(0.06, 0.9, plain(report.title), fontsize=28, weight="bold")
    lines = [
        f"Period: {report.scope.period_text()}",
        f"Workspace: {report.scope.workspace}",
        *(f"{k.capitalize()}: {v}" for k, v in report.parameters.items()),
        f"Generated: {report.generated_at.strftime('%Y-%m-%d %H:%M:%S %Z')}",
    ]
    page.text(0.06, 0.84, plain("\n".join(lines)), fontsize=11, va="top", linespacing=1.6)
    labels = [f.label for f in report.figures]
    values = [display_value(f.value, f.kind) for f in report.figures]
    _set_rows(page, 0.64, [(True, labels), (False, values)], left=0.06, size=10, header=False)
    return page


def _table_pages(table: Table) -> list[Figure]:
    rows = table.rows
    chunks = [rows[i : i + ROWS_PER_PAGE] for i in range(0, len(rows), ROWS_PER_PAGE)] or [()]
    texts = [[_cell(row.get(c.key), c.kind) for row in rows] for c in table.columns]
    widths = [
        max([len(c.label), *map(len, col)]) for c, col in zip(table.columns, texts, strict=True)
    ]
    usable = _PAGE_WIDTH_PT * (1 - 2 * _MARGIN)
    size = min(9.0, usable / (sum(w + _GAP for w in widths) * _MONO_EM))
    pages = []
    for n, chunk in enumerate(chunks):
        page = Figure(figsize=CHART_SIZE_IN)
        title = table.title if len(chunks) < 2 else f"{table.title} ({n + 1}/{len(chunks)})"
        page.text(_MARGIN, 0.93, plain(title), fontsize=16, weight="bold")
        if not chunk:
            page.text(_MARGIN, 0.86, "No rows in this period.", fontsize=12, va="top")
        else:
            first = n * ROWS_PER_PAGE
            columns = [
                (c.kind in _TEXT_KINDS, [c.label, *col[first : first + len(chunk)]])
                for c, col in zip(table.columns, texts, strict=True)
            ]
            _set_rows(page, 0.86, columns, left=_MARGIN, size=size, header=True, widths=widths)
        pages.append(page)
    return pages


def _set_rows(
    page: Figure,
    top: float,
    columns: Sequence[tuple[bool, list[str]]],
    *,
    left: float,
    size: float,
    header: bool,
    widths: Sequence[int] | None = None,
) -> None:
    """Lines of a table from ``top`` down, one text per line in a monospaced font with each
    column padded to its width (left-aligned when its flag is set, else right-aligned), so
    columns line up exactly; every other line striped, the header shaded and bold."""
    widths = widths or [max(map(len, lines)) for _, lines in columns]
    line = size * _LINE_EM / (page.get_figheight() * 72)  # in page heights
    span = sum(w + _GAP for w in widths) * size * _MONO_EM / (page.get_figwidth() * 72)
    for i in range(len(columns[0][1])):
        cells = [
            lines[i].ljust(w) if flush_left else lines[i].rjust(w)
            for (flush_left, lines), w in zip(columns, widths, strict=True)
        ]
        y = top - (i + 1) * line
        is_header = header and i == 0
        if is_header or i % 2 == (0 if header else 1):
            page.patches.append(
                Rectangle((left, y), span, line, transform=page.transFigure,
                          facecolor="#e3e8ef" if is_header else _STRIPE, edgecolor="none")
            )  # fmt: skip
        page.text(left + _PAD * size / (page.get_figwidth() * 72), y + line / 2,
                  plain((" " * _GAP).join(cells)), fontsize=size, family="DejaVu Sans Mono",
                  weight="bold" if is_header else "normal", va="center")  # fmt: skip


def _cell(value: object, kind: Kind) -> str:
    if kind is Kind.TEXT and value is None:
        return "(none)"
    text = display_value(value, kind)
    return text if len(text) <= MAX_CELL else text[: MAX_CELL - 1] + "…"
