// connect-supervisor dashboard: progressive enhancement only. Every page reads completely
// without this script; it refreshes the block marked id="live" every few seconds by asking the
// same URL for that block alone, and says when it cannot.
(function () {
  "use strict";
  var PERIOD_MS = 5000;
  var live = document.getElementById("live");
  if (!live || !window.fetch) { return; }
  var stopped = false;

  function note(text) {
    var s = live.querySelector(".refresh-state");
    if (s) { s.textContent = text; }
  }

  function busy() {
    // Never replace what the user is working in: a focused field inside the block, or a selection.
    var a = document.activeElement;
    if (a && live.contains(a) && /^(INPUT|SELECT|TEXTAREA|SUMMARY|BUTTON)$/.test(a.tagName)) { return true; }
    var sel = window.getSelection && window.getSelection();
    return !!(sel && !sel.isCollapsed && live.contains(sel.anchorNode));
  }

  function openDetails() {
    var open = [];
    live.querySelectorAll("details").forEach(function (d, i) { open.push(d.open); });
    return open;
  }

  function refresh() {
    if (stopped || document.hidden || busy()) { return; }
    fetch(window.location.href, { headers: { "X-Dashboard-Fragment": "live" }, credentials: "same-origin", redirect: "manual" })
      .then(function (r) {
        if (r.status === 200 && r.headers.get("X-Dashboard-Fragment") === "live") { return r.text(); }
        stopped = true;
        note(r.status === 401 || r.type === "opaqueredirect"
          ? "(your session ended: reload the page to sign in again)"
          : "(updates stopped: the supervisor answered " + r.status + "; reload the page)");
        return null;
      })
      .then(function (html) {
        if (html === null || busy()) { return; }
        var open = openDetails();
        var tmp = document.createElement("div");
        tmp.innerHTML = html;
        var fresh = tmp.querySelector("#live");
        if (!fresh) { return; }
        live.innerHTML = fresh.innerHTML;
        live.querySelectorAll("details").forEach(function (d, i) { if (i < open.length) { d.open = open[i]; } });
        live.setAttribute("data-refreshed", String(Date.now()));
      })
      .catch(function () { note("(cannot reach the supervisor; retrying)"); });
  }

  window.setInterval(refresh, PERIOD_MS);
})();
