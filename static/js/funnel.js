/* The funnel of a curated dataset version (templates/curation/_funnel.html).
 *
 * Data: the figure's data-funnel names a JSON data island (json_script) holding the version's
 * funnel, [{step, rows_in, rows_out, dropped, added}]. Drawn as horizontal stacked bars, one
 * per step from top to bottom under an "input" bar: the rows a step kept, the rows it added (a
 * mix, or a generate run's samples) and the rows it dropped. With data-dropped-url, a click on
 * a dropped bar opens that step's dropped rows (the URL ends in the reason filter's "=").
 * Step names reach Plotly with "<" replaced, so they are never read as markup.
 */
(function () {
  "use strict";
  if (window.R1Funnel) return;

  var CONFIG = { displaylogo: false, showLink: false, sendData: false, showSendToCloud: false,
    showEditInChartStudio: false, responsive: true,
    modeBarButtonsToRemove: ["lasso2d", "select2d", "sendDataToCloud", "editInChartStudio"] };
  var KEPT = "#3553d1", ADDED = "#1f8a4c", DROPPED = "#d1495b";

  function label(text) { return String(text).replace(/</g, "‹"); }
  function count(n) { return Number(n || 0).toLocaleString(); }

  /* Each step's counts, filling in what an older funnel lacks: dropped = in - out + added. */
  function steps(funnel) {
    return funnel.map(function (s) {
      var added = Number(s.added || 0);
      var dropped = s.dropped !== undefined ? Number(s.dropped)
        : Math.max(0, Number(s.rows_in) - Number(s.rows_out) + added);
      return { step: String(s.step), rowsIn: Number(s.rows_in), rowsOut: Number(s.rows_out),
        dropped: dropped, added: added };
    });
  }

  function traces(items) {
    var names = ["input"].concat(items.map(function (s) { return label(s.step); }));
    var first = items.length ? items[0].rowsIn : 0;
    var kept = [first].concat(items.map(function (s) { return s.rowsOut - s.added; }));
    var added = [0].concat(items.map(function (s) { return s.added; }));
    var dropped = [0].concat(items.map(function (s) { return s.dropped; }));
    var hover = [count(first) + " rows in"].concat(items.map(function (s) {
      var text = count(s.rowsIn) + " in → " + count(s.rowsOut) + " out";
      if (s.dropped) text += "<br>" + count(s.dropped) + " dropped";
      if (s.added) text += "<br>" + count(s.added) + " added";
      return text;
    }));
    var reasons = [""].concat(items.map(function (s) { return s.step; }));
    function bar(name, values, color) {
      return { type: "bar", orientation: "h", name: name, y: names, x: values,
        marker: { color: color }, customdata: reasons, text: hover, hoverinfo: "text+name",
        textposition: "none" };
    }
    var out = [bar("kept", kept, KEPT)];
    if (added.some(function (n) { return n > 0; })) out.push(bar("added", added, ADDED));
    out.push(bar("dropped", dropped, DROPPED));
    return out;
  }

  function draw(fig) {
    var island = document.getElementById(fig.dataset.funnel);
    var plot = fig.querySelector("[data-funnel-plot]");
    if (!island || !plot) return;
    var items = steps(JSON.parse(island.textContent) || []);
    var layout = {
      barmode: "stack", height: 90 + 30 * (items.length + 1),
      margin: { l: 10, r: 15, t: 10, b: 40 },
      xaxis: { title: { text: "rows" }, zeroline: false, automargin: true },
      yaxis: { autorange: "reversed", automargin: true, type: "category" },
      legend: { orientation: "h", x: 0, xanchor: "left", y: 1.02, yanchor: "bottom" },
      hovermode: "closest",
    };
    Plotly.react(plot, traces(items), layout, CONFIG);
    var url = fig.dataset.droppedUrl;
    if (url && plot.on) {
      plot.on("plotly_click", function (event) {
        var point = event && event.points && event.points[0];
        if (point && point.data.name === "dropped" && point.customdata && point.x > 0) {
          window.location.href = url + encodeURIComponent(point.customdata);
        }
      });
    }
  }

  function init(scope) {
    if (typeof Plotly === "undefined") return;
    (scope || document).querySelectorAll(".curation-funnel:not([data-ready])").forEach(function (fig) {
      fig.dataset.ready = "1";
      draw(fig);
    });
  }

  window.R1Funnel = { init: init, steps: steps, traces: traces };
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", function () { init(); });
  else init();
  document.addEventListener("htmx:load", function (e) { init(e.target); });
})();
