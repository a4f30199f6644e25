/* Trace pages: the prompt-over-time chart (response length and reflection words per step).
 * Data comes from a json_script element; Plotly sets text as text, never as HTML. */
(function () {
  "use strict";

  function overTimeChart(el) {
    var source = document.getElementById(el.dataset.chartId);
    if (!source || typeof Plotly === "undefined") return;
    var data = JSON.parse(source.textContent);
    var traces = [
      { x: data.steps, y: data.length, name: "mean length (chars)", mode: "lines+markers",
        line: { color: "#3553d1" } },
      { x: data.steps, y: data.reflections, name: "reflection words / completion",
        mode: "lines+markers", yaxis: "y2", line: { color: "#b7791f" } },
    ];
    var layout = {
      height: 260, margin: { l: 50, r: 50, t: 10, b: 40 },
      xaxis: { title: { text: "step" } },
      yaxis: { title: { text: "length" }, rangemode: "tozero" },
      yaxis2: { title: { text: "reflections" }, overlaying: "y", side: "right", rangemode: "tozero" },
      legend: { orientation: "h", y: -0.25 },
    };
    Plotly.newPlot(el, traces, layout, { displaylogo: false, showLink: false, sendData: false,
      showSendToCloud: false, showEditInChartStudio: false, responsive: true,
      modeBarButtonsToRemove: ["sendDataToCloud", "editInChartStudio"] });
  }

  function init() {
    document.querySelectorAll(".over-time-chart").forEach(overTimeChart);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
