/*
 * One recording player: an <audio> element fed through MSE (stream.js: the first 8 KB when the
 * panel opens, the rest on play or when the agent reaches for the player), the waveform, the
 * talk-over/dead-air strip, note markers, solo/mute per side through Web Audio, visible
 * loading/buffering/offline states, and signed-URL renewal.
 */
import { clock, spoken } from "./format.js";
import { findMarks, renderMarks, renderNoteMarks } from "./marks.js";
import { Renewal } from "./renewal.js";
import { Stream, streamable } from "./stream.js";

import { Waveform, peakMaximum } from "./waveform.js";

const ARROW_STEP_S = 5;
// A seek this far past the streamed part goes to the plain src (Range from there) instead.
const FAR_AHEAD_SECONDS = 10;
const SKIP_S = 15;
const SIDES = ["caller", "assistant"];
const SPEED_KEY = "talkturo:speed";

/* Run ``fn`` once the next frame has been painted (a task after it; rAF alone runs before). */
function afterPaint(fn) {
  requestAnimationFrame(() => setTimeout(fn, 0));
}

function csrfToken() {
  const meta = document.querySelector("meta[name=csrf-token]");
  return meta ? meta.content : "";
}

export class Player {
  constructor(root) {
    this.root = root;
    this.audio = root.querySelector("audio");
    this.wave = root.querySelector("[data-wave]");
    this.lane = root.querySelector("[data-lane]");
    this.noteLayer = root.querySelector("[data-note-marks]");
    this.playButton = root.querySelector("[data-play]");
    this.positionText = root.querySelector("[data-pos]");
    this.durationText = root.querySelector("[data-dur]");
    this.speedSelect = root.querySelector("[data-speed]");
    this.download = root.querySelector("[data-download]");
    this.statusText = root.querySelector("[data-status]");
    this.errorBox = root.querySelector("[data-error]");
    this.errorText = root.querySelector("[data-error-text]");
    this.waveform = new Waveform(this.wave, root.querySelector("canvas"));
    // The server's duration (the header shows the same figure); the audio's refines the maths.
    this.serverDuration = (parseInt(root.dataset.durationMs, 10) || 0) / 1000;
    this.duration = this.serverDuration;
    // The signed MP3 URL now (renewed from time to time); the element may play it through MSE.
    this.url = this.audio.getAttribute("src");
    this.stream = streamable(this.serverDuration) ? new Stream(this.audio, this.serverDuration, () => this.plainSrc()) : null;
    this.peaks = null;
    this.marks = [];
    const startAt = parseFloat(root.dataset.startAt);
    this.pendingSeek = isFinite(startAt) && startAt > 0 ? Math.min(startAt, this.duration || startAt) : null;
    this.pendingUrl = null;
    this.solo = { caller: false, assistant: false };
    this.muted = { caller: false, assistant: false };
    this.graph = null;
    this.frame = 0;
    this.dragging = false;
    this.lastRecovery = 0;
    this.listeners = [];
    this.painted = false;
    this.retry = null;
    this.follower = null;
    this.renewal = new Renewal(
      root.dataset.renewUrl,
      parseInt(root.dataset.expires, 10) || 0,
      (urls) => this.onUrls(urls),
      () => this.showError("Your session has ended: sign in again to keep listening.", () => location.reload()),
    );
    this.init();
  }

  on(target, type, fn, options) {
    const bound = fn.bind(this);
    target.addEventListener(type, bound, options);
    this.listeners.push([target, type, bound, options]);
  }

