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
    tabs.forEach(function (tab) {
      tab.addEventListener("click", function () { show(tab.dataset.tab); });
    });
    show("form");

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
  document.addEventListener("htmx:beforeSwap", function (event) {
    event.detail.target.querySelectorAll("details[data-keep-open]").forEach(function (el) {
      openDetails[el.dataset.keepOpen] = el.open;
    });
  });
  document.addEventListener("htmx:afterSwap", function () {
    document.querySelectorAll("details[data-keep-open]").forEach(function (el) {
      if (el.dataset.keepOpen in openDetails) el.open = openDetails[el.dataset.keepOpen];
    });
  });

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
