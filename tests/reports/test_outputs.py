"""HTML, PDF and PNG output: real files, opened the way a reader would open them.

The PDF is turned into PNG pages with ``pdftoppm`` and its text read with ``pdftotext``
(Debian's poppler-utils, installed by the project's test command).
"""

from __future__ import annotations

import io
import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageStat

from llmtrail.reports import REPORTS, Report, build_report, chart_png, render
from llmtrail.reports.pdf_output import ROWS_PER_PAGE

from .conftest import NOW, Dataset


def _poppler(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        pytest.fail(f"{tool} is missing: install Debian's poppler-utils")
    return path


@pytest.fixture(scope="module", params=REPORTS)
def built(request: pytest.FixtureRequest, dataset: Dataset) -> Report:
    return build_report(dataset.db, request.param, dataset.scope, now=NOW)


@pytest.fixture(scope="module")
def pdf_pages(
    built: Report, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Path, list[Path]]]:
    folder = tmp_path_factory.mktemp(f"pdf-{built.name}")
    pdf = folder / f"{built.name}.pdf"
    pdf.write_bytes(render(built, "pdf"))
    subprocess.run(
        [_poppler("pdftoppm"), "-r", "30", "-png", str(pdf), str(folder / "page")], check=True
    )
    yield pdf, sorted(folder.glob("page-*.png"))


def _colored_share(image: Image.Image) -> float:
    """The share of pixels that are clearly coloured (bars and lines, not text or grid)."""
    rgb = np.asarray(image.convert("RGB"), dtype=np.int16)
    spread = rgb.max(axis=2) - rgb.min(axis=2)
    return float((spread > 60).mean())


def test_pdf_has_its_pages_and_charts(built: Report, pdf_pages: tuple[Path, list[Path]]) -> None:
    pdf, pages = pdf_pages
    assert pdf.read_bytes().startswith(b"%PDF-")
    table_pages = sum(max(1, -(-len(t.rows) // ROWS_PER_PAGE)) for t in built.tables)
    assert len(pages) == 1 + table_pages + len(built.charts)
    for page in pages:
        with Image.open(page) as image:
            assert image.width > image.height  # landscape
            assert ImageStat.Stat(image.convert("L")).stddev[0] > 5  # nothing blank
    for page in pages[-len(built.charts) :]:
        with Image.open(page) as image:
            assert _colored_share(image) > 0.005, page.name
    with Image.open(pages[0]) as title:
        assert _colored_share(title) < 0.001  # figures and text only


def test_pdf_text_is_readable(built: Report, pdf_pages: tuple[Path, list[Path]]) -> None:
    pdf, _ = pdf_pages
    text = subprocess.run(
        [_poppler("pdftotext"), "-layout", "-f", "1", "-l", "1", str(pdf), "-"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    assert built.title in text
    assert "America/New_York" in text
    first = built.figures[0]
    assert first.label in text
    if built.name == "performance":
        assert f"{built.figure('invocations'):,}" in text
    else:
        assert f"${built.figure(first.key):,.4f}" in text


def test_html_is_self_contained(built: Report) -> None:
    html = render(built, "html").decode()
    assert html.startswith("<!DOCTYPE html>")
    for chart in built.charts:
        assert f'id="chart-{chart.key}" class="plotly-graph-div"' in html
        assert f'Plotly.newPlot(                        "chart-{chart.key}"' in html
    assert "plotly.js v" in html[:20000]  # the library itself, inlined in the head
    assert not re.search(r"<script[^>]*\bsrc\s*=", html)
    assert not re.search(r"""<link[^>]*\bhref\s*=\s*["']?(https?:)?//""", html)
    assert not re.search(r"""@import\s+url""", html)
    for table in built.tables:
        assert f'id="table-{table.key}"' in html
        for column in table.columns:
            assert f">{column.label}</th>" in html.replace("&#39;", "'").replace("&amp;", "&")


def test_html_escapes_values(dataset: Dataset) -> None:
    hostile = "</script><script>alert(1)</script><b>x</b>"
    report = build_report(
        dataset.db, "chargeback", dataset.scope, dimension=f"requestMetadata.{hostile}"
    )
    html = render(report, "html").decode()
    assert hostile not in html
    assert html.count("<script") == html.count("</script>") == 1 + len(report.charts)
    assert "&lt;/script&gt;&lt;script&gt;alert(1)" in html  # in the table header, as text


def test_chart_png_is_a_drawn_picture(built: Report) -> None:
    for chart in built.charts:
        data = chart_png(built, chart.key, dpi=40)
        with Image.open(io.BytesIO(data)) as image:
            assert image.format == "PNG"
            assert abs(image.width - 11.69 * 40) <= 1 and abs(image.height - 8.27 * 40) <= 1
            assert _colored_share(image) > 0.005
    with pytest.raises(KeyError):
        chart_png(built, "no-such-chart")


def test_json_document_shape(built: Report) -> None:
    doc = json.loads(render(built, "json"))
    assert doc["report"] == built.name
    assert doc["generatedAt"] == "2026-03-20T12:00:00Z"
    assert doc["scope"]["tz"] == "America/New_York"
    assert doc["csvTable"] in doc["tables"]
    for key, table in doc["tables"].items():
        keys = [c["key"] for c in table["columns"]]
        assert all(list(row) == keys for row in table["rows"]), key
        for column in table["columns"]:
            if column["type"] == "money":
                assert all(
                    re.fullmatch(r"-?\d+\.\d{9}", row[column["key"]]) for row in table["rows"]
                )
