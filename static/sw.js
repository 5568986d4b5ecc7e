/*
 * Talkturo service worker (served at /sw.js, scope /): keeps the app shell and static files
 * so the dashboard opens fast and says clearly when it is offline. It never stores a
 * recording, its peaks, or any page with call data: those always come from the network.
 */
"use strict";

var VERSION = "talkturo-shell-v1";
var OFFLINE_URL = "/offline";
var SHELL = [
  OFFLINE_URL,
  "/static/css/app.css",
  "/static/css/player.css",
  "/static/js/player/index.js",
  "/static/js/player/player.js",
  "/static/js/player/waveform.js",
  "/static/js/player/marks.js",
  "/static/js/player/renewal.js",
  "/static/js/player/format.js",
  "/static/js/player/transcript.js",
  "/static/js/app.js",
  "/static/js/offline.js",
  "/static/js/pwa.js",
  "/static/vendor/htmx.min.js",
  "/static/icons/icon-192.png",
  "/static/icons/icon-512.png",
  "/manifest.webmanifest",
];

self.addEventListener("install", function (event) {
  event.waitUntil(
    caches.open(VERSION).then(function (cache) {
      // One missing optional file must not block installation of the rest.
      return Promise.all(SHELL.map(function (url) {
        return cache.add(new Request(url, { cache: "reload" })).catch(function () {});
      }));
    }).then(function () { return self.skipWaiting(); })
  );
});

self.addEventListener("activate", function (event) {
  event.waitUntil(
    caches.keys().then(function (keys) {
      return Promise.all(keys.filter(function (k) { return k !== VERSION; }).map(function (k) { return caches.delete(k); }));
    }).then(function () { return self.clients.claim(); })
  );
});

function isStatic(url) {
  return url.origin === self.location.origin &&
    (url.pathname.indexOf("/static/") === 0 || url.pathname === "/manifest.webmanifest");
}

self.addEventListener("fetch", function (event) {
  var req = event.request;
  if (req.method !== "GET") return;
  var url = new URL(req.url);
  if (url.origin !== self.location.origin) return;

  if (req.mode === "navigate") {
    // Pages carry call data: network only; when it fails, the offline page.
    event.respondWith(fetch(req).catch(function () {
      return caches.match(OFFLINE_URL).then(function (r) {
        return r || new Response("You are offline.", { status: 503, headers: { "Content-Type": "text/plain" } });
      });
    }));
    return;
  }

  if (isStatic(url)) {
    // Stale-while-revalidate: instant from cache, refreshed in the background.
    event.respondWith(caches.open(VERSION).then(function (cache) {
      return cache.match(req).then(function (cached) {
        var fresh = fetch(req).then(function (resp) {
          if (resp.ok) cache.put(req, resp.clone());
          return resp;
        });
        if (cached) {
          fresh.catch(function () {});
          return cached;
        }
        return fresh;
      });
    }));
  }
  // Everything else (recordings with Range, peaks, API, HTMX fragments) goes to the network untouched.
});
