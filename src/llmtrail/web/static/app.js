// llmtrail's own script: draw every figure the page embeds as JSON, follow a chart point
// that links somewhere, and run the Logs editor's query with Ctrl+Enter.
"use strict";

function drawCharts() {
  for (const box of document.querySelectorAll(".chart[data-figure]")) {
    const source = document.getElementById(box.dataset.figure);
    if (!source) continue;
    const figure = JSON.parse(source.textContent);
    const layout = Object.assign({ autosize: true }, figure.layout || {});
    Plotly.newPlot(box, figure.data || [], layout, { responsive: true, displaylogo: false });
    box.on("plotly_click", (event) => {
      const link = event.points && event.points[0] && event.points[0].customdata;
      if (typeof link === "string" && link.startsWith("/")) window.location.href = link;
    });
  }
}

function submitOnCtrlEnter() {
  const editor = document.getElementById("query");
  if (!editor) return;
  editor.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      editor.form.requestSubmit();
    }
  });
}

document.addEventListener("DOMContentLoaded", () => {
  if (window.Plotly) drawCharts();
  submitOnCtrlEnter();
});
