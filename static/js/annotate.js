/* The annotation view (templates/curation/annotation/label.html), keyboard first.
 *
 * a / r verdict, 1-5 rating, e edit (Esc leaves), Ctrl+Enter submit, s skip, g guidelines,
 * ? the list. Keys typed in a text box stay text, except Ctrl+Enter and Esc.
 * Drafts: every change is posted (debounced) to the draft URL with the label version the page
 * holds; the answer's version replaces it. A failed save is retried with backoff and the state
 * says so; a 409 shows the stored label beside ours and saves nothing until the annotator picks.
 * Time spent (page visible, someone active in the last few minutes) goes with each save.
 * Model text is only ever set with textContent: the diff builds <ins>/<del> elements itself.
 */
(function () {
  "use strict";

  var DRAFT_DELAY_MS = 600;
  var DIFF_DELAY_MS = 120;
  var IDLE_MS = 180000;
  var MAX_RETRY_MS = 15000;
  var MAX_EDITS = 1500; // Myers diff gives up past this many word edits: shows all-removed/added
  var CONTEXT_WORDS = 24; // words kept on each side of a change inside a long unchanged run

  var help = document.querySelector("[data-help]");

  function toggleHelp(show) {
    if (!help) return;
    help.hidden = show === undefined ? !help.hidden : !show;
  }

  document.querySelectorAll("[data-help-toggle]").forEach(function (button) {
    button.addEventListener("click", function () { toggleHelp(); });
  });

  var root = document.querySelector("[data-annotate]");
  if (!root) {
    document.addEventListener("keydown", function (event) {
      if (event.key === "?") toggleHelp();
      else if (event.key === "Escape") toggleHelp(false);
    });
    return;
  }

  var data = JSON.parse(document.getElementById("annotate-data").textContent);
  var form = document.querySelector("[data-label-form]");
  var versionInput = form.querySelector("[data-version]");
  var confirmInput = form.querySelector("[data-confirm]");
  var stateEl = document.querySelector("[data-save-state]");
  var flagEl = form.querySelector("[data-flag]");
  var errorEl = form.querySelector("[data-error]");
  var conflictEl = document.querySelector("[data-conflict]");
  var guideline = document.querySelector("[data-guideline]");

  var version = parseInt(versionInput.value, 10);
  var changeSeq = 0; // bumped on every change
  var savedSeq = 0; // the change the server has
  var inFlight = false;
  var submitting = false;
  var submitAfterSave = false;
  var inConflict = false;
  var leaving = false;
  var awaitingConfirm = !flagEl.hidden;
  var draftTimer = null;
  var retryTimer = null;
  var retryMs = 1000;

  // --- time spent ---------------------------------------------------------------------------
  var activeMs = 0;
  var lastTick = Date.now();
  var lastActivity = Date.now();

  function tick() {
    var now = Date.now();
    if (document.visibilityState === "visible" && now - lastActivity < IDLE_MS) {
      activeMs += now - lastTick;
    }
    lastTick = now;
  }
  setInterval(tick, 1000);
  ["keydown", "pointerdown", "pointermove", "input", "wheel"].forEach(function (name) {
    document.addEventListener(name, function () { lastActivity = Date.now(); }, { passive: true });
  });
  window.addEventListener("scroll", function () { lastActivity = Date.now(); }, { passive: true });
  document.addEventListener("visibilitychange", function () {
    tick();
    if (document.visibilityState === "hidden") flush();
  });

  function pendingSeconds() {
    tick();
    return Math.round(activeMs / 100) / 10;
  }

  function consumeSeconds(seconds) {
    activeMs = Math.max(0, activeMs - seconds * 1000);
  }

  // --- state line -----------------------------------------------------------------------------
  function setState(state, text) {
    if (!stateEl) return;
    stateEl.dataset.state = state;
    stateEl.textContent = text;
  }

  function showError(message) {
    errorEl.textContent = message;
    errorEl.hidden = !message;
  }

  function errorText(errors) {
    if (!errors) return "";
    return Object.keys(errors).map(function (name) {
      var value = errors[name];
      return Array.isArray(value) ? value.join(" ") : String(value);
    }).join(" ");
  }

  // --- requests -------------------------------------------------------------------------------
  function formBody(seconds, extra) {
    var body = new FormData(form); // includes the textareas tied to the form by form="..."
    body.set("version", String(version));
    body.set("seconds", String(seconds));
    Object.keys(extra || {}).forEach(function (name) { body.set(name, extra[name]); });
    return body;
  }

  function post(url, body, keepalive) {
    return fetch(url, {
      method: "POST",
      body: body,
      credentials: "same-origin",
      headers: { Accept: "application/json" },
      keepalive: !!keepalive,
    }).then(function (response) {
      if (response.redirected) throw new Error("signed out");
      return response.json().then(function (json) {
        return { status: response.status, json: json };
      }, function () {
        throw new Error("HTTP " + response.status);
      });
    });
  }

  // --- drafts ---------------------------------------------------------------------------------
  function changed() {
    changeSeq += 1;
    setState("dirty", "not saved yet");
    clearTimeout(draftTimer);
    draftTimer = setTimeout(saveDraft, DRAFT_DELAY_MS);
  }

  function saveDraft() {
    clearTimeout(draftTimer);
    clearTimeout(retryTimer);
    if (inFlight || submitting || inConflict || leaving || savedSeq === changeSeq) return;
    var seq = changeSeq;
    var seconds = pendingSeconds();
    inFlight = true;
    setState("saving", "saving…");
    post(data.urls.draft, formBody(seconds)).then(function (result) {
      inFlight = false;
      if (result.status === 200 && result.json.ok) {
        version = result.json.version;
        versionInput.value = String(version);
        savedSeq = Math.max(savedSeq, seq);
        consumeSeconds(seconds);
        retryMs = 1000;
        setState(savedSeq === changeSeq ? "saved" : "dirty", savedSeq === changeSeq ? "saved" : "not saved yet");
        if (submitAfterSave) {
          submitAfterSave = false;
          submit();
        } else if (savedSeq !== changeSeq) {
          draftTimer = setTimeout(saveDraft, DRAFT_DELAY_MS);
        }
      } else if (result.status === 409) {
        showConflict(result.json);
      } else if (result.status === 400) {
        setState("error", "not saved");
        showError(errorText(result.json.errors));
        submitAfterSave = false;
      } else {
        throw new Error("HTTP " + result.status);
      }
    }).catch(function () {
      inFlight = false;
      submitAfterSave = false;
      setState("retrying", "not saved, retrying");
      retryTimer = setTimeout(saveDraft, retryMs);
      retryMs = Math.min(retryMs * 2, MAX_RETRY_MS);
    });
  }

  function flush() {
    if (leaving || inFlight || submitting || inConflict || savedSeq === changeSeq) return;
    saveDraft();
  }

  window.addEventListener("online", function () {
    retryMs = 1000;
    saveDraft();
  });
  window.addEventListener("pagehide", function () {
    // The page is going: send what is left without waiting for an answer.
    if (leaving || inFlight || inConflict || savedSeq === changeSeq) return;
    try {
      post(data.urls.draft, formBody(pendingSeconds()), true).catch(function () {});
    } catch (error) { /* too large for a keepalive request: the retry state warned already */ }
  });
  window.addEventListener("beforeunload", function (event) {
    if (stateEl && stateEl.dataset.state === "retrying") {
      event.preventDefault();
      event.returnValue = "";
    }
  });

  // --- submit and skip ------------------------------------------------------------------------
  function renderChecks(rows) {
    var table = document.querySelector("[data-saved-checks]");
    var body = table.querySelector("[data-saved-rows]");
    body.textContent = "";
    (rows || []).forEach(function (row) {
      var tr = document.createElement("tr");
      tr.className = "check-" + (row.state || "plain");
      var th = document.createElement("th");
      th.textContent = row.label;
      var td = document.createElement("td");
      td.textContent = row.value;
      tr.appendChild(th);
      tr.appendChild(td);
      body.appendChild(tr);
    });
    table.hidden = !(rows && rows.length);
  }

  function submit() {
    if (submitting || inConflict || leaving) return;
    var verdictAsked = form.querySelector("input[name=verdict]");
    if (verdictAsked && !form.querySelector("input[name=verdict]:checked")) {
      showError("Choose accept (a) or reject (r) first.");
      return;
    }
    if (inFlight) { // one request at a time: both would carry the same version
      submitAfterSave = true;
      return;
    }
    clearTimeout(draftTimer);
    clearTimeout(retryTimer);
    showError("");
    submitting = true;
    var seq = changeSeq;
    var seconds = pendingSeconds();
    setState("saving", "checking…");
    var body = formBody(seconds, { confirm: awaitingConfirm ? "1" : "" });
    post(data.urls.submit, body).then(function (result) {
      submitting = false;
      var json = result.json;
      if (result.status === 200) {
        version = json.version;
        versionInput.value = String(version);
        savedSeq = Math.max(savedSeq, seq);
        consumeSeconds(seconds);
        renderChecks(json.checks);
        if (json.submitted) {
          leaving = true;
          setState("saved", json.flagged ? "submitted, flagged" : "submitted");
          window.location.assign(json.next);
          return;
        }
        awaitingConfirm = true;
        confirmInput.value = "1";
        flagEl.querySelector("[data-broken]").textContent = (json.broken || []).join(", ");
        flagEl.hidden = false;
        setState("saved", "saved as a draft: check the flag");
      } else if (result.status === 409) {
        showConflict(json);
      } else if (result.status === 400) {
        setState(savedSeq === changeSeq ? "saved" : "dirty", "not submitted");
        showError(errorText(json.errors));
      } else {
        throw new Error("HTTP " + result.status);
      }
    }).catch(function () {
      submitting = false;
      setState("retrying", "not submitted: connection lost, Ctrl+Enter to try again");
      retryTimer = setTimeout(saveDraft, retryMs);
    });
  }

  function skip() {
    if (submitting || leaving) return;
    submitting = true;
    clearTimeout(draftTimer);
    setState("saving", "skipping…");
    post(data.urls.skip, formBody(0)).then(function (result) {
      if (result.status !== 200) throw new Error("HTTP " + result.status);
      leaving = true;
      window.location.assign(result.json.next);
    }).catch(function () {
      submitting = false;
      setState("retrying", "not skipped: connection lost, press s to try again");
    });
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    if (event.submitter && event.submitter.hasAttribute("data-skip")) skip();
    else submit();
  });

  // --- conflicts ------------------------------------------------------------------------------
  var CONFLICT_FIELDS = ["verdict", "rating", "tags", "note", "think", "answer"];

  function fillFields(dl, values) {
    dl.textContent = "";
    CONFLICT_FIELDS.forEach(function (name) {
      if (!(name in values)) return;
      var value = values[name];
      var dt = document.createElement("dt");
      dt.textContent = name;
      var dd = document.createElement("dd");
      dd.textContent = Array.isArray(value) ? value.join(", ") : value === null || value === "" ? "—" : String(value);
      if (name === "think" || name === "answer") dd.className = "long";
      dl.appendChild(dt);
      dl.appendChild(dd);
    });
  }

  function showConflict(json) {
    inConflict = true;
    setState("conflict", "not saved: conflict");
    var current = json.current || {};
    fillFields(conflictEl.querySelector("[data-conflict-stored]"), current);
    fillFields(conflictEl.querySelector("[data-conflict-sent]"), json.sent || {});
    conflictEl.querySelector("[data-conflict-stored-meta]").textContent =
      "version " + current.version + ", " + current.status;
    conflictEl.dataset.version = String(current.version);
    conflictEl.hidden = false;
    conflictEl.querySelector("[data-conflict-keep]").focus();
  }

  conflictEl.querySelector("[data-conflict-keep]").addEventListener("click", function () {
    version = parseInt(conflictEl.dataset.version, 10);
    versionInput.value = String(version);
    inConflict = false;
    conflictEl.hidden = true;
    changeSeq += 1;
    saveDraft();
  });
  conflictEl.querySelector("[data-conflict-take]").addEventListener("click", function () {
    leaving = true;
    window.location.reload();
  });

  // --- word diff (Myers, on the words between the common head and tail) -------------------
  function words(text) {
    return text.split(/(\s+)/).filter(function (t) { return t !== ""; });
  }

  function myers(a, b) {
    var n = a.length, m = b.length, max = n + m, off = max + 1;
    var v = new Int32Array(2 * max + 3);
    var trace = [];
    for (var d = 0; d <= Math.min(max, MAX_EDITS); d++) {
      trace.push(v.slice(off - d - 1, off + d + 2)); // V before step d, k from -(d+1)
      for (var k = -d; k <= d; k += 2) {
        var x = k === -d || (k !== d && v[off + k - 1] < v[off + k + 1]) ? v[off + k + 1] : v[off + k - 1] + 1;
        var y = x - k;
        while (x < n && y < m && a[x] === b[y]) { x++; y++; }
        v[off + k] = x;
        if (x >= n && y >= m) return backtrack(a, b, trace);
      }
    }
    return null;
  }

  function backtrack(a, b, trace) {
    var x = a.length, y = b.length, ops = [];
    for (var d = trace.length - 1; d >= 0; d--) {
      var V = trace[d];
      var at = function (k) { return V[k + d + 1]; };
      var k = x - y;
      var prevK = k === -d || (k !== d && at(k - 1) < at(k + 1)) ? k + 1 : k - 1;
      var prevX = at(prevK), prevY = prevX - prevK;
      while (x > prevX && y > prevY) { ops.push(["=", a[x - 1]]); x--; y--; }
      if (d > 0) {
        if (x === prevX) ops.push(["+", b[y - 1]]);
        else ops.push(["-", a[x - 1]]);
      }
      x = prevX;
      y = prevY;
    }
    return ops.reverse();
  }

  function wordDiff(before, after) {
    var a = words(before), b = words(after);
    var head = 0;
    while (head < a.length && head < b.length && a[head] === b[head]) head++;
    var tail = 0;
    while (tail < a.length - head && tail < b.length - head &&
           a[a.length - 1 - tail] === b[b.length - 1 - tail]) tail++;
    var midA = a.slice(head, a.length - tail), midB = b.slice(head, b.length - tail);
    var mid = myers(midA, midB);
    if (mid === null) {
      mid = midA.map(function (w) { return ["-", w]; }).concat(midB.map(function (w) { return ["+", w]; }));
    }
    var ops = a.slice(0, head).map(function (w) { return ["=", w]; })
      .concat(mid, a.slice(a.length - tail).map(function (w) { return ["=", w]; }));
    var runs = []; // [op, [tokens]] with neighbours of one op merged
    ops.forEach(function (op) {
      var last = runs[runs.length - 1];
      if (last && last[0] === op[0]) last[1].push(op[1]);
      else runs.push([op[0], [op[1]]]);
    });
    return runs;
  }

  function countWords(tokens) {
    return tokens.filter(function (t) { return /\S/.test(t); }).length;
  }

  function renderDiff(el, runs) {
    el.textContent = "";
    var added = 0, removed = 0;
    runs.forEach(function (run, i) {
      var op = run[0], tokens = run[1];
      if (op === "+" || op === "-") {
        var node = document.createElement(op === "+" ? "ins" : "del");
        node.textContent = tokens.join("");
        el.appendChild(node);
        if (op === "+") added += countWords(tokens);
        else removed += countWords(tokens);
        return;
      }
      var keep = CONTEXT_WORDS * 2; // tokens alternate word / space
      var first = i === 0, last = i === runs.length - 1;
      if (tokens.length <= keep * (first || last ? 1 : 2) + 2) {
        el.appendChild(document.createTextNode(tokens.join("")));
        return;
      }
      if (!first) el.appendChild(document.createTextNode(tokens.slice(0, keep).join("")));
      var gap = document.createElement("span");
      gap.className = "diff-gap";
      gap.textContent = " … ";
      el.appendChild(gap);
      if (!last) el.appendChild(document.createTextNode(tokens.slice(tokens.length - keep).join("")));
    });
    return { added: added, removed: removed };
  }

  // --- the think and answer parts -------------------------------------------------------------
  var parts = Array.prototype.map.call(root.querySelectorAll("[data-part]"), function (section) {
    var name = section.dataset.part;
    return {
      name: name,
      read: section.querySelector("[data-read]"),
      edit: section.querySelector("[data-edit]"),
      diffBox: section.querySelector("[data-diff-box]"),
      diff: section.querySelector("[data-diff]"),
      stats: section.querySelector("[data-diff-stats]"),
      original: data.original[name] || "",
      timer: null,
    };
  }).filter(function (part) { return part.edit; });

  function updateDiff(part) {
    var text = part.edit.value;
    if (text === part.original) {
      part.diffBox.hidden = true;
      part.diff.textContent = "";
      part.stats.textContent = "";
      return;
    }
    var counts = renderDiff(part.diff, wordDiff(part.original, text));
    part.diffBox.hidden = false;
    part.stats.textContent = "+" + counts.added + " −" + counts.removed + " words";
  }

  function renderParagraphs(el, text) {
    el.textContent = "";
    var paras = text.split(/\n\s*\n/).filter(function (p) { return p.trim() !== ""; });
    if (!paras.length) {
      var empty = document.createElement("p");
      empty.className = "muted";
      empty.textContent = "(empty)";
      el.appendChild(empty);
    }
    paras.forEach(function (text) {
      var p = document.createElement("p");
      p.textContent = text.replace(/^\n+|\n+$/g, "");
      el.appendChild(p);
    });
  }

  function editing() {
    return parts.some(function (part) { return !part.edit.hidden; });
  }

  function enterEdit() {
    if (!parts.length) return;
    parts.forEach(function (part) {
      part.edit.hidden = false;
      part.read.hidden = true;
    });
    parts[0].edit.focus();
    parts[0].edit.setSelectionRange(0, 0);
    parts[0].edit.scrollTop = 0;
  }

  function leaveEdit() {
    parts.forEach(function (part) {
      if (part.edit.hidden) return;
      renderParagraphs(part.read, part.edit.value);
      part.edit.hidden = true;
      part.read.hidden = false;
    });
    if (document.activeElement && document.activeElement !== document.body) document.activeElement.blur();
  }

  parts.forEach(function (part) {
    updateDiff(part);
    part.edit.addEventListener("input", function () {
      clearTimeout(part.timer);
      part.timer = setTimeout(function () { updateDiff(part); }, DIFF_DELAY_MS);
      if (awaitingConfirm) { // the flag was about the text before this edit
        awaitingConfirm = false;
        confirmInput.value = "";
        flagEl.hidden = true;
      }
    });
  });

  document.addEventListener("input", function (event) {
    if (event.target.form === form) changed();
  });
  document.addEventListener("change", function (event) {
    if (event.target.form === form && event.target.type !== "textarea") changed();
  });

  // --- keys -----------------------------------------------------------------------------------
  function choose(name, value) {
    var input = form.querySelector("input[name=" + name + "][value='" + value + "']");
    if (!input || input.checked) return;
    input.checked = true;
    if (name === "verdict") showError("");
    changed();
  }

  function isTyping(target) {
    if (!target || !target.tagName) return false;
    if (target.isContentEditable || target.tagName === "TEXTAREA" || target.tagName === "SELECT") return true;
    return target.tagName === "INPUT" && !/^(radio|checkbox|button|submit|hidden)$/.test(target.type);
  }

  document.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      submit();
      return;
    }
    if (event.key === "Escape") {
      if (help && !help.hidden) toggleHelp(false);
      else if (editing() || isTyping(event.target)) leaveEdit();
      return;
    }
    if (isTyping(event.target) || event.altKey || event.ctrlKey || event.metaKey || event.defaultPrevented) return;
    if (inConflict) return;
    var handled = true;
    switch (event.key) {
      case "a": choose("verdict", "accept"); break;
      case "r": choose("verdict", "reject"); break;
      case "1": case "2": case "3": case "4": case "5": choose("rating", event.key); break;
      case "e": enterEdit(); break;
      case "s": skip(); break;
      case "g": if (guideline) guideline.open = !guideline.open; break;
      case "?": toggleHelp(); break;
      default: handled = false;
    }
    if (handled) event.preventDefault(); // the "e" must not land in the box it focuses
  });

  setState("saved", "saved");
})();
