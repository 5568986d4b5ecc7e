/*
 * The two-lane waveform (caller on top, assistant below, time axis at the bottom).
 * Bars are drawn once per size (or mute change) into two offscreen layers, "at rest" and
 * "played"; each frame only copies them and draws the cursor.
 */
import { clock } from "./format.js";

const COLORS = {
  background: "#1e1b2e",
  restCaller: "rgba(255,255,255,0.78)",
  restAssistant: "rgba(167,139,250,0.85)",
  playedCaller: "#ffffff",
  playedAssistant: "#c4b5fd",
  axis: "rgba(255,255,255,0.7)",
  cursor: "#22c55e",
};
const MUTED_ALPHA = 0.25;
const TICK_STEPS = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600];

function layer(width, height) {
  if (typeof OffscreenCanvas === "function") return new OffscreenCanvas(width, height);
  const canvas = document.createElement("canvas");
  canvas.width = width;
  canvas.height = height;
  return canvas;
}

/* The largest absolute sample of the peaks: scanned once, when they arrive. */
export function peakMaximum(peaks) {
  let max = 1;
  const data = peaks.data;
  for (let i = 0; i < data.length; i++) {
    const v = data[i] < 0 ? -data[i] : data[i];
    if (v > max) max = v;
  }
  return max;
}

export class Waveform {
  constructor(container, canvas) {
    this.container = container;
    this.canvas = canvas;
    this.peaks = null;
    this.peakMax = 1;
    this.duration = 0;
    this.dim = { caller: false, assistant: false };
    this.rest = null;
    this.played = null;
    this.layerKey = "";
    this.layerBuilds = 0;
  }

  setPeaks(peaks, peakMax) {
    this.peaks = peaks;
    this.peakMax = peakMax;
    this.layerKey = "";
  }

  setDuration(seconds) {
    if (seconds !== this.duration) { this.duration = seconds; this.layerKey = ""; }
  }

  setDimmed(side, dimmed) {
    if (this.dim[side] !== dimmed) { this.dim[side] = dimmed; this.layerKey = ""; }
  }

  /* The canvas size in device pixels, matched to its box; false while it has none. */
  fit() {
    const cssWidth = this.container.clientWidth;
    const cssHeight = this.container.clientHeight;
    if (!cssWidth || !cssHeight) return false;
    const dpr = window.devicePixelRatio || 1;
    const width = Math.round(cssWidth * dpr);
    const height = Math.round(cssHeight * dpr);
    if (this.canvas.width !== width || this.canvas.height !== height) {
      this.canvas.width = width;
      this.canvas.height = height;
    }
    this.dpr = dpr;
    return true;
  }

  buildLayers() {
    const { width, height } = this.canvas;
    const key = [width, height, this.duration, !!this.peaks, this.dim.caller, this.dim.assistant].join("|");
    if (key === this.layerKey) return;
    this.layerKey = key;
    this.layerBuilds++;
    const axisHeight = Math.round(16 * this.dpr);
    this.axisTop = height - axisHeight;
    this.rest = this.buildLayer(COLORS.restCaller, COLORS.restAssistant);
    // The played layer is first needed when something has played: built then, not before the
    // first paint (still once per size or mute change).
    this.played = null;
  }

  /* One layer: background, both lanes' bars in these colours, the time axis. */
  buildLayer(caller, assistant) {
    const { width, height } = this.canvas;
    const target = layer(width, height);
    const laneGap = Math.round(4 * this.dpr);
    const laneHeight = Math.floor((this.axisTop - laneGap) / 2);
    const g = target.getContext("2d");
    g.fillStyle = COLORS.background;
    g.fillRect(0, 0, width, height);
    if (this.peaks) {
      this.drawLane(g, 0, 0, laneHeight, caller, this.dim.caller);
      this.drawLane(g, 1, laneHeight + laneGap, laneHeight, assistant, this.dim.assistant);
    }
    this.drawAxis(g, width);
    return target;
  }

  drawLane(g, channel, top, laneHeight, color, dimmed) {
    const peaks = this.peaks;
    const data = peaks.data;
    const width = this.canvas.width;
    const peaksDuration = (peaks.length * peaks.samples_per_pixel) / peaks.sample_rate;
    const total = Math.max(this.duration, 0.001);
    const scale = 1 / Math.max(this.peakMax, 16);
    const middle = top + laneHeight / 2;
    g.globalAlpha = dimmed ? MUTED_ALPHA : 1;
    g.fillStyle = color;
    for (let x = 0; x < width; x++) {
      // Columns map through time, so peaks and audio line up even if lengths differ slightly.
      const t0 = (x / width) * total;
      const t1 = ((x + 1) / width) * total;
      if (t0 >= peaksDuration) break;
      const first = Math.floor((t0 / peaksDuration) * peaks.length);
      const last = Math.max(first + 1, Math.min(peaks.length, Math.ceil((t1 / peaksDuration) * peaks.length)));
      let low = 0;
      let high = 0;
      for (let i = first; i < last; i++) {
        const lo = data[i * 4 + channel * 2];
        const hi = data[i * 4 + channel * 2 + 1];
        if (lo < low) low = lo;
        if (hi > high) high = hi;
      }
      const yTop = middle - high * scale * (laneHeight / 2);
      const yBottom = middle - low * scale * (laneHeight / 2);
      g.fillRect(x, Math.floor(yTop), 1, Math.max(1, Math.ceil(yBottom - yTop)));
    }
    g.globalAlpha = 1;
  }

  drawAxis(g, width) {
    const total = this.duration || 0;
    if (total <= 0) return;
    const dpr = this.dpr;
    g.fillStyle = COLORS.axis;
    g.font = Math.round(10 * dpr) + "px system-ui, sans-serif";
    g.textBaseline = "top";
    // A tick every "nice" interval that leaves room for its label.
    const minPixels = 60 * dpr;
    let step = TICK_STEPS[TICK_STEPS.length - 1];
    for (const candidate of TICK_STEPS) {
      if ((candidate / total) * width >= minPixels) { step = candidate; break; }
    }
    for (let t = 0; t <= total; t += step) {
      const x = Math.round((t / total) * width);
      g.fillRect(x, this.axisTop, Math.max(1, Math.round(dpr)), Math.round(4 * dpr));
      if (x < width - 30 * dpr) g.fillText(clock(t), x + 3 * dpr, this.axisTop + 3 * dpr);
    }
  }

  /* One frame: the resting layer, the played part over it, the cursor. */
  draw(position) {
    if (!this.fit()) return false;
    this.buildLayers();
    const g = this.canvas.getContext("2d");
    const { width, height } = this.canvas;
    g.drawImage(this.rest, 0, 0);
    const playedX = this.duration ? Math.round((position / this.duration) * width) : 0;
    if (playedX > 0) {
      if (!this.played) this.played = this.buildLayer(COLORS.playedCaller, COLORS.playedAssistant);
      const x = Math.min(playedX, width);
      g.drawImage(this.played, 0, 0, x, height, 0, 0, x, height);
      g.fillStyle = COLORS.cursor;
      g.fillRect(Math.min(playedX, width - 2), 0, Math.max(2, Math.round(2 * this.dpr)), this.axisTop);
    }
    return !!this.peaks;
  }
}
