// llmtrail's own script: draw every figure the page embeds as JSON, follow a chart point
// that links somewhere, and run the Logs editor's query with Ctrl+Enter. `llmtrailFetch`
// is the one way our script calls the server: it sends the session's CSRF token (from
// <meta name="csrf-token">) as the x-llmtrail-csrf header, which a state-changing request
// made with the session cookie needs.
"use strict";

function csrfToken() {
  const meta = document.querySelector('meta[name="csrf-token"]');
  return meta ? meta.getAttribute("content") : null;
}

function llmtrailFetch(url, options) {
  const init = Object.assign({ credentials: "same-origin" }, options || {});
  const headers = new Headers(init.headers || {});
  const token = csrfToken();
  if (token && !headers.has("x-llmtrail-csrf")) headers.set("x-llmtrail-csrf", token);
  init.headers = headers;
  return fetch(url, init);
}
window.llmtrailFetch = llmtrailFetch;

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
