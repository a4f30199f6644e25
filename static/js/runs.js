// Runs pages: the config form's Form/YAML tabs and reward rows, keeping <details> open across
// the run page's HTMX refreshes, and the list's filters that apply on change. The server stays
// the source of truth: this script only says which view was edited last (the hidden `source`
// input) and adds or removes rows.
(function () {
  "use strict";
  document.documentElement.classList.add("js");

  function setupConfigForm(form) {
    var source = form.querySelector("[data-config-source]");
    var tabs = form.querySelectorAll("[data-tab]");
    var panels = form.querySelectorAll("[data-panel]");

    function show(name) {
      tabs.forEach(function (tab) {
        var active = tab.dataset.tab === name;
        tab.classList.toggle("active", active);
        tab.setAttribute("aria-selected", active ? "true" : "false");
      });
      panels.forEach(function (panel) { panel.hidden = panel.dataset.panel !== name; });
    }
    var tabInput = form.querySelector("[data-config-tab]");
    tabs.forEach(function (tab) {
      tab.addEventListener("click", function () {
        show(tab.dataset.tab);
        if (tabInput) tabInput.value = tab.dataset.tab;  // the server re-renders this tab
      });
    });
    show(form.dataset.activeTab || "form");

    // An error in the summary links to its input: show the Form tab, unfold, focus the input.
    form.addEventListener("click", function (event) {
      var link = event.target.closest("[data-error-link]");
      if (!link) return;
      var target = document.getElementById(link.dataset.errorLink);
      if (!target) return;
      event.preventDefault();
      show("form");
      if (tabInput) tabInput.value = "form";
      for (var node = target.parentElement; node; node = node.parentElement) {
        if (node.tagName === "DETAILS") node.open = true;
      }
      var field = target.matches("input, select, textarea") ? target : target.querySelector("input, select, textarea");
      target.scrollIntoView({ block: "center" });
      if (field) field.focus({ preventScroll: true });
      var box = (field || target).closest(".cfg-field");
      if (box) {
        box.classList.add("is-target");
        window.setTimeout(function () { box.classList.remove("is-target"); }, 2000);
      }
    });

    // What the last action did (errors, "Config is valid", the preset loaded) sits atop the
    // form: bring it into view, below the presets, and move the focus there.
    var notice = form.querySelector("[data-form-notice]");
    if (notice) {
      notice.scrollIntoView({ block: "start" });
      notice.focus({ preventScroll: true });
      if (notice.dataset.formNotice === "preset") {
        form.classList.add("flash");
        window.setTimeout(function () { form.classList.remove("flash"); }, 1700);
      }
    }

    form.addEventListener("input", function (event) {
      var inYaml = event.target.matches("[data-config-yaml]");
      if (event.target.name === "name") return;
      source.value = inYaml ? "yaml" : "form";
    });
    form.addEventListener("change", function (event) {
      if (event.target.matches("[data-config-yaml]") || event.target.name === "name") return;
      if (event.target.closest("[data-panel='form']")) source.value = "form";
    });

    form.addEventListener("click", function (event) {
      var add = event.target.closest("[data-add-row]");
      var remove = event.target.closest("[data-remove-row]");
      if (add) addRow(add.closest("[data-rows]"));
      if (remove) {
        var row = remove.closest("[data-row]");
        var body = row.parentNode;
        if (body.querySelectorAll("[data-row]").length > 1) row.remove();
        else row.querySelectorAll("input, textarea").forEach(function (el) { el.value = ""; });
        source.value = "form";
      }
    });
  }

  function addRow(fieldset) {
    var body = fieldset.querySelector("[data-rows-body]");
    var template = body.querySelector("[data-blank-row]") || body.querySelector("[data-row]");
    var index = parseInt(fieldset.dataset.nextIndex || "0", 10) + 1;
    fieldset.dataset.nextIndex = String(index);
    var prefix = fieldset.dataset.rows + ".";
    var row = template.cloneNode(true);
    row.removeAttribute("data-blank-row");
    row.querySelectorAll("[name]").forEach(function (el) {
      var rest = el.name.slice(prefix.length).split(".");
      rest[0] = String(index + 1000);  // any unused index: the server renumbers rows
      el.name = prefix + rest.join(".");
      el.id = "cfg-" + el.name.replace(/\./g, "-");
      if (el.type === "checkbox") el.checked = false;
      else if (el.tagName !== "SELECT") el.value = "";
      el.removeAttribute("aria-invalid");
    });
    row.querySelectorAll(".field-error").forEach(function (el) { el.remove(); });
    body.appendChild(row);
    var first = row.querySelector("input, select, textarea");
    if (first) first.focus();
  }

  // The run page's live section is replaced every few seconds: keep open <details> open.
  var openDetails = {};
  // Logs scrolled to their end stay at the end as lines arrive (tail -f); a log scrolled up to
  // read stays where it is.
  var logAtEnd = {};
  var liveStatus = (document.getElementById("run-live") || {}).dataset;
  liveStatus = liveStatus ? liveStatus.status : null;
  document.addEventListener("htmx:beforeSwap", function (event) {
    event.detail.target.querySelectorAll("details[data-keep-open]").forEach(function (el) {
      openDetails[el.dataset.keepOpen] = el.open;
    });
    event.detail.target.querySelectorAll("pre[data-log]").forEach(function (el) {
      logAtEnd[el.dataset.log] = el.scrollHeight - el.scrollTop - el.clientHeight < 8;
    });
  });
  document.addEventListener("htmx:afterSwap", function () {
    document.querySelectorAll("details[data-keep-open]").forEach(function (el) {
      if (el.dataset.keepOpen in openDetails) el.open = openDetails[el.dataset.keepOpen];
    });
    scrollLogsToEnd();
    // A banner such as "Launched run #4." speaks of the moment it was made: once the run's
    // status moves on, drop it rather than leave it beside a finished run.
    var live = document.getElementById("run-live");
    if (live && liveStatus && live.dataset.status !== liveStatus) {
      document.querySelectorAll("ul.messages").forEach(function (el) { el.remove(); });
      liveStatus = live.dataset.status;
    }
  });
  function scrollLogsToEnd() {
    document.querySelectorAll("pre[data-log]").forEach(function (el) {
      if (logAtEnd[el.dataset.log] !== false) el.scrollTop = el.scrollHeight;
    });
  }
  scrollLogsToEnd();

  // The runs list: tick runs, then "Compare" opens them together (the count says how many).
  function updateCompare() {
    var bar = document.querySelector("[data-compare-bar]");
    if (!bar) return;
    var ticked = document.querySelectorAll("[data-compare-choice]:checked").length;
    bar.querySelector("[data-compare-count]").textContent = ticked ? ticked + " selected" : "";
    bar.querySelector("button").disabled = ticked < 1;
  }
  document.addEventListener("change", function (event) {
    if (event.target.matches("[data-compare-choice]")) updateCompare();
  });
  document.addEventListener("htmx:afterSettle", updateCompare);
  updateCompare();

  // Filters that apply as soon as they change (the runs list's status and stage selects).
  document.addEventListener("change", function (event) {
    if (event.target.matches("[data-autosubmit]")) event.target.form.submit();
  });

  document.addEventListener("submit", function (event) {
    var button = event.submitter;
    if (button && button.dataset.action === "cancel" && !window.confirm("Cancel this run? It saves a checkpoint and stops.")) {
      event.preventDefault();
    }
  });

  document.querySelectorAll("[data-config-form]").forEach(setupConfigForm);
})();
