/* Dashboard glue: menu, row keyboard use, the detail panel, tabs, seek buttons, filter form.
   Everything works without it (links and forms); this only makes it quicker and keyboard-friendly. */
(function () {
  "use strict";

  var lastOpenId = null;

  function shell() { return document.querySelector("[data-shell]"); }
  function panel() { return document.getElementById("panel"); }
  function page() { return document.querySelector("[data-calls-page]"); }

  function setNav(open) {
    var s = shell();
    var button = document.querySelector("[data-menu]");
    var scrim = document.querySelector("[data-scrim]");
    if (!s || !button) return;
    s.classList.toggle("nav-open", open);
    button.setAttribute("aria-expanded", open ? "true" : "false");
    if (scrim) scrim.hidden = !open;
    if (open) {
      var first = document.querySelector("#sidebar a");
      if (first) first.focus();
    } else {
      button.focus();
    }
  }

  function rowOf(id) {
    return id ? document.querySelector('tr.call-row[data-call-id="' + id + '"]') : null;
  }

  function markOpen(id) {
    document.querySelectorAll("tr.call-row.is-open").forEach(function (r) { r.classList.remove("is-open"); });
    var row = rowOf(id);
    if (row) row.classList.add("is-open");
  }

  function showPanel(focus) {
    var p = panel();
    if (!p) return;
    var detail = p.querySelector("[data-detail]");
    p.hidden = !detail;
    var pg = page();
    if (pg) pg.classList.toggle("panel-open", !!detail);
    if (!detail) return;
    lastOpenId = detail.getAttribute("data-call-id");
    markOpen(lastOpenId);
    if (focus) {
      var title = document.getElementById("detail-title");
      if (title) title.focus();
    }
  }

  function clearPanel() {
    var p = panel();
    if (!p || (p.hidden && !p.firstElementChild)) return;
    p.innerHTML = "";
    p.hidden = true;
    var pg = page();
    if (pg) pg.classList.remove("panel-open");
    markOpen(null);
  }

  function selectText(el) {
    var range = document.createRange();
    range.selectNodeContents(el);
    var sel = window.getSelection();
    sel.removeAllRanges();
    sel.addRange(range);
  }

  /* Hide the panel and put the list's URL back now; the HTMX request only refreshes the rows. */
  function closePanelNow(closer) {
    var p = panel();
    if (!p || p.hidden) return;
    var id = lastOpenId;
    p.hidden = true;
    var pg = page();
    if (pg) pg.classList.remove("panel-open");
    markOpen(null);
    var href = closer.getAttribute("href");
    // Online, HTMX pushes the list's URL with its response; offline nothing would.
    if (!navigator.onLine && href && location.pathname + location.search !== href) history.pushState({}, "", href);
    var row = rowOf(id);
    if (row) row.focus();
    // Stop the player: its panel is gone from view.
    p.querySelectorAll("audio").forEach(function (a) { a.pause(); });
    if (!navigator.onLine) {
      p.innerHTML = "";
      lastOpenId = null;
      showStale(true);
    }
  }

  /* Results that could not be refreshed (offline, server gone) say so and offer a retry. */
  function showStale(on, message) {
    var results = document.getElementById("results");
    if (!results) return;
    results.classList.toggle("is-stale", on);
    var note = document.getElementById("stale-note");
    if (!on) { if (note) note.remove(); return; }
    if (note) { if (message) note.firstChild.textContent = message; return; }
    note = document.createElement("div");
    note.id = "stale-note";
    note.className = "stale-note";
    note.setAttribute("role", "alert");
    note.innerHTML = "<span></span> <button type=\"button\" data-retry-list>Try again</button>";
    note.firstChild.textContent = message || (navigator.onLine
      ? "The list could not be refreshed: the server did not answer. These results may be out of date."
      : "You are offline: these results may be out of date.");
    results.parentNode.insertBefore(note, results);
  }

  function selectTab(tab, focus) {
    var list = tab.closest("[role=tablist]");
    if (!list) return;
    list.querySelectorAll("[role=tab]").forEach(function (t) {
      var on = t === tab;
      t.setAttribute("aria-selected", on ? "true" : "false");
      t.tabIndex = on ? 0 : -1;
      var tabpanel = document.getElementById(t.getAttribute("aria-controls"));
      if (tabpanel) tabpanel.hidden = !on;
    });
    if (focus) tab.focus();
  }

  document.addEventListener("click", function (e) {
    var t = e.target;
    if (!(t instanceof Element)) return;
    if (t.closest("[data-menu]")) { setNav(!shell().classList.contains("nav-open")); return; }
    if (t.closest("[data-scrim]")) { setNav(false); return; }

    var clear = t.closest("[data-clear-filters]");
    if (clear) {
      var form = document.getElementById("filters");
      if (form && form.requestSubmit) {
        e.preventDefault();
        form.querySelectorAll("input:not([type=hidden]), select").forEach(function (el) { el.value = ""; });
        form.requestSubmit();
      }
      return;
    }

    var more = t.closest("[data-more-filters]");
    if (more) {
      var open = more.getAttribute("aria-expanded") !== "true";
      more.setAttribute("aria-expanded", open ? "true" : "false");
      more.closest("form").classList.toggle("show-more", open);
      return;
    }

    var tab = t.closest("[role=tab]");
    if (tab) { selectTab(tab, false); return; }

    var seek = t.closest("[data-seek-ms]");
    if (seek) {
      var ms = Number(seek.getAttribute("data-seek-ms"));
      var only = seek.hasAttribute("data-seek-only");
      seek.dispatchEvent(new CustomEvent("talkturo:seek", { bubbles: true, detail: { ms: ms, seekOnly: only } }));
      return;
    }

    // Close always works, even offline: the panel goes at once; the list refreshes if it can.
    var closer = t.closest("[data-close-panel]");
    if (closer) {
      closePanelNow(closer);
      if (!navigator.onLine) e.preventDefault();
      return;
    }

    var copy = t.closest("[data-copy-key]");
    if (copy) {
      var code = document.querySelector("[data-new-key]");
      if (code && navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(code.textContent.trim()).then(function () { copy.textContent = "Copied"; }, function () { selectText(code); });
      } else if (code) {
        selectText(code);
      }
      return;
    }

    if (t.closest("[data-retry-list]")) {
      var filters = document.getElementById("filters");
      showStale(false);
      if (filters && filters.requestSubmit) filters.requestSubmit();
      else location.reload();
      return;
    }

    var row = t.closest("tr.call-row");
    if (row && !t.closest("a, button, input, select")) {
      var link = row.querySelector("[data-open-call]");
      if (link) link.click();
    }
  });

  document.addEventListener("keydown", function (e) {
    var t = e.target;
    if (!(t instanceof Element)) return;
    if (e.key === "Escape") {
      if (shell() && shell().classList.contains("nav-open")) { setNav(false); return; }
      var p = panel();
      if (p && !p.hidden && (p.contains(t) || t === document.body) && !t.matches("input, textarea, select")) {
        var close = p.querySelector("[data-close-panel]");
        if (close) { e.preventDefault(); close.click(); }
      }
      return;
    }
    if (t.matches("tr.call-row")) {
      if (e.key === "Enter" || e.key === " ") {
        e.preventDefault();
        var link = t.querySelector("[data-open-call]");
        if (link) link.click();
      } else if (e.key === "ArrowDown" || e.key === "ArrowUp") {
        e.preventDefault();
        var next = e.key === "ArrowDown" ? t.nextElementSibling : t.previousElementSibling;
        while (next && !next.matches("tr.call-row")) next = e.key === "ArrowDown" ? next.nextElementSibling : next.previousElementSibling;
        if (next) next.focus();
      }
      return;
    }
    if (t.matches("[role=tab]")) {
      var tabs = Array.prototype.slice.call(t.closest("[role=tablist]").querySelectorAll("[role=tab]"));
      var i = tabs.indexOf(t);
      var j = { ArrowRight: i + 1, ArrowLeft: i - 1, Home: 0, End: tabs.length - 1 }[e.key];
      if (j !== undefined) {
        e.preventDefault();
        selectTab(tabs[(j + tabs.length) % tabs.length], true);
      }
    }
  });

  // Leave empty filters out of the URL, so it holds exactly the filters in use.
  document.addEventListener("htmx:configRequest", function (e) {
    var d = e.detail;
    if (d.verb !== "get" || !d.formData || d.path.split("?")[0] !== "/calls") return;
    var empty = [];
    d.formData.forEach(function (v, k) { if (v === "") empty.push(k); });
    empty.forEach(function (k) { d.formData.delete(k); });
  });

  // History snapshots are HTML: write typed values into attributes so back/forward restores them.
  document.addEventListener("htmx:beforeHistorySave", function () {
    document.querySelectorAll("#filters input").forEach(function (el) { el.setAttribute("value", el.value); });
    document.querySelectorAll("#filters select option").forEach(function (o) {
      if (o.selected) o.setAttribute("selected", ""); else o.removeAttribute("selected");
    });
  });

  document.addEventListener("htmx:afterSwap", function (e) {
    var target = e.detail.target;
    if (!target) return;
    if (target.id === "panel") {
      // A refresh started inside the panel (a recording being processed) must not move focus.
      var src = e.detail.requestConfig && e.detail.requestConfig.elt;
      showPanel(!(src && target.contains(src)));
    } else if (target.id === "results") {
      var closing = lastOpenId;
      clearPanel();
      var row = rowOf(closing);
      var src2 = e.detail.requestConfig && e.detail.requestConfig.elt;
      if (row && src2 && src2.matches && src2.matches("[data-close-panel]")) row.focus();
      lastOpenId = null;
    }
  });

  // A tapped row shows at once that its call is on the way.
  document.addEventListener("htmx:beforeRequest", function (e) {
    var target = e.detail.target;
    var src = e.detail.elt;
    if (target && target.id === "panel" && src && src.closest) {
      var row = src.closest("tr.call-row");
      if (row) { row.classList.add("is-loading"); row.setAttribute("aria-busy", "true"); }
    }
  });
  document.addEventListener("htmx:afterRequest", function () {
    document.querySelectorAll("tr.call-row.is-loading").forEach(function (r) { r.classList.remove("is-loading"); r.removeAttribute("aria-busy"); });
  });
  document.addEventListener("htmx:sendError", function (e) {
    var target = e.detail.target;
    if (target && target.id === "results") showStale(true);
    if (target && target.id === "panel") {
      showStale(true, navigator.onLine
        ? "The call could not be opened: the server did not answer. Try again."
        : "You are offline: the call cannot be opened until the connection is back.");
    }
  });
  document.addEventListener("htmx:afterSettle", function (e) {
    if (e.detail.target && e.detail.target.id === "results") showStale(false);
  });
  window.addEventListener("online", function () {
    var note = document.getElementById("stale-note");
    if (note) note.querySelector("span").textContent = "You are back online.";
  });

  // HTMX replaces the control that was clicked (an assistant's switch, the new-key form):
  // put focus back on its replacement, so keyboard users keep their place.
  var refocus = null;
  document.addEventListener("htmx:beforeSwap", function (e) {
    var a = document.activeElement;
    refocus = null;
    if (a && a.id) refocus = "#" + a.id;
    else if (a && a.closest && a.closest("[data-assistant-id]") && a.matches("[role=switch]")) {
      refocus = "#" + a.closest("[data-assistant-id]").id + " [role=switch]";
    } else if (a && a.closest && a.closest("#api-keys") && a.matches("button[type=submit]")) {
      refocus = "[data-copy-key]";
    } else if (a && a.closest && a.closest("#notes")) {
      refocus = "#note-text";
    }
  });
  document.addEventListener("htmx:afterSettle", function () {
    if (!refocus) return;
    var el = document.querySelector(refocus);
    if (el && document.activeElement !== el && (document.activeElement === document.body || !document.activeElement)) el.focus();
    refocus = null;
  });

  /* Whether two zones show the same wall-clock time now and in half a year ("UTC", "Etc/UTC"). */
  function sameClock(a, b) {
    try {
      var fmt = function (zone) {
        return new Intl.DateTimeFormat("en-US", { timeZone: zone, month: "numeric", day: "numeric", hour: "numeric", minute: "numeric" });
      };
      var now = Date.now();
      return [now, now + 182 * 864e5].every(function (t) { return fmt(a).format(t) === fmt(b).format(t); });
    } catch (err) {
      return false;
    }
  }

  // The browser's time zone, so the server shows times and reads dates on the agent's clock.
  (function syncZone() {
    var zone;
    try { zone = Intl.DateTimeFormat().resolvedOptions().timeZone; } catch (err) { return; }
    if (!zone) return;
    var current = document.cookie.match(/(?:^|; )talkturo_tz=([^;]*)/);
    if (current && decodeURIComponent(current[1]) === zone) return;
    document.cookie = "talkturo_tz=" + encodeURIComponent(zone) + "; path=/; max-age=31536000; samesite=lax";
    var meta = document.querySelector("meta[name=talkturo-tz]");
    // Shown on another clock and the user chose no zone: show this page again on the right one.
    if (meta && meta.dataset.chosen === "0" && meta.content !== zone && !sameClock(meta.content, zone)) {
      try {
        if (sessionStorage.getItem("talkturo:tz-reloaded") === zone) return;
        sessionStorage.setItem("talkturo:tz-reloaded", zone);
      } catch (err) { return; }
      location.reload();
    }
  })();

  // Phones: the less used filters fold behind "More filters" (open when one is in use).
  function foldFilters() {
    var form = document.getElementById("filters");
    var toggle = form && form.querySelector("[data-more-filters]");
    if (!toggle) return;
    toggle.hidden = false;
    form.classList.add("can-collapse");
    form.classList.toggle("show-more", toggle.getAttribute("aria-expanded") === "true");
  }
  document.addEventListener("DOMContentLoaded", foldFilters);

  document.addEventListener("htmx:historyRestore", function () { showPanel(false); });
  document.addEventListener("DOMContentLoaded", function () { showPanel(false); });
})();