  init() {
    const audio = this.audio;
    audio.preservesPitch = true;
    this.on(this.playButton, "click", this.toggle);
    this.on(audio, "play", this.onPlayState);
    this.on(audio, "playing", this.onPlayState);
    this.on(audio, "pause", this.onPause);
    this.on(audio, "ended", this.onPlayState);
    this.on(audio, "waiting", this.onWaiting);
    // A seek within what is already buffered ends without a new "playing": sound flows again.
    this.on(audio, "seeked", this.onFlowing);
    this.on(audio, "canplay", this.onFlowing);
    this.on(audio, "stalled", this.onWaiting);
    this.on(audio, "timeupdate", this.update);
    this.on(audio, "loadedmetadata", this.onMetadata);
    this.on(audio, "error", this.onError);
    this.on(this.speedSelect, "change", this.onSpeed);
    this.on(this.wave, "pointerdown", this.onPointerDown);
    this.on(this.wave, "pointermove", this.onPointerMove);
    this.on(this.wave, "pointerup", this.onPointerUp);
    this.on(this.wave, "pointercancel", this.onPointerUp);
    this.on(this.wave, "keydown", this.onSliderKey);
    this.on(this.root, "pointerenter", this.warmUp);
    this.on(this.root, "focusin", this.warmUp);
    this.on(this.playButton, "pointerdown", this.warmUp);
    this.on(this.playButton, "pointerdown", this.startGraph);
    this.on(window, "offline", this.onConnection);
    this.on(window, "online", this.onConnection);
    for (const button of this.root.querySelectorAll("[data-side]")) {
      this.on(button, "click", () => this.toggleSide(button.dataset.side, button.dataset.mode));
    }
    for (const button of this.root.querySelectorAll("[data-skip]")) {
      this.on(button, "click", () => this.skip(Number(button.dataset.skip)));
    }
    const copy = this.root.querySelector("[data-copy-moment]");
    if (copy) this.on(copy, "click", this.copyMoment);
    const retry = this.root.querySelector("[data-retry]");
    if (retry) this.on(retry, "click", () => { const again = this.retry; this.hideError(); if (again) again(); });
    if ("ResizeObserver" in window) {
      // A new size rebuilds the layers (in draw); nothing else does.
      this.resizer = new ResizeObserver(() => this.draw());
      this.resizer.observe(this.wave);
    }
    // One drawing once everything is set (each drawing lays the page out first), not one per step.
    this.holdDraw = true;
    this.applySpeed(this.initialSpeed());
    this.applyGains();
    this.refreshNotes();
    this.update();
    const inline = this.loadPeaks();
    this.holdDraw = false;
    // Inline peaks arrive in a microtask and draw then; fetched ones show the empty axis first.
    if (!inline) this.draw();
    this.renewal.schedule();
    if (!navigator.onLine) this.onConnection();
  }

  destroy() {
    cancelAnimationFrame(this.frame);
    if (this.stream) this.stream.stop();
    this.renewal.stop();
    if (this.resizer) this.resizer.disconnect();
    if (this.follower) this.follower.destroy();
    for (const [target, type, fn, options] of this.listeners) target.removeEventListener(type, fn, options);
    this.listeners = [];
    try {
      this.audio.pause();
      this.audio.removeAttribute("src");
      this.audio.load();
    } catch (err) { /* already gone */ }
    if (this.graph) this.graph.context.close();
    this.graph = null;
    this.destroyed = true;
  }

  attachTranscript(follower) {
    if (this.follower) this.follower.destroy();
    this.follower = follower;
    follower.update(this.position());
  }

  setState(state) {
    this.root.dataset.state = state;
  }

  say(text) {
    if (this.statusText.textContent !== text) this.statusText.textContent = text;
  }

  loadPeaks() {
    this.setState("loading");
    this.say("Loading the waveform…");
    const inline = this.root.querySelector("script[type='application/json'][data-peaks]");
    const source = inline
      ? Promise.resolve(JSON.parse(inline.textContent))
      : fetch(this.root.dataset.peaksUrl, { credentials: "same-origin" }).then((response) => {
        if (!response.ok) throw new Error("peaks " + response.status);
        return response.json();
      });
    source
      .then((peaks) => {
        if (this.destroyed) return;
        if (peaks.version !== 2 || peaks.channels !== 2) throw new Error("unexpected peaks format");
        this.peaks = peaks;
        if (!this.duration) this.duration = (peaks.length * peaks.samples_per_pixel) / peaks.sample_rate;
        const peakMax = peakMaximum(peaks);
        this.waveform.setPeaks(peaks, peakMax);
        if (this.root.dataset.state === "loading") this.setState("ready");
        this.say("");
        this.update();
        // The waveform is drawn first; the talk-over/dead-air strip follows once that frame is
        // on screen (finding the marks and laying out their buttons would hold it up).
        afterPaint(() => {
          if (this.destroyed || this.peaks !== peaks) return;
          this.marks = findMarks(peaks, peakMax);
          renderMarks(this.lane, this.marks, this.duration, (t) => this.seek(t));
          this.root.dataset.marks = String(this.marks.length);
        });
      })
      .catch(() => {
        if (this.destroyed) return;
        if (this.root.dataset.state === "loading") this.setState("ready");
        this.say("");
        const why = navigator.onLine ? "The waveform could not be loaded" : "The waveform could not be loaded: you are offline";
        this.showError(why + "; playback may still work.", () => this.loadPeaks());
      });
    return !!inline;
  }

