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
    if (!p || p.hidden) return;
    p.innerHTML = "";
    p.hidden = true;
    var pg = page();
    if (pg) pg.classList.remove("panel-open");
    markOpen(null);
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

    var tab = t.closest("[role=tab]");
    if (tab) { selectTab(tab, false); return; }

    var seek = t.closest("[data-seek-ms]");
    if (seek) {
      var ms = Number(seek.getAttribute("data-seek-ms"));
      seek.dispatchEvent(new CustomEvent("talkturo:seek", { bubbles: true, detail: { ms: ms } }));
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
      if (p && !p.hidden && (p.contains(t) || t === document.body)) {
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

  document.addEventListener("htmx:historyRestore", function () { showPanel(false); });
  document.addEventListener("DOMContentLoaded", function () { showPanel(false); });
})();
