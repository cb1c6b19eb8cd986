// isocheck dashboard: the only script (CSP allows 'self' only; no inline script).
// Refreshes the alert queue's rows without a full reload, every data-refresh-seconds.
(function () {
  "use strict";
  function startRefresh(tbody) {
    var url = tbody.getAttribute("data-refresh-url");
    var seconds = parseInt(tbody.getAttribute("data-refresh-seconds") || "15", 10);
    var stamp = document.getElementById("refreshed-at");
    function busy() {
      // never replace rows while someone is typing a note or has a row's actions open
      return tbody.contains(document.activeElement) || tbody.querySelector("details[open]");
    }
    function refresh() {
      if (document.hidden || busy()) { return; }
      fetch(url, { credentials: "same-origin", cache: "no-store",
                   headers: { "X-Requested-With": "fetch" } })
        .then(function (response) {
          if (response.status === 401) { window.location.reload(); return null; }
          return response.ok ? response.text() : null;
        })
        .then(function (html) {
          if (html === null || busy()) { return; }
          tbody.innerHTML = html;
          if (stamp) { stamp.textContent = new Date().toLocaleTimeString([], { hour12: false }); }
        })
        .catch(function () { /* offline for a moment: try again next time */ });
    }
    window.setInterval(refresh, Math.max(seconds || 15, 1) * 1000);
  }
  document.addEventListener("DOMContentLoaded", function () {
    var tbody = document.querySelector("[data-refresh-url]");
    if (tbody) { startRefresh(tbody); }
    // a refused form opens at its first refused field (the message sits beside it)
    var invalid = document.querySelector("form [aria-invalid=\"true\"]");
    if (invalid) { invalid.scrollIntoView({ block: "center" }); invalid.focus(); }
  });
})();
