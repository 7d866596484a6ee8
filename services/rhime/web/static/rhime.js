// Rhime's progressive enhancement: every form and link works without this file; with it,
// actions swap small server-rendered fragments in place so the page keeps its state.
(function () {
  "use strict";

  var PARTIAL = "X-Rhime-Partial";

  function showError(html) {
    var box = document.getElementById("flash");
    if (!box) {
      box = document.createElement("div");
      box.id = "flash";
      box.className = "flash";
      var main = document.getElementById("main");
      main.insertBefore(box, main.firstChild);
    }
    box.innerHTML = html || '<div class="alert" role="alert"><p>That did not work. Please try again.</p></div>';
  }

  function clearError() {
    var box = document.getElementById("flash");
    if (box) box.innerHTML = "";
  }

  // Ask the server for one fragment. Resolves with HTML, or null after navigating away.
  function fragment(url, name, options) {
    options = options || {};
    var headers = {};
    headers[PARTIAL] = name;
    return fetch(url, {
      method: options.method || "GET",
      body: options.body,
      headers: headers,
      credentials: "same-origin",
      redirect: "follow"
    }).then(function (response) {
      var target = response.headers.get("X-Rhime-Redirect");
      if (target) {
        window.location.assign(target);
        return null;
      }
      return response.text().then(function (text) {
        if (!response.ok) {
          var error = new Error("HTTP " + response.status);
          error.html = text;
          throw error;
        }
        return text;
      });
    });
  }

  function formBody(form) {
    return new URLSearchParams(new FormData(form));
  }

  function replaceWith(element, html) {
    var holder = document.createElement("div");
    holder.innerHTML = html;
    var nodes = Array.prototype.slice.call(holder.childNodes);
    nodes.forEach(function (node) { element.parentNode.insertBefore(node, element); });
    element.parentNode.removeChild(element);
    return nodes.filter(function (n) { return n.nodeType === 1; });
  }

  function busy(element, on) {
    if (on) element.setAttribute("aria-busy", "true");
    else element.removeAttribute("aria-busy");
  }

  // Sign-up hints: each rule turns met or unmet as the person types.
  function updateHints(input) {
    var list = document.querySelector('[data-hints-for="' + input.name + '"]');
    if (!list) return;
    list.querySelectorAll("[data-rule]").forEach(function (item) {
      var ok = new RegExp(item.getAttribute("data-rule")).test(input.value);
      item.classList.toggle("met", ok);
      item.classList.toggle("unmet", !ok && input.value.length > 0);
    });
  }

  // Track search in the composer, a moment after typing stops.
  var searchTimer = null;
  function search(form) {
    var q = form.querySelector("input[name=q]").value.trim();
    var url = "/?q=" + encodeURIComponent(q);
    var results = document.getElementById("track-results");
    busy(results, true);
    fragment(url, "track-results").then(function (html) {
      if (html === null) return;
      replaceWith(document.getElementById("track-results"), html);
    }).catch(function (error) { showError(error.html); })
      .finally(function () {
        var current = document.getElementById("track-results");
        if (current) busy(current, false);
      });
  }

  function like(form) {
    var button = form.querySelector("button");
    var input = form.querySelector("input[name=liked]");
    var count = form.querySelector("[data-count]");
    var wanted = input.value === "1";
    var before = { pressed: button.getAttribute("aria-pressed"), count: count.textContent, value: input.value };
    // Instant feedback; the server's fragment then corrects the count.
    button.setAttribute("aria-pressed", wanted ? "true" : "false");
    button.classList.toggle("on", wanted);
    count.textContent = String(Math.max(0, parseInt(count.textContent, 10) + (wanted ? 1 : -1)));
    var body = formBody(form);
    input.value = wanted ? "0" : "1";
    fragment(form.action, "like", { method: "POST", body: body }).then(function (html) {
      if (html === null) return;
      var fresh = replaceWith(form, html)[0];
      if (fresh) fresh.querySelector("button").focus();
    }).catch(function (error) {
      button.setAttribute("aria-pressed", before.pressed);
      button.classList.toggle("on", before.pressed === "true");
      count.textContent = before.count;
      input.value = before.value;
      showError(error.html);
    });
  }

  function loadComments(details) {
    if (details.getAttribute("data-loaded")) return;
    details.setAttribute("data-loaded", "1");
    var body = details.querySelector(".comments-body");
    busy(body, true);
    fragment(details.getAttribute("data-comments"), "comments").then(function (html) {
      if (html !== null) body.innerHTML = html;
    }).catch(function (error) {
      details.removeAttribute("data-loaded");
      showError(error.html);
    }).finally(function () { busy(body, false); });
  }

  function commentAction(form) {
    var list = form.closest(".comments-list");
    var details = form.closest("details");
    busy(list, true);
    fragment(form.action, "comments", { method: "POST", body: formBody(form) }).then(function (html) {
      if (html === null) return;
      var fresh = replaceWith(list, html)[0];
      if (details && fresh) {
        var counter = details.querySelector("[data-comment-count]");
        var count = fresh.getAttribute("data-count");
        if (counter) counter.textContent = count;
        var word = details.querySelector("[data-comment-word]");
        if (word) word.textContent = count === "1" ? "comment" : "comments";
        var input = fresh.querySelector("input[name=text]");
        if (input) input.focus();
      }
    }).catch(function (error) {
      busy(list, false);
      showError(error.html);
    });
  }

  function compose(form) {
    var errors = form.querySelector("[data-errors]");
    var button = form.querySelector("button[type=submit]");
    button.disabled = true;
    fragment(form.action, "new-post", { method: "POST", body: formBody(form) }).then(function (html) {
      if (html === null) return;
      var feed = document.getElementById("feed");
      if (feed) {
        feed.insertAdjacentHTML("afterbegin", html);
        var empty = feed.parentNode.querySelector(".card.empty");
        if (empty) empty.parentNode.removeChild(empty);
      }
      var results = document.getElementById("track-results");
      results.innerHTML = '<p class="notice" role="status">Posted.</p>';
      var q = document.getElementById("q");
      if (q) { q.value = ""; q.focus(); }
    }).catch(function (error) {
      button.disabled = false;
      if (errors) errors.innerHTML = error.html || "";
      else showError(error.html);
    });
  }

  // Deleting my post: the card leaves the list; focus moves to the next card, if any.
  function deletePost(form) {
    var card = form.closest(".post");
    var button = form.querySelector("button");
    button.disabled = true;
    fragment(form.action, "post-delete", { method: "POST", body: formBody(form) }).then(function (html) {
      if (html === null || !card) return;
      var next = card.nextElementSibling && card.nextElementSibling.querySelector("a, button");
      card.parentNode.removeChild(card);
      if (next) next.focus();
    }).catch(function (error) {
      button.disabled = false;
      showError(error.html);
    });
  }

  function loadMore(link) {
    var item = link.closest(".more-item");
    if (!item || item.getAttribute("aria-busy")) return;
    busy(item, true);
    fragment(link.href, "feed-page").then(function (html) {
      if (html === null) return;
      var added = replaceWith(item, html);
      var first = added[0] && added[0].querySelector("a, button");
      if (first && document.activeElement === link) first.focus();
      watchMore();
    }).catch(function (error) {
      busy(item, false);
      showError(error.html);
    });
  }

  function swapInto(form, targetId, name) {
    var target = document.getElementById(targetId);
    busy(target, true);
    fragment(form.action, name, { method: "POST", body: formBody(form) }).then(function (html) {
      if (html === null) return;
      var fresh = replaceWith(target, html)[0];
      var heading = fresh && fresh.querySelector("h2, button");
      if (heading) {
        if (heading.tagName === "H2") heading.setAttribute("tabindex", "-1");
        heading.focus();
      }
    }).catch(function (error) {
      busy(target, false);
      showError(error.html);
    });
  }

  function openTab(link) {
    fragment(link.href, "tab").then(function (html) {
      if (html === null) return;
      replaceWith(document.getElementById("profile-tab"), html);
      link.parentNode.querySelectorAll("[data-tab]").forEach(function (tab) {
        var on = tab === link;
        tab.setAttribute("aria-selected", on ? "true" : "false");
        if (on) tab.setAttribute("aria-current", "page"); else tab.removeAttribute("aria-current");
      });
      history.replaceState(null, "", link.href);
      watchMore();
    }).catch(function (error) { showError(error.html); });
  }

  // Infinite scroll: the "Load more" link loads itself when it comes into view.
  var observer = "IntersectionObserver" in window ? new IntersectionObserver(function (entries) {
    entries.forEach(function (entry) {
      if (entry.isIntersecting) {
        observer.unobserve(entry.target);
        loadMore(entry.target);
      }
    });
  }, { rootMargin: "200px" }) : null;

  function watchMore() {
    if (!observer) return;
    document.querySelectorAll("[data-more]").forEach(function (link) { observer.observe(link); });
  }

  document.addEventListener("submit", function (event) {
    var form = event.target;
    var handled = true;
    clearError();
    if (form.matches("[data-like]")) like(form);
    else if (form.matches("[data-comment-form]")) commentAction(form);
    else if (form.matches("[data-compose]")) compose(form);
    else if (form.matches("[data-post-delete]")) deletePost(form);
    else if (form.matches("[data-rec-action]")) swapInto(form, "rec-card", "rec-card");
    else if (form.matches("[data-follow]")) swapInto(form, "follow-box", "follow");
    else if (form.matches("[data-search]")) search(form);
    else handled = false;
    if (handled) event.preventDefault();
  });

  document.addEventListener("click", function (event) {
    var link = event.target.closest("a[data-more], a[data-tab]");
    if (!link || event.ctrlKey || event.metaKey || event.shiftKey) return;
    event.preventDefault();
    if (link.matches("[data-more]")) loadMore(link);
    else openTab(link);
  });

  document.addEventListener("input", function (event) {
    var input = event.target;
    if (input.closest("[data-live-hints]")) updateHints(input);
    var form = input.closest("[data-search]");
    if (form && input.name === "q") {
      clearTimeout(searchTimer);
      if (input.value.trim().length >= 2) searchTimer = setTimeout(function () { search(form); }, 350);
    }
  });

  document.addEventListener("toggle", function (event) {
    var details = event.target;
    if (details.matches && details.matches("details[data-comments]") && details.open) loadComments(details);
  }, true);

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-live-hints] input").forEach(function (input) {
      if (input.value) updateHints(input);
    });
    watchMore();
  });
})();
