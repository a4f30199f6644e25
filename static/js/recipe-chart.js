/* The recipe page's headline chart: pass@1 of each stage's checkpoint along the recipe, one
 * line per benchmark (x: the stages in order). Data comes from a json_script element
 * ({x: [stage label], lines: [{label, values, se}]}); error bars show the standard error.
 * HTMX swaps the chart's card while the recipe runs: draw again on each htmx:load. */
(function () {
  "use strict";

  var COLORS = ["#3553d1", "#d1495b", "#1f8a4c", "#b7791f", "#7c5cc4", "#0f8b8d"];

  /* Plotly reads labels as a small HTML subset: stage and benchmark names stay plain text. */
  function plain(text) { return String(text).replace(/</g, "‹").replace(/>/g, "›"); }

  function draw(fig) {
    var source = document.getElementById(fig.dataset.passChart);
    var plot = fig.querySelector("[data-plot]");
    if (!source || !plot || typeof Plotly === "undefined") return;
    var data = JSON.parse(source.textContent);
    var x = data.x.map(plain);
    var traces = data.lines.map(function (line, i) {
      var color = COLORS[i % COLORS.length];
      return {
        x: x, y: line.values.slice(), name: plain(line.label), type: "scatter",
        mode: "lines+markers", connectgaps: true, line: { color: color, width: 2 },
        marker: { color: color, size: 8 },
        error_y: { type: "data", array: line.se.map(function (v) { return v === null ? 0 : v; }),
          visible: true, color: color, thickness: 1 },
        hovertemplate: "%{x}<br>pass@1 %{y:.1%}<extra>%{fullData.name}</extra>",
      };
    });
    var layout = {
      height: 300, margin: { l: 60, r: 15, t: 10, b: 80 },
      xaxis: { type: "category", categoryorder: "array", categoryarray: x, automargin: true },
      yaxis: { title: { text: "pass@1" }, tickformat: ".0%", range: [0, 1.05], zeroline: false },
      showlegend: data.lines.length > 0,
      legend: { orientation: "h", x: 0, y: 1.02, yanchor: "bottom" },
    };
    var config = { displaylogo: false, responsive: true, showLink: false, sendData: false,
      modeBarButtonsToRemove: ["lasso2d", "select2d"] };
    Plotly.react(plot, traces, layout, config);
  }

  function init(scope) {
    (scope || document).querySelectorAll("[data-pass-chart]").forEach(draw);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", function () { init(); });
  else init();
  document.addEventListener("htmx:load", function (e) { init(e.target); });
})();
