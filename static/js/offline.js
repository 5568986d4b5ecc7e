/* The offline page's "Try again": reload (a static file, so no inline handler is needed). */
document.addEventListener("click", function (e) {
  if (e.target instanceof Element && e.target.closest("[data-reload]")) location.reload();
});
