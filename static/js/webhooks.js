// Settings → Webhooks: the Copy button beside a secret shown once (delegated, so HTMX swaps keep it).
document.addEventListener("click", async (event) => {
  const button = event.target instanceof Element ? event.target.closest("[data-copy]") : null;
  if (!button) return;
  const source = document.querySelector(button.getAttribute("data-copy"));
  const state = button.parentElement?.querySelector("[data-copy-state]");
  if (!source) return;
  try {
    await navigator.clipboard.writeText(source.textContent.trim());
    if (state) state.textContent = "Copied.";
  } catch {
    // No clipboard access (http, or denied): select the text so Ctrl+C works.
    const range = document.createRange();
    range.selectNodeContents(source);
    const selection = window.getSelection();
    selection?.removeAllRanges();
    selection?.addRange(range);
    if (state) state.textContent = "Selected: press Ctrl+C to copy.";
  }
});
