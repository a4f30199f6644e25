/* The Benchmarks page: pass@1 over checkpoint steps for each benchmark, one line per run that
 * trained the evaluated model. Data comes from a json_script element ({benchmark, lines:
 * [{label, steps, values}]}); drawing reuses charts.js (layout, traces, the offline config). */
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
      Plotly.react(plot, R1Charts.plotTraces(data.lines, 0), layout, R1Charts.CONFIG);
    };
    if (box) box.addEventListener("change", render);
    render();
  }

  function init() {
    document.querySelectorAll("[data-benchmark-chart]").forEach(draw);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
