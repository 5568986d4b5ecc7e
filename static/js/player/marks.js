/* Talk-over and dead-air spans found in the peaks, and note markers on the waveform. */
import { clock, spoken } from "./format.js";

const DEAD_AIR_S = 3;
const OVERLAP_MIN_S = 0.3;
// A side counts as talking through the short gaps between words.
const HOLD_S = 0.25;

/* Both sides talking (>= 0.3 s) and neither talking (> 3 s), in seconds. */
export function findMarks(peaks, peakMax) {
  const count = peaks.length;
  const data = peaks.data;
  const secondsPerPoint = peaks.samples_per_pixel / peaks.sample_rate;
  const threshold = Math.max(3, (peakMax || 1) * 0.12);
  const hold = Math.max(0, Math.round(HOLD_S / secondsPerPoint));
  const talking = [new Uint8Array(count), new Uint8Array(count)];
  for (let channel = 0; channel < 2; channel++) {
    let lastLoud = -Infinity;
    for (let i = 0; i < count; i++) {
      const low = Math.abs(data[i * 4 + channel * 2]);
      const high = Math.abs(data[i * 4 + channel * 2 + 1]);
      if (Math.max(low, high) > threshold) lastLoud = i;
      talking[channel][i] = i - lastLoud <= hold ? 1 : 0;
    }
  }
  const marks = [];
  const close = (kind, start, end) => {
    const length = (end - start) * secondsPerPoint;
    if ((kind === "overlap" && length >= OVERLAP_MIN_S) || (kind === "silence" && length > DEAD_AIR_S)) {
      marks.push({ kind, start: start * secondsPerPoint, end: end * secondsPerPoint });
    }
  };
  let overlapStart = -1;
  let silenceStart = -1;
  for (let i = 0; i <= count; i++) {
    const caller = i < count && talking[0][i] === 1;
    const assistant = i < count && talking[1][i] === 1;
    const both = i < count && caller && assistant;
    const neither = i < count && !caller && !assistant;
    if (both && overlapStart < 0) overlapStart = i;
    if (!both && overlapStart >= 0) { close("overlap", overlapStart, i); overlapStart = -1; }
    if (neither && silenceStart < 0) silenceStart = i;
    if (!neither && silenceStart >= 0) { close("silence", silenceStart, i); silenceStart = -1; }
  }
  return marks;
}

/* The strip under the waveform: one button per span, which seeks to its start. */
export function renderMarks(lane, marks, duration, seek) {
  lane.textContent = "";
  const total = duration || 1;
  for (const mark of marks) {
    const button = document.createElement("button");
    button.type = "button";
    button.className = "player-mark player-mark-" + mark.kind;
    button.style.left = (100 * mark.start) / total + "%";
    button.style.width = Math.max(0.6, (100 * (mark.end - mark.start)) / total) + "%";
    const what = mark.kind === "overlap" ? "Both speaking" : "Silence";
    button.setAttribute("aria-label", what + " at " + clock(mark.start) + " for " + spoken(mark.end - mark.start));
    button.title = what + " " + clock(mark.start) + "–" + clock(mark.end);
    button.dataset.start = String(mark.start);
    button.addEventListener("click", () => seek(mark.start));
    lane.appendChild(button);
  }
}

/* Note markers over the waveform, from the notes list in the panel. */
export function renderNoteMarks(layer, notes, duration) {
  if (!layer) return;
  layer.textContent = "";
  const total = duration || 1;
  for (const note of notes) {
    const marker = document.createElement("span");
    marker.className = "player-note";
    marker.style.left = Math.min(100, (100 * note.atMs) / 1000 / total) + "%";
    marker.title = clock(note.atMs / 1000) + " " + note.text;
    marker.dataset.atMs = String(note.atMs);
    layer.appendChild(marker);
  }
  layer.dataset.count = String(notes.length);
}
