/* Registers the service worker (root scope) so the dashboard is installable and works offline. */
(function () {
  "use strict";
  if (!("serviceWorker" in navigator) || !window.isSecureContext) return;
  window.addEventListener("load", function () {
    navigator.serviceWorker.register("/sw.js", { scope: "/" }).then(function (reg) {
      document.documentElement.dataset.sw = "registered";
      return reg;
    }).catch(function () {
      document.documentElement.dataset.sw = "failed";
    });
  });
})();
