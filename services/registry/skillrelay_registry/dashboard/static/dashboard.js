// Skillrelay dashboard: copy buttons and the live audit stream. Loaded as a file (the CSP forbids
// inline scripts); everything from the server is inserted as text, never as HTML.
(function () {
  "use strict";

  function announce(button, message) {
    var region = document.querySelector(".copy-status");
    if (region) { region.textContent = message; }
    var label = button.dataset.label || button.textContent;
    button.dataset.label = label;
    button.textContent = "Copied";
    window.setTimeout(function () { button.textContent = label; }, 2000);
  }

  function copyFallback(text) {
    var area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.className = "offscreen";
    document.body.appendChild(area);
    area.select();
    var ok = false;
    try { ok = document.execCommand("copy"); } catch (e) { ok = false; }
    area.remove();
    return ok;
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-copy]");
    if (!button) { return; }
    var source = document.getElementById(button.dataset.copy);
    if (!source) { return; }
    var text = source.textContent;
    var done = function () { announce(button, "Copied to the clipboard."); };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done, function () {
        if (copyFallback(text)) { done(); } else { announce(button, "Copy failed: select the text and copy it."); }
      });
    } else if (copyFallback(text)) {
      done();
    } else {
      announce(button, "Copy failed: select the text and copy it.");
    }
  });

  // --- live audit stream (Server-Sent Events) ---
  var streams = [];
  var MAX_ROWS = 200;
  var STATUS = {
    connecting: "Connecting…",
    live: "Live: new records appear at the top.",
    unavailable: "The audit stream is not available right now; retrying…"
  };

  function cell(row, text, className) {
    var td = document.createElement("td");
    td.textContent = text;
    if (className) { td.className = className; }
    row.appendChild(td);
  }

  // The sessions table follows the audit stream: a session opened or closed after the page loaded
  // reloads just that section (unless keyboard focus is inside it, so nobody loses their place).
  var loadedAt = Date.now();
  var refreshTimer = null;
  function refreshSessions(record) {
    if (!/^session\./.test(record.kind) || Date.parse(record.time) < loadedAt - 2000) { return; }
    window.clearTimeout(refreshTimer);
    refreshTimer = window.setTimeout(function () {
      var section = document.getElementById("sessions-section");
      if (!section || !window.htmx || section.contains(document.activeElement)) { return; }
      window.htmx.ajax("GET", section.dataset.sessionsSrc, {
        target: "#sessions-section", select: "#sessions-section", swap: "outerHTML"
      });
    }, 300);
  }

  // Details as "key: value" pairs (nested values as JSON), not one raw JSON object.
  function readable(details) {
    return Object.keys(details).map(function (key) {
      var value = details[key];
      return key + ": " + (typeof value === "object" && value !== null ? JSON.stringify(value) : String(value));
    }).join(" · ");
  }

  // The filters above the audit table hide rows (new ones too) that do not match.
  function filterValues() {
    var form = document.querySelector("[data-audit-filters]");
    if (!form) { return { kind: "", outcome: "", tool: "" }; }
    return { kind: form.kind.value, outcome: form.outcome.value, tool: form.tool.value.trim().toLowerCase() };
  }
  function matches(row) {
    var f = filterValues();
    if (f.kind && row.dataset.kind !== f.kind) { return false; }
    if (f.outcome === "ok" && row.dataset.outcome !== "ok") { return false; }
    if (f.outcome === "failed" && row.dataset.outcome === "ok") { return false; }
    if (f.tool && row.dataset.tool.toLowerCase().indexOf(f.tool) < 0) { return false; }
    return true;
  }
  function applyFilters() {
    document.querySelectorAll("[data-audit-rows] tr").forEach(function (row) { row.hidden = !matches(row); });
  }
  document.addEventListener("input", function (event) {
    if (event.target.closest && event.target.closest("[data-audit-filters]")) { applyFilters(); }
  });
  document.addEventListener("submit", function (event) {
    if (event.target.matches && event.target.matches("[data-audit-filters]")) { event.preventDefault(); }
  });

  function startAuditStreams(root) {
    streams = streams.filter(function (entry) {
      if (!document.body.contains(entry.table)) { entry.source.close(); return false; }
      return true;
    });
    (root || document).querySelectorAll("[data-audit-src]").forEach(function (table) {
      if (table.dataset.auditStarted) { return; }
      table.dataset.auditStarted = "1";
      var rows = table.querySelector("[data-audit-rows]");
      var status = document.querySelector("[data-audit-status]");
      var source = new EventSource(table.dataset.auditSrc);
      streams.push({ table: table, source: source });
      source.addEventListener("status", function (e) {
        if (status) { status.textContent = STATUS[e.data] || e.data; }
      });
      source.addEventListener("audit", function (e) {
        var record;
        try { record = JSON.parse(e.data); } catch (err) { return; }
        var row = document.createElement("tr");
        row.className = "outcome-" + String(record.outcome).replace(/[^a-z]/g, "");
        cell(row, String(record.time).replace("T", " ").slice(0, 23));
        cell(row, record.kind);
        cell(row, record.outcome);
        cell(row, record.principal);
        cell(row, record.latencyMs == null ? "" : Number(record.latencyMs).toFixed(1) + " ms");
        cell(row, readable(record.details || {}), "details");
        row.dataset.kind = record.kind;
        row.dataset.outcome = String(record.outcome);
        row.dataset.tool = (record.details && record.details.tool) ? String(record.details.tool) : "";
        row.hidden = !matches(row);
        rows.insertBefore(row, rows.firstChild);
        refreshSessions(record);
        while (rows.children.length > MAX_ROWS) { rows.removeChild(rows.lastChild); }
      });
      source.onerror = function () {
        if (status && source.readyState !== EventSource.OPEN) { status.textContent = STATUS.unavailable; }
      };
    });
  }

  document.addEventListener("DOMContentLoaded", function () { startAuditStreams(document); });
  document.addEventListener("htmx:afterSettle", function (e) {
    if (e.target === document.body || (e.target.classList && e.target.classList.contains("page"))) { loadedAt = Date.now(); }
  });
  document.addEventListener("htmx:load", function (e) { startAuditStreams(e.target); });
})();
