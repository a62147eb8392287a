"""Static parts of the QC report page (CSS and JavaScript; no external resources)."""

from __future__ import annotations

CSS = """
:root { --ok:#1b7f3b; --bad:#b3261e; --warn:#9a6700; --muted:#666; }
* { box-sizing: border-box; }
body { font: 14px/1.4 system-ui, sans-serif; margin: 0; color: #222; background: #fafafa; }
header { position: sticky; top: 0; background: #fff; border-bottom: 1px solid #ddd; padding: 8px 16px; z-index: 2; }
h1 { font-size: 18px; margin: 0 0 6px 0; }
.meta { color: var(--muted); font-size: 12px; }
.toolbar { display: flex; flex-wrap: wrap; gap: 8px; align-items: center; margin-top: 6px; }
.toolbar select, .toolbar input, .toolbar button { font: inherit; padding: 3px 6px; }
table { border-collapse: collapse; width: 100%; background: #fff; }
th, td { border-bottom: 1px solid #eee; padding: 6px 8px; vertical-align: top; text-align: left; }
th { background: #f3f3f3; position: sticky; top: 0; }
td.snap img { max-width: 220px; max-height: 220px; display: block; background: #000; cursor: zoom-in; }
.nopic { color: var(--muted); font-size: 12px; }
.lightbox { position: fixed; inset: 0; background: rgba(0,0,0,.85); z-index: 10; display: flex;
  flex-direction: column; align-items: center; justify-content: center; cursor: zoom-out; }
.lightbox.hidden { display: none; }
.lightbox img { max-width: 96vw; max-height: 90vh; image-rendering: pixelated; background: #000; }
#lightbox-caption { color: #eee; margin-top: 6px; font-size: 13px; }
.status { font-weight: 600; }
.status-done { color: var(--ok); } .status-failed { color: var(--bad); } .status-skipped { color: var(--warn); }
.err { color: var(--bad); max-width: 420px; white-space: pre-wrap; word-break: break-word; }
.measures { font-family: ui-monospace, monospace; font-size: 12px; }
.measures td { border: 0; padding: 0 6px 0 0; }
.marks label { display: block; cursor: pointer; }
tr.mark-pass { background: #eefaf1; } tr.mark-fail { background: #fdecea; } tr.mark-artifact { background: #fff6e0; }
tr.hidden { display: none; }
.note { width: 100%; margin-top: 4px; }
#saved { color: var(--muted); }
"""

