/* The Benchmarks page: pass@1 over checkpoint steps for each benchmark, one line per run that
 * trained the evaluated model. Data comes from a json_script element ({benchmark, lines:
 * [{label, steps, values}], references: [{label, value}]}); drawing reuses charts.js (layout,
 * traces, the offline config). References (the paper's reported pass@1) are dotted horizontal
 * lines across the plot, labelled at their right end. */
(function () {
  "use strict";

  function draw(fig) {
    var source = document.getElementById(fig.dataset.benchmarkChart);
    if (!source || typeof Plotly === "undefined" || !window.R1Charts) return;
    var data = JSON.parse(source.textContent);
    var plot = fig.querySelector("[data-plot]");
    var box = fig.querySelector("[data-log-y]");
    var render = function () {
      var layout = R1Charts.layoutFor(data.lines.length, { y_title: "pass@1" }, box && box.checked);
      layout.xaxis.title.text = "checkpoint step";
      layout.hovermode = "closest";
      addReferences(layout, data.references || [], data.lines, box && box.checked);
      Plotly.react(plot, R1Charts.plotTraces(data.lines, 0), layout, R1Charts.CONFIG);
    };
    if (box) box.addEventListener("change", render);
    render();
  }

  /* Plotly reads annotation text as a small HTML subset: keep the labels plain text. */
  function plain(text) { return String(text).replace(/</g, "‹").replace(/>/g, "›"); }

  /* Labels of lines closer than this share of the y range move left, so none overlap. */
  var LABEL_GAP = 0.05;
  var LABEL_SLOTS = [1, 0.75, 0.5, 0.25, 0];

  function addReferences(layout, refs, lines, logY) {
    layout.shapes = [];
    layout.annotations = [];
    var placed = [];
    refs.slice().sort(function (a, b) { return b.value - a.value; }).forEach(function (ref) {
      if (logY && ref.value <= 0) return;
      layout.shapes.push({ type: "line", xref: "paper", x0: 0, x1: 1, yref: "y",
        y0: ref.value, y1: ref.value, line: { color: "#8a94a6", width: 1, dash: "dot" } });
      var slot = LABEL_SLOTS.find(function (x) {
        return !placed.some(function (p) { return p.x === x && Math.abs(p.y - ref.value) < LABEL_GAP; });
      });
      if (slot === undefined) slot = LABEL_SLOTS[0];
      placed.push({ x: slot, y: ref.value });
      layout.annotations.push({ xref: "paper", x: slot, xanchor: slot > 0 ? "right" : "left",
        yref: "y", y: ref.value, yanchor: "bottom", showarrow: false,
        font: { size: 10, color: "#5c677d" },
        text: plain(ref.label) + " " + (ref.value * 100).toFixed(1) });
    });
    if (refs.length) {
      var top = 0;
      refs.forEach(function (r) { top = Math.max(top, r.value); });
      lines.forEach(function (line) {
        line.values.forEach(function (v) { if (v !== null && isFinite(v)) top = Math.max(top, v); });
      });
      layout.yaxis.rangemode = "tozero";
      if (!logY) layout.yaxis.range = [0, Math.min(1.05, Math.max(top + 0.05, 0.1))];
    }
  }

  function init() {
    document.querySelectorAll("[data-benchmark-chart]").forEach(draw);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