  draw() {
    if (this.holdDraw) return;
    this.waveform.setDuration(this.duration);
    const painted = this.waveform.draw(this.position());
    this.root.dataset.layerBuilds = String(this.waveform.layerBuilds);
    if (painted && !this.painted) {
      this.painted = true;
      this.root.dataset.painted = "1";
      if (window.performance && performance.mark) performance.mark("talkturo:waveform-painted");
      // Once the waveform is up: the first few KB of the MP3, so Play starts without a round trip.
      setTimeout(() => this.prefetchHead(), 0);
    }
  }

  prefetchHead() {
    if (!this.stream || this.destroyed || !navigator.onLine || (navigator.connection && navigator.connection.saveData)) return;
    this.stream.prefetch(this.url);
  }

  /* Streaming failed (or cannot start): the element plays the signed URL itself, from here. */
  plainSrc() {
    if (this.destroyed) return;
    const audio = this.audio;
    const at = this.position();
    const wasPlaying = !audio.paused || this.root.dataset.state === "playing" || this.root.dataset.state === "buffering";
    audio.setAttribute("src", this.url);
    this.root.dataset.src = this.url;
    this.root.dataset.streaming = "0";
    this.pendingSeek = at;
    audio.load();
    if (wasPlaying) this.play();
  }

  startStream() {
    if (!this.stream || this.stream.attached || this.stream.failed) return;
    this.root.dataset.streaming = "1";
    this.stream.attach(this.url);
  }

  /* When the agent reaches for the player (pointer over it, focus in it, a finger down on
     Play): start loading the MP3, so Play starts from data already here. A call that is only
     looked at fetches no audio. */
  warmUp() {
    if (this.audio.preload === "none" && navigator.onLine && !(navigator.connection && navigator.connection.saveData)) {
      if (this.stream && !this.stream.failed) this.startStream();
      else this.audio.preload = "metadata";
    }
  }

  position() {
    if (this.pendingSeek !== null) return this.pendingSeek;
    return this.audio.currentTime || 0;
  }

  update() {
    const position = this.position();
    const duration = this.duration;
    this.positionText.textContent = clock(position);
    this.durationText.textContent = clock(this.serverDuration || duration);
    this.wave.setAttribute("aria-valuemax", String(Math.round(duration)));
    this.wave.setAttribute("aria-valuenow", String(Math.round(position)));
    this.wave.setAttribute("aria-valuetext", spoken(position) + " of " + spoken(duration));
    this.root.dataset.position = position.toFixed(3);
    if (this.follower) this.follower.update(position);
    this.updateNoteTime(position);
    this.draw();
  }

  onMetadata() {
    const audio = this.audio;
    if (isFinite(audio.duration) && audio.duration > 0) this.duration = audio.duration;
    if (this.pendingSeek !== null && this.farAhead(this.pendingSeek)) {
      this.stream.fail();
      return;
    }
    if (this.pendingSeek !== null) {
      audio.currentTime = Math.min(this.pendingSeek, this.duration);
      this.pendingSeek = null;
    }
    audio.playbackRate = parseFloat(this.speedSelect.value) || 1;
    audio.preservesPitch = true;
    this.update();
  }

  /* True when ``seconds`` lies well past what the stream has delivered: a seek there would wait
     for everything before it, where the plain src fetches from that point by Range at once. */
  farAhead(seconds) {
    const stream = this.stream;
    if (!stream || !stream.active || stream.done) return false;
    const ranges = this.audio.buffered;
    const reached = ranges.length ? ranges.end(ranges.length - 1) : 0;
    return seconds > reached + FAR_AHEAD_SECONDS;
  }

  seek(seconds) {
    const target = Math.max(0, Math.min(seconds, this.duration || seconds));
    if (this.farAhead(target)) {
      this.pendingSeek = target;
      this.stream.fail();
      this.update();
      return;
    }
    if (this.audio.readyState === 0) this.pendingSeek = target;
    else this.audio.currentTime = target;
    this.update();
  }

  skip(seconds) {
    this.seek(this.position() + seconds);
  }

