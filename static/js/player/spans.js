/* Marked spans over the waveform: redacted (hatched), paused, keypad tones removed.
   The spans come from a JSON data block the panel renders; the list beneath the legend
   says the same in words. Each mark covers its channel's lane (or both). */
import { clock } from "./format.js";

const LABELS = { redacted: "Redacted", paused: "Paused", keypad: "Keypad tone removed" };

export function readSpans(root) {
  const block = root.querySelector("script[type='application/json'][data-spans]");
  if (!block) return [];
  try {
    const spans = JSON.parse(block.textContent);
    return Array.isArray(spans) ? spans : [];
  } catch (err) {
    return [];
  }
}

export function renderSpans(layer, spans, duration) {
  if (!layer) return;
  layer.textContent = "";
  const total = duration || 1;
  for (const span of spans) {
    const start = Math.max(0, Number(span.start_ms) / 1000);
    const end = Math.max(start, Number(span.end_ms) / 1000);
    if (!isFinite(start) || !isFinite(end)) continue;
    const mark = document.createElement("span");
    const channel = ["caller", "assistant"].includes(span.channel) ? span.channel : "both";
    mark.className = "player-span player-span-" + (LABELS[span.kind] ? span.kind : "redacted") + " player-span-on-" + channel;
    mark.style.left = Math.min(100, (100 * start) / total) + "%";
    mark.style.width = Math.max(0.4, (100 * (end - start)) / total) + "%";
    mark.title = (LABELS[span.kind] || "Redacted") + " " + clock(start) + "–" + clock(end);
    mark.dataset.startMs = String(span.start_ms);
    mark.dataset.endMs = String(span.end_ms);
    mark.dataset.kind = span.kind;
    layer.appendChild(mark);
  }
  layer.dataset.count = String(layer.childElementCount);
}

/* Draw the player's spans now and again when the audio tells its exact duration. */
export function attachSpans(player) {
  const layer = player.root.querySelector("[data-span-marks]");
  if (!layer) return;
  const spans = readSpans(player.root);
  const draw = () => renderSpans(layer, spans, player.duration);
  draw();
  player.on(player.audio, "loadedmetadata", draw);
}
