// The bell's unread count, kept fresh without a reload: poll the API with the last ETag, so
// an unchanged count costs a 304 and no body. Paused while the tab is hidden.
(function () {
  "use strict";

  var EVERY_MS = 30000;
  var link = document.querySelector("[data-unread-count]");
  if (!link || !window.fetch) return;
  var badge = link.querySelector(".bell-count");
  var url = link.getAttribute("data-unread-count");
  var tag = null;
  var timer = null;

  function show(count) {
    badge.textContent = count > 99 ? "99+" : String(count);
    badge.hidden = count === 0;
    link.setAttribute("aria-label", count ? "Notifications, " + count + " unread" : "Notifications");
  }

  function poll() {
    var headers = {};
    if (tag) headers["If-None-Match"] = tag;
    fetch(url, { headers: headers, credentials: "same-origin", cache: "no-store" })
      .then(function (response) {
        if (response.status === 304 || !response.ok) return null;
        tag = response.headers.get("ETag");
        return response.json();
      })
      .then(function (body) {
        if (body && typeof body.count === "number") show(body.count);
      })
      .catch(function () { /* offline for a moment: the next poll tries again */ })
      .then(schedule);
  }

  function schedule() {
    clearTimeout(timer);
    if (document.visibilityState !== "hidden") timer = setTimeout(poll, EVERY_MS);
  }

  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "visible") poll();
    else clearTimeout(timer);
  });
  poll();
})();
