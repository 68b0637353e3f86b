// The operations console's only script: keeps the live parts of a page current (the fleet
// table, a location's doors and alerts) by fetching their fragment every few seconds, and draws
// the plots. The pages work without it; they are just not live.
"use strict";
(function () {

  function refresh(el) {
    fetch(el.dataset.refresh, { credentials: "same-origin", headers: { "X-Requested-With": "fetch" } })
      .then((r) => {
        if (r.redirected || r.status === 401) { window.location.reload(); return null; }
        return r.ok ? r.text() : null;
      })
      .then((html) => {
        if (html !== null && html !== undefined && el.innerHTML !== html) {
          el.innerHTML = html;
          el.dataset.refreshedAt = new Date().toISOString();
        }
      })
      .catch(() => { /* the network blinked: the next round tries again */ });
  }

  function drawPlots() {
    if (!window.Plotly) { return; }
    document.querySelectorAll("[data-figure]").forEach((el) => {
      const data = document.getElementById(el.dataset.figure);
      if (!data) { return; }
      const figure = JSON.parse(data.textContent);
      window.Plotly.newPlot(el, figure.data, figure.layout, { responsive: true, displayModeBar: false });
    });
  }

  document.addEventListener("DOMContentLoaded", () => {
    const period = Number(document.body.dataset.refreshMs) || 5000;
    document.querySelectorAll("[data-refresh]").forEach((el) => {
      setInterval(() => { if (!document.hidden) { refresh(el); } }, period);
    });
    drawPlots();
  });
})();
