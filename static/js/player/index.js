/*
 * The recording player on full pages and on panels swapped in by HTMX: starts a Player per
 * [data-player], ties it to the transcript and notes, and takes Space and the arrow keys
 * anywhere in the panel outside text fields.
 */
import { Player } from "./player.js";
import { TranscriptFollower } from "./transcript.js";
import { findMarks } from "./marks.js";
import { attachSpans } from "./spans.js";
import { attachRedact } from "./redact.js";

let instances = [];

function live() {
  return instances.filter((p) => p.root.isConnected && !p.destroyed).pop();
}

function setup(scope) {
  instances = instances.filter((p) => {
    if (!p.root.isConnected) { p.destroy(); return false; }
    return true;
  });
  const roots = [];
  if (scope.matches && scope.matches("[data-player]")) roots.push(scope);
  if (scope.querySelectorAll) roots.push(...scope.querySelectorAll("[data-player]"));
  for (const root of roots) {
    if (root._talkturoPlayer) continue;
    const player = new Player(root);
    root._talkturoPlayer = player;
    instances.push(player);
    const detail = root.closest("[data-detail]");
    if (detail) player.attachTranscript(new TranscriptFollower(detail));
    attachSpans(player);
    attachRedact(player);
  }
}

// HTMX warns before it removes an element; tear down only players that really left the page.
function teardown(scope) {
  const doomed = instances.filter((p) => scope === p.root || (scope.contains && scope.contains(p.root)));
  if (!doomed.length) return;
  setTimeout(() => {
    for (const player of doomed) {
      if (player.root.isConnected || player.destroyed) continue;
      player.destroy();
      player.root._talkturoPlayer = null;
      instances = instances.filter((x) => x !== player);
    }
  }, 0);
}

function isTextField(el) {
  return el.isContentEditable || el.matches("input, textarea, select, [role=textbox]");
}

document.addEventListener("keydown", (event) => {
  if (event.defaultPrevented || event.altKey || event.ctrlKey || event.metaKey) return;
  const player = live();
  const target = event.target;
  if (!player || !(target instanceof Element)) return;
  const panel = player.root.closest("#panel") || player.root.closest("[data-detail]");
  const inPanel = panel && (panel.contains(target) || target === document.body);
  if (!inPanel || isTextField(target) || target.closest("[role=tablist]")) return;
  // Buttons and links keep Space and Enter for themselves.
  const isSpace = event.key === " " || event.key === "Spacebar";
  if (isSpace && target.closest("button, a, summary, [role=button]")) return;
  if (!["ArrowLeft", "ArrowRight"].includes(event.key) && !isSpace) return;
  if (player.handleKey(event.key, false)) event.preventDefault();
});

document.addEventListener("DOMContentLoaded", () => setup(document));
document.addEventListener("htmx:load", (e) => setup(e.detail && e.detail.elt ? e.detail.elt : document));
document.addEventListener("htmx:afterSwap", () => {
  setup(document);
  // A changed notes list moves the markers on the waveform.
  const player = live();
  if (player) player.refreshNotes();
});
document.addEventListener("htmx:beforeCleanupElement", (e) => teardown(e.target));
// Buttons in the transcript ask to hear a moment: seek there and play (notes only seek).
document.addEventListener("talkturo:seek", (e) => {
  const ms = e.detail && Number(e.detail.ms);
  const player = live();
  if (!player || !isFinite(ms)) return;
  player.seek(ms / 1000);
  if (!(e.detail && e.detail.seekOnly) && player.audio.paused) player.play();
});
document.addEventListener("input", (e) => {
  if (e.target instanceof Element && e.target.matches("[data-note-at]")) e.target.dataset.edited = "1";
});
if (document.readyState !== "loading") setup(document);

window.talkturoPlayer = { instances: () => instances.slice(), findMarks, setup };