  initialSpeed() {
    const fromServer = this.speedSelect.value;
    if (fromServer && fromServer !== "1") return fromServer;
    try { return localStorage.getItem(SPEED_KEY) || fromServer || "1"; } catch (err) { return fromServer || "1"; }
  }

  applySpeed(value) {
    const option = Array.from(this.speedSelect.options).find((o) => o.value === String(value));
    if (option) this.speedSelect.value = option.value;
    this.audio.playbackRate = parseFloat(this.speedSelect.value) || 1;
    this.audio.preservesPitch = true;
    this.root.dataset.playbackRate = String(this.audio.playbackRate);
  }

  onSpeed() {
    const value = this.speedSelect.value;
    this.applySpeed(value);
    try { localStorage.setItem(SPEED_KEY, value); } catch (err) { /* private mode */ }
    // Remembered for the user on the server, so another device starts at the same speed.
    const url = this.root.dataset.speedUrl;
    if (!url) return;
    fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/x-www-form-urlencoded", "X-CSRFToken": csrfToken() },
      body: "speed=" + encodeURIComponent(value),
    }).then((response) => { this.root.dataset.speedSaved = response.ok ? value : "failed"; })
      .catch(() => { this.root.dataset.speedSaved = "failed"; });
  }

  ensureGraph() {
    const Context = window.AudioContext || window.webkitAudioContext;
    if (this.graph || !Context) return;
    const context = new Context();
    const source = context.createMediaElementSource(this.audio);
    const splitter = context.createChannelSplitter(2);
    const merger = context.createChannelMerger(2);
    const gains = {};
    const analysers = {};
    source.connect(splitter);
    SIDES.forEach((side, channel) => {
      const gain = context.createGain();
      const analyser = context.createAnalyser();
      analyser.fftSize = 1024;
      splitter.connect(gain, channel);
      gain.connect(merger, 0, channel);
      gain.connect(analyser);
      gains[side] = gain;
      analysers[side] = analyser;
    });
    merger.connect(context.destination);
    this.graph = { context, gains, analysers, buffer: new Float32Array(1024) };
    this.applyGains();
  }

  gainOf(side) {
    const anySolo = this.solo.caller || this.solo.assistant;
    if (anySolo) return this.solo[side] ? 1 : 0;
    return this.muted[side] ? 0 : 1;
  }

  applyGains() {
    for (const side of SIDES) {
      const gain = this.gainOf(side);
      this.root.dataset["gain" + side.charAt(0).toUpperCase() + side.slice(1)] = String(gain);
      this.waveform.setDimmed(side, gain === 0);
      if (this.graph) this.graph.gains[side].gain.setTargetAtTime(gain, this.graph.context.currentTime, 0.01);
    }
    for (const button of this.root.querySelectorAll("[data-side]")) {
      const state = button.dataset.mode === "solo" ? this.solo : this.muted;
      button.setAttribute("aria-pressed", state[button.dataset.side] ? "true" : "false");
    }
    this.draw();
  }

  toggleSide(side, mode) {
    if (mode === "solo") {
      const on = !this.solo[side];
      this.solo = { caller: false, assistant: false };
      this.solo[side] = on;
    } else {
      this.muted[side] = !this.muted[side];
    }
    this.applyGains();
  }

  levels() {
    const graph = this.graph;
    if (!graph) return;
    for (const side of SIDES) {
      graph.analysers[side].getFloatTimeDomainData(graph.buffer);
      let sum = 0;
      for (let i = 0; i < graph.buffer.length; i++) sum += graph.buffer[i] * graph.buffer[i];
      const rms = Math.sqrt(sum / graph.buffer.length);
      const name = side.charAt(0).toUpperCase() + side.slice(1);
      this.root.dataset["level" + name] = rms.toFixed(5);
      this.root.dataset["peak" + name] = Math.max(parseFloat(this.root.dataset["peak" + name] || "0"), rms).toFixed(5);
    }
  }

  toggle() {
    if (this.audio.paused) this.play();
    else this.audio.pause();
  }

  play() {
    const audio = this.audio;
    this.hideError();
    // A side muted or soloed must never be heard: then the graph comes first. Otherwise the
    // graph (a Web Audio context: slow to create on a busy tablet, and it would hold up the
    // media element's loading) is built once sound flows ("playing"), or when a pointer
    // lands on Play before the click.
    const routed = this.solo.caller || this.solo.assistant || this.muted.caller || this.muted.assistant;
    if (routed || this.graph) this.startGraph();
    if (this.pendingUrl) this.swapSrc(this.pendingUrl, false);
    this.startStream();
    audio.preload = "auto";
    if (audio.readyState < 3) { this.setState("buffering"); this.say(navigator.onLine ? "Loading the audio…" : "Offline: the audio cannot load until the connection is back."); }
    const started = audio.play();
    if (started && started.catch) started.catch((err) => {
      if (this.destroyed) return;
      if (err && err.name === "NotAllowedError") this.showError("The browser blocked playback: press Play again.", () => this.play());
    });
  }

  startGraph() {
    this.ensureGraph();
    if (this.graph && this.graph.context.state === "suspended") this.graph.context.resume();
  }

  onWaiting() {
    if (this.audio.paused) return;
    this.setState("buffering");
    this.say(navigator.onLine ? "Buffering…" : "Offline: playback resumes when the connection is back.");
    this.showPlaying(false);
  }

  onFlowing() {
    if (!this.audio.paused && this.audio.readyState >= 3) this.onPlayState();
  }

  showPlaying(playing) {
    this.playButton.setAttribute("aria-label", playing ? "Pause" : "Play");
    this.playButton.classList.toggle("is-playing", playing);
  }

  onPlayState(event) {
    const audio = this.audio;
    const playing = !audio.paused && !audio.ended;
    // "play" only asks; the button turns into Pause once sound really flows ("playing").
    const flowing = playing && (event && event.type === "playing" || audio.readyState >= 3);
    if (flowing) { this.setState("playing"); this.say(""); }
    else if (playing) this.setState("buffering");
    else this.setState("paused");
    if (flowing && !this.graph) setTimeout(() => { if (!this.destroyed && !this.audio.paused) this.startGraph(); }, 0);
    this.showPlaying(playing && flowing);
    cancelAnimationFrame(this.frame);
    if (playing) {
      const tick = () => {
        this.update();
        this.levels();
        if (!this.audio.paused) this.frame = requestAnimationFrame(tick);
      };
      this.frame = requestAnimationFrame(tick);
    }
    this.update();
  }

  onPause() {
    this.onPlayState();
    if (this.statusText.textContent === "Loading the audio…" || this.statusText.textContent === "Buffering…") this.say("");
    if (this.pendingUrl) this.swapSrc(this.pendingUrl, false);
  }

  onConnection() {
    this.root.dataset.online = navigator.onLine ? "1" : "0";
    if (!navigator.onLine) this.say("Offline: what has loaded still plays; the rest waits for the connection.");
    else if (this.statusText.textContent.startsWith("Offline")) this.say("");
  }

  /* Seeking with a pointer (mouse, pen, touch): click or drag anywhere on the waveform. */
  timeAt(clientX) {
    const rect = this.wave.getBoundingClientRect();
    const fraction = Math.max(0, Math.min(1, (clientX - rect.left) / rect.width));
    return fraction * (this.duration || 0);
  }

  onPointerDown(event) {
    if (event.button !== undefined && event.button !== 0) return;
    this.dragging = true;
    try { this.wave.setPointerCapture(event.pointerId); } catch (err) { /* not capturable */ }
    this.seek(this.timeAt(event.clientX));
  }

  onPointerMove(event) {
    if (this.dragging) this.seek(this.timeAt(event.clientX));
  }

  onPointerUp() { this.dragging = false; }

  /* Keys of the slider itself (Home, End and pages too); the panel handles Space and arrows. */
  onSliderKey(event) {
    if (this.handleKey(event.key, true)) {
      event.preventDefault();
      event.stopPropagation();
    }
  }

  /* A key meant for the player; true when it was used. */
  handleKey(key, onSlider) {
    const position = this.position();
    switch (key) {
      case " ":
      case "Spacebar":
        this.toggle();
        return true;
      case "Enter":
        if (!onSlider) return false;
        this.toggle();
        return true;
      case "ArrowLeft":
        this.seek(position - ARROW_STEP_S);
        return true;
      case "ArrowRight":
        this.seek(position + ARROW_STEP_S);
        return true;
      case "ArrowDown":
        if (!onSlider) return false;
        this.seek(position - ARROW_STEP_S);
        return true;
      case "ArrowUp":
        if (!onSlider) return false;
        this.seek(position + ARROW_STEP_S);
        return true;
      case "PageDown":
        if (!onSlider) return false;
        this.seek(position - 30);
        return true;
      case "PageUp":
        if (!onSlider) return false;
        this.seek(position + 30);
        return true;
      case "Home":
        if (!onSlider) return false;
        this.seek(0);
        return true;
      case "End":
        if (!onSlider) return false;
        this.seek(this.duration);
        return true;
      default:
        return false;
    }
  }

  momentUrl() {
    const seconds = Math.floor(this.position());
    return location.origin + "/calls/" + this.root.dataset.callId + "?t=" + seconds;
  }

  copyMoment() {
    const url = this.momentUrl();
    this.root.dataset.copied = url;
    const done = () => this.say("Link copied: " + url);
    const fallback = () => this.say("Copy this link: " + url);
    if (navigator.clipboard && window.isSecureContext) navigator.clipboard.writeText(url).then(done, fallback);
    else fallback();
  }

  /* Notes: markers from the list in the panel (re-read when the list changes). */
  refreshNotes() {
    const panel = this.root.closest("[data-detail]") || document;
    const notes = Array.from(panel.querySelectorAll("[data-note-list] [data-at-ms]")).map((item) => ({
      atMs: Number(item.dataset.atMs),
      text: item.dataset.noteText || "",
    }));
    renderNoteMarks(this.noteLayer, notes, this.duration);
  }

  /* The new note's time follows the player until the agent edits it. */
  updateNoteTime(position) {
    const panel = this.root.closest("[data-detail]");
    const field = panel && panel.querySelector("[data-note-at]");
    if (!field || field.dataset.edited === "1" || document.activeElement === field) return;
    const text = clock(position);
    if (field.value !== text) field.value = text;
  }

  onUrls(urls) {
    if (this.destroyed) return;
    this.root.dataset.expires = String(urls.expires);
    this.download.href = urls.download_url;
    const audio = this.audio;
    // Idle, paused or streaming (nothing reloads): swap now. Playing: on the next pause, or
    // just before expiry.
    if (audio.paused || audio.readyState === 0 || (this.stream && this.stream.active)) this.swapSrc(urls.mp3_url, false);
    else {
      this.pendingUrl = urls.mp3_url;
      const left = urls.expires - Date.now() / 1000;
      setTimeout(() => { if (this.pendingUrl) this.swapSrc(this.pendingUrl, true); }, Math.max(0, left - 60) * 1000);
    }
  }

  swapSrc(url, resume) {
    const audio = this.audio;
    this.pendingUrl = null;
    this.url = url;
    if (this.stream) this.stream.url = url;
    if (this.stream && this.stream.active) {
      // What is still to come is fetched from the new URL; what plays stays as it is.
      this.root.dataset.src = url;
      return;
    }
    if (audio.getAttribute("src") === url) return;
    const loaded = audio.readyState > 0;
    const at = this.position();
    const wasPlaying = resume || !audio.paused;
    audio.setAttribute("src", url);
    this.root.dataset.src = url;
    if (loaded) {
      this.pendingSeek = at;
      audio.load();
      if (wasPlaying) this.play();
    }
  }

  onError() {
    const audio = this.audio;
    if (!audio.error || this.destroyed) return;
    // The streamed copy failed to decode: the element plays the URL itself (plainSrc).
    if (this.stream && this.stream.active) { this.stream.fail(); return; }
    const now = Date.now();
    const at = this.position();
    const wasPlaying = !audio.paused || this.root.dataset.state === "playing" || this.root.dataset.state === "buffering";
    const resume = () => {
      if (this.destroyed) return;
      this.pendingSeek = at;
      audio.load();
      if (wasPlaying) this.play();
    };
    // A signed URL that expired mid-listen: renew once, resume where we were.
    if (navigator.onLine && now - this.lastRecovery > 10000) {
      this.lastRecovery = now;
      this.renewal.renew().then(resume);
      return;
    }
    this.setState("error");
    this.showPlaying(false);
    this.say("");
    const why = navigator.onLine ? "The recording could not be loaded." : "The recording could not be loaded: you are offline.";
    this.showError(why, () => this.renewal.renew().then(resume));
  }

  showError(message, retry) {
    this.retry = retry || null;
    this.errorText.textContent = message;
    const button = this.errorBox.querySelector("[data-retry]");
    if (button) button.hidden = !retry;
    this.errorBox.hidden = false;
  }

  hideError() {
    this.errorBox.hidden = true;
    this.retry = null;
  }
}
