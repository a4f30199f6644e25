/* Trace pages: the prompt-over-time chart (response length and reflection words per step),
 * and the keyboard shortcuts of the trace page's previous / next links.
 * Chart data comes from a json_script element; Plotly sets text as text, never as HTML. */
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

  // Trace page: j / → opens the next trace of the list, k / ← the previous one (the links
  // carry the list's filters). Keys typed into a field, or with a modifier, are left alone.
  var PAGER_KEYS = { j: "[data-trace-next]", ArrowRight: "[data-trace-next]",
    k: "[data-trace-prev]", ArrowLeft: "[data-trace-prev]" };

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
    document.querySelectorAll(".over-time-chart").forEach(overTimeChart);
    if (document.querySelector("[data-trace-pager]")) document.addEventListener("keydown", onPagerKey);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