JS = r"""
(function () {
  "use strict";
  var root = document.getElementById("ns-report");
  var reportId = root.getAttribute("data-report-id");
  var storeKey = "neurospine-qc:" + reportId;
  var embedded = JSON.parse(document.getElementById("ns-marks").textContent || "{}");
  var local = {};
  try { local = JSON.parse(window.localStorage.getItem(storeKey) || "{}") || {}; } catch (e) { local = {}; }

  function newest(a, b) { if (!a) { return b; } if (!b) { return a; } return (b.t || 0) > (a.t || 0) ? b : a; }
  var marks = {};
  Object.keys(embedded).forEach(function (k) { marks[k] = embedded[k]; });
  Object.keys(local).forEach(function (k) { marks[k] = newest(marks[k], local[k]); });

  function persist() {
    try { window.localStorage.setItem(storeKey, JSON.stringify(marks)); } catch (e) { /* storage may be full */ }
    updateCounts();
  }

  function rows() { return Array.prototype.slice.call(document.querySelectorAll("tr.case")); }

  function paint(tr) {
    var m = marks[tr.getAttribute("data-key")] || {};
    tr.classList.remove("mark-pass", "mark-fail", "mark-artifact");
    if (m.mark) { tr.classList.add("mark-" + m.mark); }
    tr.querySelectorAll("input[type=radio]").forEach(function (r) { r.checked = (r.value === m.mark); });
    var note = tr.querySelector("input.note");
    if (note && document.activeElement !== note) { note.value = m.note || ""; }
  }

  function setMark(key, mark, note) {
    var m = marks[key] || {};
    marks[key] = { mark: mark === undefined ? (m.mark || null) : mark,
                   note: note === undefined ? (m.note || "") : note, t: Date.now() };
    persist();
  }

  function updateCounts() {
    var c = { pass: 0, fail: 0, artifact: 0 };
    Object.keys(marks).forEach(function (k) {
      var m = marks[k];
      if (m && c.hasOwnProperty(m.mark)) { c[m.mark] += 1; }
    });
    document.getElementById("count-pass").textContent = String(c.pass);
    document.getElementById("count-fail").textContent = String(c.fail);
    document.getElementById("count-artifact").textContent = String(c.artifact);
  }

  function applyFilter() {
    var task = document.getElementById("f-task").value;
    var status = document.getElementById("f-status").value;
    var mark = document.getElementById("f-mark").value;
    var text = document.getElementById("f-text").value.toLowerCase();
    var shown = 0;
    rows().forEach(function (tr) {
      var m = (marks[tr.getAttribute("data-key")] || {}).mark || "unmarked";
      var ok = (!task || tr.getAttribute("data-task") === task) &&
               (!status || tr.getAttribute("data-status") === status) &&
               (!mark || m === mark) &&
               (!text || tr.getAttribute("data-key").toLowerCase().indexOf(text) >= 0);
      tr.classList.toggle("hidden", !ok);
      if (ok) { shown += 1; }
    });
    document.getElementById("shown").textContent = String(shown);
  }

  function exportMarks() {
    var out = {};
    Object.keys(marks).forEach(function (k) {
      var m = marks[k];
      if (m && (m.mark || m.note)) { out[k] = { mark: m.mark || null, note: m.note || "" }; }
    });
    return { format: "neurospine-qc-marks/1", report_id: reportId, saved: new Date().toISOString(), marks: out };
  }

  function save() {
    var blob = new Blob([JSON.stringify(exportMarks(), null, 2)], { type: "application/json" });
    var a = document.createElement("a");
    a.href = URL.createObjectURL(blob);
    a.download = "qc_marks.json";
    document.body.appendChild(a);
    a.click();
    setTimeout(function () { URL.revokeObjectURL(a.href); a.remove(); }, 1000);
    document.getElementById("saved").textContent = "saved " + new Date().toLocaleTimeString();
  }

  rows().forEach(function (tr) {
    var key = tr.getAttribute("data-key");
    tr.querySelectorAll("input[type=radio]").forEach(function (r) {
      r.addEventListener("change", function () { setMark(key, r.value); paint(tr); });
    });
    var note = tr.querySelector("input.note");
    if (note) { note.addEventListener("input", function () { setMark(key, undefined, note.value); }); }
    var clear = tr.querySelector("button.clear");
    if (clear) { clear.addEventListener("click", function () { setMark(key, null, ""); paint(tr); }); }
    paint(tr);
  });
  ["f-task", "f-status", "f-mark"].forEach(function (id) {
    document.getElementById(id).addEventListener("change", applyFilter);
  });
  document.getElementById("f-text").addEventListener("input", applyFilter);
  document.getElementById("save").addEventListener("click", save);

  var box = document.getElementById("lightbox");
  var boxImg = document.getElementById("lightbox-img");
  function enlarge(img) {
    boxImg.src = img.src;
    boxImg.alt = img.alt;
    document.getElementById("lightbox-caption").textContent = img.alt;
    box.classList.remove("hidden");
  }
  function shrink() { box.classList.add("hidden"); boxImg.removeAttribute("src"); }
  document.querySelectorAll("img.thumb").forEach(function (img) {
    img.addEventListener("click", function () { enlarge(img); });
    img.addEventListener("keydown", function (e) { if (e.key === "Enter" || e.key === " ") { enlarge(img); } });
  });
  box.addEventListener("click", shrink);
  document.addEventListener("keydown", function (e) { if (e.key === "Escape") { shrink(); } });
  window.neurospineQC = { marks: function () { return exportMarks(); }, save: save };
  updateCounts();
  applyFilter();
}());
"""
