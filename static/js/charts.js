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
 * Panels: lines over steps, or (spec.chart "bars") one bar per series showing its last value,
 * with the spec.rate series as a percentage in the caption (a generate run's counts). Each
 * panel has a "log y" checkbox (its initial state is spec.log_y).
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

  /* The legend sits above the plot, clear of the x-axis title; margins grow to fit it. A
   * change of axis type resets the zoom (uirevision), so the log axis autoranges. */
  function layoutFor(count, spec, logY) {
    spec = spec || {};
    return {
      height: 260, margin: { l: 60, r: 15, t: 10, b: 40 },
      xaxis: { title: { text: spec.chart === "bars" ? "" : "step" }, zeroline: false, automargin: true },
      yaxis: { title: { text: spec.y_title || "" }, zeroline: false, exponentformat: "e",
        automargin: true, type: logY ? "log" : "linear" },
      showlegend: count > 1,
      legend: { orientation: "h", x: 0, xanchor: "left", y: 1.02, yanchor: "bottom", font: { size: 11 } },
      hovermode: spec.chart === "bars" ? "closest" : "x unified",
      uirevision: logY ? "log" : "linear",
    };
  }
  /* An offline tool: no Chart Studio links, no "send data" or cloud buttons. */
  var CONFIG = { displaylogo: false, showLink: false, sendData: false, showSendToCloud: false,
    showEditInChartStudio: false, responsive: true,
    modeBarButtonsToRemove: ["lasso2d", "select2d", "sendDataToCloud", "editInChartStudio"] };

  function countText(lines) {
    var shown = 0, total = 0;
    lines.forEach(function (s) { shown += s.shown; total += s.total; });
    return shown.toLocaleString() + " of " + total.toLocaleString() + " points";
  }

  /* Plotly traces for lines [{label, steps, values}] at a smoothing weight: raw lines fade
   * behind their smoothed copies ("reward" and "reward (smoothed)", one legend entry that
   * toggles both). Two traces per line when smoothing, else one. Sparse series (a benchmark
   * evaluated every N steps) get markers. */
  function plotTraces(lines, smoothing) {
    var traces = [];
    lines.forEach(function (line, i) {
      var color = COLORS[i % COLORS.length];
      var name = label(line.label);
      var mode = line.steps.length === 1 ? "markers" : line.steps.length <= 50 ? "lines+markers" : "lines";
      traces.push({ x: line.steps.slice(), y: line.values.slice(), name: name, legendgroup: name,
        mode: mode, type: "scatter", line: { color: color, width: 1.5 }, marker: { color: color, size: 5 },
        opacity: smoothing > 0 ? 0.3 : 1, showlegend: smoothing === 0, hoverinfo: "x+y+name" });
      if (smoothing > 0) {
        traces.push({ x: line.steps.slice(), y: ema(line.values, smoothing), name: name + " (smoothed)",
          legendgroup: name, mode: "lines", type: "scatter", line: { color: color, width: 2 } });
      }
    });
    return traces;
  }

  function lastValue(values) {
    for (var i = values.length - 1; i >= 0; i--) {
      if (values[i] !== null && isFinite(values[i])) return values[i];
    }
    return null;
  }

  /* "dropped/keep_correct" -> "dropped: keep_correct", "verifiers/accuracy/mean" -> "accuracy". */
  function barLabel(name) {
    var m = /^verifiers\/(.+)\/mean$/.exec(name);
    if (m) return m[1];
    return String(name).replace(/^dropped\//, "dropped: ");
  }

  function barColor(name) {
    if (/^dropped\//.test(name)) return "#d1495b";
    if (name === "kept") return "#1f8a4c";
    return "#5c677d";
  }

  function formatValue(v) {
    if (v === null) return "";
    return Number.isInteger(v) ? v.toLocaleString() : v.toPrecision(3);
  }

  /* Bar traces: groups [{label, names, values}] (values: each name's last value), one trace
   * per group; a single group colours its bars by meaning (dropped red, kept green). */
  function barTraces(groups) {
    return groups.map(function (group, i) {
      var single = groups.length === 1;
      return { type: "bar", name: label(group.label), x: group.names.map(barLabel),
        y: group.values, text: group.values.map(formatValue), textposition: "auto",
        hovertemplate: "%{x}: %{y}<extra>" + (single ? "" : label(group.label)) + "</extra>",
        marker: { color: single ? group.names.map(barColor) : COLORS[i % COLORS.length] } };
    });
  }

  function bindLogToggle(root, onChange) {
    root.addEventListener("change", function (e) {
      var box = e.target;
      if (!box.matches || !box.matches("[data-log-y]")) return;
      var fig = box.closest("[data-panel]");
      if (fig) onChange(fig.dataset.panel, box.checked);
    });
  }

  function logToggle(checked) {
    var wrap = document.createElement("label");
    wrap.className = "log-toggle";
    var box = document.createElement("input");
    box.type = "checkbox";
    box.setAttribute("data-log-y", "");
    box.checked = !!checked;
    wrap.appendChild(box);
    wrap.appendChild(document.createTextNode(" log y"));
    return wrap;
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
      var box = el.querySelector("[data-log-y]");
      self.panels[el.dataset.panel] = { el: el, plot: el.querySelector("[data-plot]"),
        count: el.querySelector("[data-count]"), rate: el.querySelector("[data-rate]"),
        names: [], drawn: false, logY: !!(box && box.checked) };
    });
    bindLogToggle(root, function (key, on) {
      var panel = self.panels[key];
      if (!panel) return;
      panel.logY = on;
      if (panel.names.length) self.draw(panel);
    });
  }

  RunPanels.prototype.specFor = function (key) {
    return this.spec.find(function (p) { return p.key === key; }) || {};
  };

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
    var rate = null;
    if (spec.rate) {
      rate = document.createElement("span");
      rate.className = "panel-rate";
      rate.setAttribute("data-rate", "");
      cap.appendChild(rate);
      cap.appendChild(document.createTextNode(" "));
    }
    cap.appendChild(count);
    cap.appendChild(logToggle(spec.log_y));
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
    this.panels[key] = { el: fig, plot: plot, count: count, rate: rate, names: [], drawn: false,
      logY: !!spec.log_y };
    return this.panels[key];
  };

  RunPanels.prototype.addName = function (name) {
    var key = this.panelKey(name);
    if (!key) return null;
    var panel = this.ensurePanel(key);
    if (panel.names.indexOf(name) < 0) {
      panel.names.push(name);
      var res = this.patterns[this.spec.indexOf(this.specFor(key))];
      var rank = function (n) { for (var i = 0; i < res.length; i++) if (res[i].test(n)) return i; return res.length; };
      panel.names.sort(function (a, b) { return rank(a) - rank(b) || (a < b ? -1 : a > b ? 1 : 0); });
      panel.drawn = false;
    }
    return panel;
  };

  RunPanels.prototype.draw = function (panel) {
    var self = this;
    var spec = this.specFor(panel.el.dataset.panel);
    if (spec.chart === "bars") { this.drawBars(panel, spec); return; }
    var lines = panel.names.map(function (n) {
      var s = self.series[n];
      return { label: n, steps: s.steps, values: s.values, shown: s.shown, total: s.total };
    });
    var layout = layoutFor(lines.length, spec, panel.logY);
    var flat = panel.logY ? null : flatRange(lines);
    if (flat) layout.yaxis.range = flat;
    panel.flat = !!flat;
    Plotly.react(panel.plot, plotTraces(lines, this.smoothing), layout, CONFIG);
    panel.count.textContent = countText(lines);
    panel.drawn = true;
  };

  RunPanels.prototype.drawBars = function (panel, spec) {
    var self = this;
    var names = panel.names.filter(function (n) { return n !== spec.rate; });
    var values = names.map(function (n) { return lastValue(self.series[n].values); });
    Plotly.react(panel.plot, barTraces([{ label: spec.title, names: names, values: values }]),
      layoutFor(1, spec, panel.logY), CONFIG);
    if (panel.rate && spec.rate && this.series[spec.rate]) {
      var rate = lastValue(this.series[spec.rate].values);
      panel.rate.textContent = rate === null ? "" : spec.rate.replace(/_/g, " ") + " " + (rate * 100).toFixed(1) + "%";
    }
    panel.count.textContent = "";
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
    var bars = this.specFor(panel.el.dataset.panel).chart === "bars";
    if (!panel.drawn || panel.flat || bars || this.smoothing > 0 || sparse) { this.draw(panel); return; }
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
    var box = this.fig && this.fig.querySelector("[data-log-y]");
    this.logY = !!(box && box.checked);
    var self = this;
    this.smoothing = bindSmoothing(root, function (v) { self.smoothing = v; self.draw(); });
    bindLogToggle(root, function (key, on) { self.logY = on; self.draw(); });
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
            return { label: name, run: entry.label, name: s.name, steps: s.steps, values: s.values,
              shown: s.shown, total: s.total };
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
    var spec = this.spec.chart ? this.spec : {};
    if (spec.chart === "bars") {
      var groups = {}, order = [];
      this.lines.forEach(function (line) {
        if (line.name === spec.rate) return;
        if (!groups[line.run]) { groups[line.run] = { label: line.run, names: [], values: [] }; order.push(line.run); }
        groups[line.run].names.push(line.name);
        groups[line.run].values.push(lastValue(line.values));
      });
      var bars = order.map(function (k) { return groups[k]; });
      var barLayout = layoutFor(bars.length, spec, this.logY);
      barLayout.height = 420;
      barLayout.barmode = "group";
      Plotly.react(plot, barTraces(bars), barLayout, CONFIG);
      this.fig.querySelector("[data-count]").textContent = "";
      return;
    }
    var layout = layoutFor(this.lines.length, spec, this.logY);
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

  window.R1Charts = { init: init, ema: ema, RunPanels: RunPanels, CONFIG: CONFIG, COLORS: COLORS,
    layoutFor: layoutFor, plotTraces: plotTraces };
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", function () { init(); });
  else init();
  document.addEventListener("htmx:load", function (e) { init(e.target); });
})();
