// forcesync status page: refreshes the element carrying data-refresh every 2 s (the server
// renders the HTML; nothing else runs here).
(function () {
  "use strict";
  var live = document.querySelector("[data-refresh]");
  if (!live || !window.fetch) {
    return;
  }
  var url = live.getAttribute("data-refresh");
  var busy = false;
  var last = null;
  function tick() {
    if (busy || document.hidden) {
      return;
    }
    busy = true;
    fetch(url, { credentials: "same-origin", headers: { Accept: "text/html" } })
      .then(function (r) {
        if (!r.ok) {
          throw new Error("HTTP " + r.status);
        }
        return r.text();
      })
      .then(function (html) {
        if (html !== last) {
          live.innerHTML = html;
          last = html;
        }
        live.removeAttribute("data-stale");
      })
      .catch(function () {
        live.setAttribute("data-stale", "true");
      })
      .then(function () {
        busy = false;
      });
  }
  setInterval(tick, 2000);
})();
