/* Metric charts: the run page's panels (live over SSE) and the compare page.
 *
 * Data: GET <series-url>?max_points=<chart width in device pixels> returns every series of the
 * run, downsampled on the server (MinMaxLTTB, extremes kept) with "shown of total" counts.
 * Smoothing is done here, with TensorBoard's debiased EMA (the same formula as
 * r1studio.metrics.storage.ema), so the slider redraws without a round trip.
 * Live: an EventSource on <stream-url>?after=<last step> receives `update` events
 * ({metrics: {name: [[step, value], ...]}, status, step, progress, ...}) and extends the traces
 * with Plotly.extendTraces; `status` means the run ended. Each update is re-dispatched on
 * window as the "r1:run-update" CustomEvent (and "r1:run-status" at the end) so the run page
 * can refresh its progress bar without opening a second stream.
 * Text from the server is only ever set with textContent.
 */
(function () {
  "use strict";
  if (window.R1Charts) return;

  var COLORS = ["#3553d1", "#d1495b", "#1f8a4c", "#b7791f", "#7c5cc4", "#0f8b8d",
    "#e07a5f", "#5c677d", "#c06c84", "#2a9d8f"];
  var SMOOTHING_KEY = "r1studio.smoothing";

  function ema(values, weight) {
    var out = new Array(values.length), last = 0, count = 0;
    for (var i = 0; i < values.length; i++) {
      var v = values[i];
      if (v === null || !isFinite(v)) { out[i] = null; continue; }
      count += 1;
      last = last * weight + (1 - weight) * v;
      out[i] = last / (1 - Math.pow(weight, count));
    }
    return out;
  }

  function label(text) { return String(text).replace(/</g, "‹"); }

  function maxPoints(el) {
    var width = (el && el.clientWidth) || 600;
    return Math.max(200, Math.min(4000, Math.round(width * (window.devicePixelRatio || 1))));
  }

  /* Plotly draws a constant series (a fixed learning rate) around 0 on a -1..1 axis:
   * centre it on its value instead. */
  function flatRange(lines) {
    var lo = Infinity, hi = -Infinity;
    lines.forEach(function (line) {
      line.values.forEach(function (v) {
        if (v !== null && isFinite(v)) { if (v < lo) lo = v; if (v > hi) hi = v; }
      });
    });
    if (lo !== hi || !isFinite(lo)) return null;
    var pad = Math.abs(lo) * 0.5 || 1;
    return [lo - pad, lo + pad];
  }

  function layoutFor(count) {
    return {
      height: 260, margin: { l: 55, r: 15, t: 10, b: 35 },
      xaxis: { title: { text: "step" }, zeroline: false },
      yaxis: { zeroline: false, exponentformat: "e" },
      showlegend: count > 1, legend: { orientation: "h", y: -0.28, font: { size: 11 } },
      hovermode: "x unified", uirevision: "keep",
    };
  }
  var CONFIG = { displaylogo: false, responsive: true, modeBarButtonsToRemove: ["lasso2d", "select2d"] };

  function countText(lines) {
    var shown = 0, total = 0;
    lines.forEach(function (s) { shown += s.shown; total += s.total; });
    return shown.toLocaleString() + " of " + total.toLocaleString() + " points";
  }

  /* Plotly traces for lines [{label, steps, values}] at a smoothing weight: raw lines fade
   * behind their smoothed copies. Two traces per line when smoothing, else one. */
  function plotTraces(lines, smoothing) {
    var traces = [];
    lines.forEach(function (line, i) {
      var color = COLORS[i % COLORS.length];
      traces.push({ x: line.steps.slice(), y: line.values.slice(), name: label(line.label),
        mode: line.steps.length === 1 ? "markers" : "lines", type: "scatter",
        line: { color: color, width: 1.5 }, marker: { color: color },
        opacity: smoothing > 0 ? 0.3 : 1, showlegend: smoothing === 0, hoverinfo: "x+y+name" });
      if (smoothing > 0) {
        traces.push({ x: line.steps.slice(), y: ema(line.values, smoothing), name: label(line.label),
          mode: "lines", type: "scatter", line: { color: color, width: 2 } });
      }
    });
    return traces;
  }

  function bindSmoothing(root, onChange) {
    var input = root.querySelector("[data-smoothing]");
    var output = root.querySelector("[data-smoothing-value]");
    var saved = parseFloat(window.localStorage.getItem(SMOOTHING_KEY) || "0");
    var value = isFinite(saved) && saved >= 0 && saved < 1 ? saved : 0;
    if (input) {
      input.value = String(value);
      if (output) output.textContent = value.toFixed(2);
      input.addEventListener("input", function () {
        value = parseFloat(input.value) || 0;
        if (output) output.textContent = value.toFixed(2);
        window.localStorage.setItem(SMOOTHING_KEY, String(value));
        onChange(value);
      });
    }
    return value;
  }

  /* ---- the run page ---------------------------------------------------------------------- */
  function RunPanels(root) {
    this.root = root;
    this.spec = JSON.parse(document.getElementById(root.dataset.specId).textContent);
    this.patterns = this.spec.map(function (p) {
      return p.patterns.map(function (re) { return new RegExp(re); });
    });
    this.series = {};   // name -> {steps, values, shown, total}
    this.panels = {};   // key -> {el, plot, count, names}
    this.lastStep = null;
    this.grid = root.querySelector("[data-grid]");
    var self = this;
    this.smoothing = bindSmoothing(root, function (v) { self.smoothing = v; self.redrawAll(); });
    root.querySelectorAll("[data-panel]").forEach(function (el) {
      self.panels[el.dataset.panel] = { el: el, plot: el.querySelector("[data-plot]"),
        count: el.querySelector("[data-count]"), names: [], drawn: false };
    });
  }

  RunPanels.prototype.panelKey = function (name) {
    for (var i = 0; i < this.spec.length; i++) {
      if (this.patterns[i].some(function (re) { return re.test(name); })) return this.spec[i].key;
    }
    return null;
  };

  RunPanels.prototype.ensurePanel = function (key) {
    if (this.panels[key]) return this.panels[key];
    var spec = this.spec.find(function (p) { return p.key === key; });
    var fig = document.createElement("figure");
    fig.className = "panel";
    fig.dataset.panel = key;
    var cap = document.createElement("figcaption");
    var title = document.createElement("span");
    title.className = "panel-title";
    title.textContent = spec.title;
    title.title = spec.help || "";
    var count = document.createElement("span");
    count.className = "panel-count";
    count.setAttribute("data-count", "");
    cap.appendChild(title);
    cap.appendChild(document.createTextNode(" "));
    cap.appendChild(count);
    var plot = document.createElement("div");
    plot.className = "panel-plot";
    plot.setAttribute("data-plot", "");
    fig.appendChild(cap);
    fig.appendChild(plot);
    // keep the server's panel order
    var order = this.spec.map(function (p) { return p.key; });
    var before = null;
    var existing = this.grid.querySelectorAll("[data-panel]");
    for (var i = 0; i < existing.length; i++) {
      if (order.indexOf(existing[i].dataset.panel) > order.indexOf(key)) { before = existing[i]; break; }
    }
    this.grid.insertBefore(fig, before);
    var empty = this.root.querySelector("[data-empty]");
    if (empty) empty.hidden = true;
    this.panels[key] = { el: fig, plot: plot, count: count, names: [], drawn: false };
    return this.panels[key];
  };

  RunPanels.prototype.addName = function (name) {
    var key = this.panelKey(name);
    if (!key) return null;
    var panel = this.ensurePanel(key);
    if (panel.names.indexOf(name) < 0) {
      panel.names.push(name);
      panel.names.sort();
      panel.drawn = false;
    }
    return panel;
  };

  RunPanels.prototype.draw = function (panel) {
    var self = this;
    var lines = panel.names.map(function (n) {
      var s = self.series[n];
      return { label: n, steps: s.steps, values: s.values, shown: s.shown, total: s.total };
    });
    var layout = layoutFor(lines.length);
    var flat = flatRange(lines);
    if (flat) layout.yaxis.range = flat;
    panel.flat = !!flat;
    Plotly.react(panel.plot, plotTraces(lines, this.smoothing), layout, CONFIG);
    panel.count.textContent = countText(lines);
    panel.drawn = true;
  };

  RunPanels.prototype.redrawAll = function () {
    var self = this;
    Object.keys(this.panels).forEach(function (k) {
      if (self.panels[k].names.length) self.draw(self.panels[k]);
    });
  };

  RunPanels.prototype.load = function () {
    var self = this;
    var url = this.root.dataset.seriesUrl + "?max_points=" + Math.round(maxPoints(this.grid) / 2);
    return fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) { if (!r.ok) throw new Error("HTTP " + r.status); return r.json(); })
      .then(function (data) {
        data.series.forEach(function (s) {
          self.series[s.name] = { steps: s.steps, values: s.values, shown: s.shown, total: s.total };
          self.addName(s.name);
        });
        self.lastStep = data.last_step;
        self.redrawAll();
        if (self.root.dataset.live === "true") self.connect();
      })
      .catch(function (err) { self.setState("could not load the charts (" + err.message + ")"); });
  };

  RunPanels.prototype.setState = function (text) {
    var el = this.root.querySelector("[data-live-state]");
    if (el) el.textContent = text;
  };

  RunPanels.prototype.connect = function () {
    var self = this;
    var url = this.root.dataset.streamUrl + (this.lastStep !== null ? "?after=" + this.lastStep : "");
    var source = new EventSource(url);
    this.source = source;
    source.addEventListener("open", function () { self.setState("● live"); });
    source.addEventListener("error", function () {
      if (source.readyState !== EventSource.CLOSED) self.setState("reconnecting…");
    });
    source.addEventListener("update", function (e) { self.onUpdate(JSON.parse(e.data)); });
    source.addEventListener("status", function (e) {
      source.close();
      var state = JSON.parse(e.data);
      self.setState("run " + state.status);
      window.dispatchEvent(new CustomEvent("r1:run-status", { detail: state }));
    });
  };

  RunPanels.prototype.onUpdate = function (payload) {
    var self = this;
    var touched = {};
    Object.keys(payload.metrics || {}).forEach(function (name) {
      var s = self.series[name];
      if (!s) s = self.series[name] = { steps: [], values: [], shown: 0, total: 0 };
      var last = s.steps.length ? s.steps[s.steps.length - 1] : -Infinity;
      var fresh = payload.metrics[name].filter(function (p) { return p[0] > last; });
      if (!fresh.length) return;
      var panel = self.addName(name);
      if (!panel) { fresh.forEach(function (p) { s.steps.push(p[0]); s.values.push(p[1]); }); return; }
      var key = panel.el.dataset.panel;
      touched[key] = touched[key] || {};
      touched[key][name] = fresh;
      fresh.forEach(function (p) {
        s.steps.push(p[0]); s.values.push(p[1]);
        if (self.lastStep === null || p[0] > self.lastStep) self.lastStep = p[0];
      });
      s.shown += fresh.length;
      s.total += fresh.length;
    });
    Object.keys(touched).forEach(function (key) { self.extend(self.panels[key], touched[key]); });
    window.dispatchEvent(new CustomEvent("r1:run-update", { detail: payload }));
  };

  /* Append the fresh points to the panel's traces; a new series or smoothing redraws. */
  RunPanels.prototype.extend = function (panel, freshByName) {
    var self = this;
    var sparse = panel.names.some(function (n) {
      var fresh = freshByName[n];
      return fresh && self.series[n].steps.length - fresh.length < 2;
    });
    if (!panel.drawn || panel.flat || this.smoothing > 0 || sparse) { this.draw(panel); return; }
    var xs = [], ys = [], idx = [];
    panel.names.forEach(function (name, i) {
      var fresh = freshByName[name];
      if (!fresh) return;
      xs.push(fresh.map(function (p) { return p[0]; }));
      ys.push(fresh.map(function (p) { return p[1]; }));
      idx.push(i);
    });
    if (idx.length) Plotly.extendTraces(panel.plot, { x: xs, y: ys }, idx);
    panel.count.textContent = countText(panel.names.map(function (n) { return self.series[n]; }));
  };

  /* ---- the compare page ------------------------------------------------------------------ */
  function Compare(root) {
    this.root = root;
    this.spec = JSON.parse(document.getElementById(root.dataset.specId).textContent);
    this.fig = root.querySelector("[data-panel]");
    this.lines = [];
    var self = this;
    this.smoothing = bindSmoothing(root, function (v) { self.smoothing = v; self.draw(); });
  }

  Compare.prototype.load = function () {
    if (!this.fig) return Promise.resolve();
    var self = this;
    var mp = maxPoints(this.fig);
    var requests = this.spec.series.map(function (entry) {
      var url = entry.url + "?max_points=" + mp + "&names=" + encodeURIComponent(entry.names.join(","));
      return fetch(url, { credentials: "same-origin" }).then(function (r) { return r.json(); })
        .then(function (data) {
          return data.series.map(function (s) {
            var name = entry.names.length > 1 ? entry.label + " · " + s.name : entry.label;
            return { label: name, steps: s.steps, values: s.values, shown: s.shown, total: s.total };
          });
        });
    });
    return Promise.all(requests).then(function (groups) {
      self.lines = [].concat.apply([], groups);
      self.draw();
    });
  };

  Compare.prototype.draw = function () {
    if (!this.fig) return;
    var plot = this.fig.querySelector("[data-plot]");
    var layout = layoutFor(this.lines.length);
    layout.height = 420;
    Plotly.react(plot, plotTraces(this.lines, this.smoothing), layout, CONFIG);
    this.fig.querySelector("[data-count]").textContent = countText(this.lines);
  };

  function bindCompareForm(form) {
    form.addEventListener("submit", function () {
      var ids = [];
      form.querySelectorAll("[data-run-choice]:checked").forEach(function (c) { ids.push(c.value); });
      form.querySelector("[data-runs-field]").value = ids.join(",");
    });
  }

  function init(scope) {
    if (typeof Plotly === "undefined") return;
    (scope || document).querySelectorAll(".metric-panels:not([data-ready])").forEach(function (el) {
      el.dataset.ready = "1";
      new RunPanels(el).load();
    });
    (scope || document).querySelectorAll(".metric-compare:not([data-ready])").forEach(function (el) {
      el.dataset.ready = "1";
      new Compare(el).load();
    });
    (scope || document).querySelectorAll("[data-compare-form]").forEach(bindCompareForm);
  }

  window.R1Charts = { init: init, ema: ema, RunPanels: RunPanels };
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", function () { init(); });
  else init();
  document.addEventListener("htmx:load", function (e) { init(e.target); });
})();
