/* Dataset pages: the version page's length histograms, and the row page's keyboard shortcuts.
 * Histograms are binned on the server (`[[start, rows], ...]` with a bin width, in the
 * json_script element #length-histograms); this only draws them. Plotly sets text as text. */
(function () {
  "use strict";

  var CONFIG = { displaylogo: false, showLink: false, sendData: false, showSendToCloud: false,
    showEditInChartStudio: false, responsive: true,
    modeBarButtonsToRemove: ["lasso2d", "select2d", "sendDataToCloud", "editInChartStudio"] };

  function histograms() {
    var source = document.getElementById("length-histograms");
    if (!source || typeof Plotly === "undefined") return;
    var data = JSON.parse(source.textContent);
    document.querySelectorAll("[data-histogram]").forEach(function (figure) {
      var h = data[Number(figure.dataset.histogram)];
      var plot = figure.querySelector("[data-plot]");
      if (!h || !plot) return;
      var x = h.bins.map(function (b) { return b[0] + h.width / 2; });
      var y = h.bins.map(function (b) { return b[1]; });
      var text = h.bins.map(function (b) { return b[0] + "–" + (b[0] + h.width - 1) + " chars"; });
      Plotly.newPlot(plot, [{ type: "bar", x: x, y: y, width: h.width * 0.95, text: text,
        hovertemplate: "%{text}<br>%{y} rows<extra></extra>", textposition: "none",
        marker: { color: "#3553d1" } }], {
        height: 220, margin: { l: 50, r: 10, t: 10, b: 40 }, bargap: 0,
        xaxis: { title: { text: "characters" }, zeroline: false },
        yaxis: { title: { text: "rows" }, rangemode: "tozero" },
      }, CONFIG);
      figure.dataset.drawn = "true";
    });
  }

  // Row page: j / → the next row of the table, k / ← the previous one (the links carry the
  // table's filters). Keys typed into a field, or with a modifier, are left alone.
  var PAGER_KEYS = { j: "[data-row-next]", ArrowRight: "[data-row-next]",
    k: "[data-row-prev]", ArrowLeft: "[data-row-prev]" };

  function onPagerKey(event) {
    var selector = PAGER_KEYS[event.key];
    if (!selector || event.defaultPrevented) return;
    if (event.altKey || event.ctrlKey || event.metaKey || event.shiftKey) return;
    var target = event.target;
    if (target && (target.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName))) return;
    var link = document.querySelector(selector);
    if (!link) return;
    event.preventDefault();
    window.location.assign(link.href);
  }

  function init() {
    histograms();
    if (document.querySelector("[data-row-pager]")) document.addEventListener("keydown", onPagerKey);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
