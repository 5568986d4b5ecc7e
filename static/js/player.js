/*
 * Talkturo recording player: a two-lane canvas waveform drawn from precomputed peaks
 * (audiowaveform JSON v2: caller = channel 0, assistant = channel 1), an <audio> element
 * that fetches nothing until play, solo/mute per side through Web Audio, a talk-over lane,
 * and signed-URL renewal. Works on full pages and on panels swapped in by HTMX.
 */
(function () {
  "use strict";

  var SPEEDS = [0.5, 0.75, 1, 1.25, 1.5, 2];
  var STEP_S = 5;
  var DEAD_AIR_S = 3;
  var OVERLAP_MIN_S = 0.3;
  var HOLD_S = 0.25;
  var COLORS = {
    background: "#1e1b2e",
    caller: "#ffffff",
    assistant: "#a78bfa",
    axis: "rgba(255,255,255,0.55)",
    cursor: "#22c55e",
    unplayedAlpha: 0.4,
  };
  var SIDES = ["caller", "assistant"];
  var instances = [];

  function fmt(seconds) {
    if (!isFinite(seconds) || seconds < 0) seconds = 0;
    var s = Math.floor(seconds);
    var h = Math.floor(s / 3600);
    var m = Math.floor((s % 3600) / 60);
    var sec = s % 60;
    var mm = h ? String(m).padStart(2, "0") : String(m);
    return (h ? h + ":" : "") + mm + ":" + String(sec).padStart(2, "0");
  }

  function spoken(seconds) {
    var s = Math.round(seconds);
    var m = Math.floor(s / 60);
    var parts = [];
    if (m) parts.push(m + (m === 1 ? " minute" : " minutes"));
    parts.push((s % 60) + (s % 60 === 1 ? " second" : " seconds"));
    return parts.join(" ");
  }

  /* Talk-over (both sides active) and dead air (neither active > 3 s) from the peaks. */
  function findMarks(peaks) {
    var n = peaks.length;
    var d = peaks.data;
    var secPer = peaks.samples_per_pixel / peaks.sample_rate;
    var maxAbs = 1;
    for (var i = 0; i < d.length; i++) maxAbs = Math.max(maxAbs, Math.abs(d[i]));
    var threshold = Math.max(3, maxAbs * 0.12);
    var marks = [];
    var overlapStart = -1;
    var silenceStart = -1;
    // A side counts as talking through the short gaps between words (held for HOLD_S).
    var hold = Math.max(0, Math.round(HOLD_S / secPer));
    var talking = [new Uint8Array(n), new Uint8Array(n)];
    for (var ch = 0; ch < 2; ch++) {
      var last = -Infinity;
      for (var j = 0; j < n; j++) {
        if (Math.max(Math.abs(d[j * 4 + ch * 2]), Math.abs(d[j * 4 + ch * 2 + 1])) > threshold) last = j;
        talking[ch][j] = j - last <= hold ? 1 : 0;
      }
    }
    function active(idx, ch) { return talking[ch][idx] === 1; }
    function close(kind, start, end) {
      var dur = (end - start) * secPer;
      if ((kind === "overlap" && dur >= OVERLAP_MIN_S) || (kind === "silence" && dur > DEAD_AIR_S)) {
        marks.push({ kind: kind, start: start * secPer, end: end * secPer });
      }
    }
    for (var k = 0; k <= n; k++) {
      var a = k < n && active(k, 0);
      var b = k < n && active(k, 1);
      var both = k < n && a && b;
      var none = k < n && !a && !b;
      if (both && overlapStart < 0) overlapStart = k;
      if (!both && overlapStart >= 0) { close("overlap", overlapStart, k); overlapStart = -1; }
      if (none && silenceStart < 0) silenceStart = k;
      if (!none && silenceStart >= 0) { close("silence", silenceStart, k); silenceStart = -1; }
    }
    return marks;
  }

  function Player(root) {
    this.root = root;
    this.audio = root.querySelector("audio");
    this.wave = root.querySelector("[data-wave]");
    this.canvas = root.querySelector("canvas");
    this.lane = root.querySelector("[data-lane]");
    this.playBtn = root.querySelector("[data-play]");
    this.posEl = root.querySelector("[data-pos]");
    this.durEl = root.querySelector("[data-dur]");
    this.speedEl = root.querySelector("[data-speed]");
    this.download = root.querySelector("[data-download]");
    this.errorEl = root.querySelector("[data-error]");
    this.duration = (parseInt(root.dataset.durationMs, 10) || 0) / 1000;
    this.expires = parseInt(root.dataset.expires, 10) || 0;
    this.peaks = null;
    this.marks = [];
    this.pendingSeek = null;
    this.pendingUrl = null;
    this.solo = { caller: false, assistant: false };
    this.muted = { caller: false, assistant: false };
    this.graph = null;
    this.raf = 0;
    this.renewTimer = 0;
    this.dragging = false;
    this.lastRecovery = 0;
    this.listeners = [];
    this.painted = false;
    this.init();
  }

  Player.prototype.on = function (target, type, fn, opts) {
    var bound = fn.bind(this);
    target.addEventListener(type, bound, opts);
    this.listeners.push([target, type, bound, opts]);
  };

  Player.prototype.init = function () {
    var a = this.audio;
    a.preservesPitch = true;
    this.on(this.playBtn, "click", this.toggle);
    this.on(a, "play", this.onPlayState);
    this.on(a, "pause", this.onPause);
    this.on(a, "ended", this.onPlayState);
    this.on(a, "timeupdate", this.update);
    this.on(a, "loadedmetadata", this.onMetadata);
    this.on(a, "error", this.onError);
    this.on(this.speedEl, "change", function () {
      a.playbackRate = parseFloat(this.speedEl.value) || 1;
      a.preservesPitch = true;
      this.root.dataset.speed = String(a.playbackRate);
    });
    this.on(this.wave, "pointerdown", this.onPointerDown);
    this.on(this.wave, "pointermove", this.onPointerMove);
    this.on(this.wave, "pointerup", this.onPointerUp);
    this.on(this.wave, "pointercancel", this.onPointerUp);
    this.on(this.wave, "keydown", this.onKey);
    var self = this;
    this.root.querySelectorAll("[data-side]").forEach(function (btn) {
      self.on(btn, "click", function () { self.toggleSide(btn.dataset.side, btn.dataset.mode); });
    });
    if ("ResizeObserver" in window) {
      this.resizer = new ResizeObserver(function () { self.draw(); });
      this.resizer.observe(this.wave);
    }
    this.root.dataset.state = "ready";
    this.applyGains();
    this.update();
    this.loadPeaks();
    this.scheduleRenewal();
  };

  Player.prototype.destroy = function () {
    cancelAnimationFrame(this.raf);
    clearTimeout(this.renewTimer);
    if (this.resizer) this.resizer.disconnect();
    this.listeners.forEach(function (l) { l[0].removeEventListener(l[1], l[2], l[3]); });
    this.listeners = [];
    try {
      this.audio.pause();
      this.audio.removeAttribute("src");
      this.audio.load();
    } catch (e) { /* already gone */ }
    if (this.graph) this.graph.ctx.close();
    this.graph = null;
    this.destroyed = true;
  };

  Player.prototype.loadPeaks = function () {
    var self = this;
    fetch(this.root.dataset.peaksUrl, { credentials: "same-origin" })
      .then(function (r) {
        if (!r.ok) throw new Error("peaks " + r.status);
        return r.json();
      })
      .then(function (peaks) {
        if (self.destroyed) return;
        if (peaks.version !== 2 || peaks.channels !== 2) throw new Error("unexpected peaks format");
        self.peaks = peaks;
        if (!self.duration) self.duration = (peaks.length * peaks.samples_per_pixel) / peaks.sample_rate;
        self.marks = findMarks(peaks);
        self.renderMarks();
        self.draw();
        self.update();
      })
      .catch(function () {
        if (!self.destroyed) self.showError("The waveform could not be loaded; playback still works.");
      });
  };

  /* Waveform: caller lane on top, assistant below, time axis at the bottom. */
  Player.prototype.draw = function () {
    var canvas = this.canvas;
    var cssW = this.wave.clientWidth;
    var cssH = this.wave.clientHeight;
    if (!cssW || !cssH) return;
    var dpr = window.devicePixelRatio || 1;
    var w = Math.round(cssW * dpr);
    var h = Math.round(cssH * dpr);
    if (canvas.width !== w || canvas.height !== h) { canvas.width = w; canvas.height = h; }
    var g = canvas.getContext("2d");
    g.fillStyle = COLORS.background;
    g.fillRect(0, 0, w, h);
    var axisH = Math.round(16 * dpr);
    var laneGap = Math.round(4 * dpr);
    var laneH = Math.floor((h - axisH - laneGap) / 2);
    var playedX = this.duration ? Math.round((this.position() / this.duration) * w) : 0;
    if (this.peaks) {
      var p = this.peaks;
      var d = p.data;
      var peaksDur = (p.length * p.samples_per_pixel) / p.sample_rate;
      var total = Math.max(this.duration, 0.001);
      var maxAbs = 1;
      for (var i = 0; i < d.length; i++) maxAbs = Math.max(maxAbs, Math.abs(d[i]));
      var scale = 1 / Math.max(maxAbs, 16);
      for (var ch = 0; ch < 2; ch++) {
        var top = ch === 0 ? 0 : laneH + laneGap;
        var mid = top + laneH / 2;
        var color = ch === 0 ? COLORS.caller : COLORS.assistant;
        for (var x = 0; x < w; x++) {
          // Columns map through time, so peaks and audio line up even if lengths differ slightly.
          var t0 = (x / w) * total;
          var t1 = ((x + 1) / w) * total;
          if (t0 >= peaksDur) break;
          var i0 = Math.floor((t0 / peaksDur) * p.length);
          var i1 = Math.max(i0 + 1, Math.min(p.length, Math.ceil((t1 / peaksDur) * p.length)));
          var lo = 0;
          var hi = 0;
          for (var k = i0; k < i1; k++) {
            lo = Math.min(lo, d[k * 4 + ch * 2]);
            hi = Math.max(hi, d[k * 4 + ch * 2 + 1]);
          }
          var yTop = mid - hi * scale * (laneH / 2);
          var yBot = mid - lo * scale * (laneH / 2);
          g.globalAlpha = x < playedX ? 1 : COLORS.unplayedAlpha;
          g.fillStyle = color;
          g.fillRect(x, Math.floor(yTop), 1, Math.max(1, Math.ceil(yBot - yTop)));
        }
      }
      g.globalAlpha = 1;
    }
    // Time axis: a tick every "nice" interval that leaves room for its label.
    var axisTop = h - axisH;
    g.fillStyle = COLORS.axis;
    g.font = Math.round(10 * dpr) + "px system-ui, sans-serif";
    g.textBaseline = "top";
    var total2 = this.duration || 0;
    if (total2 > 0) {
      var steps = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600];
      var minPx = 60 * dpr;
      var step = steps[steps.length - 1];
      for (var s = 0; s < steps.length; s++) {
        if ((steps[s] / total2) * w >= minPx) { step = steps[s]; break; }
      }
      for (var tt = 0; tt <= total2; tt += step) {
        var tx = Math.round((tt / total2) * w);
        g.fillRect(tx, axisTop, Math.max(1, Math.round(dpr)), Math.round(4 * dpr));
        if (tx < w - 30 * dpr) g.fillText(fmt(tt), tx + 3 * dpr, axisTop + 3 * dpr);
      }
    }
    if (playedX > 0) {
      g.fillStyle = COLORS.cursor;
      g.fillRect(Math.min(playedX, w - 2), 0, Math.max(2, Math.round(2 * dpr)), axisTop);
    }
    if (this.peaks && !this.painted) {
      this.painted = true;
      this.root.dataset.painted = "1";
      if (window.performance && performance.mark) performance.mark("talkturo:waveform-painted");
    }
  };

  Player.prototype.renderMarks = function () {
    var lane = this.lane;
    var self = this;
    lane.textContent = "";
    var total = this.duration || 1;
    this.marks.forEach(function (m) {
      var b = document.createElement("button");
      b.type = "button";
      b.className = "player-mark player-mark-" + m.kind;
      b.style.left = (100 * m.start) / total + "%";
      b.style.width = Math.max(0.6, (100 * (m.end - m.start)) / total) + "%";
      var what = m.kind === "overlap" ? "Both speaking" : "Silence";
      b.setAttribute("aria-label", what + " at " + fmt(m.start) + " for " + spoken(m.end - m.start));
      b.title = what + " " + fmt(m.start) + "–" + fmt(m.end);
      b.dataset.start = String(m.start);
      b.addEventListener("click", function () { self.seek(m.start); });
      lane.appendChild(b);
    });
    this.root.dataset.marks = String(this.marks.length);
  };

  Player.prototype.position = function () {
    if (this.pendingSeek !== null) return this.pendingSeek;
    return this.audio.currentTime || 0;
  };

  Player.prototype.update = function () {
    var pos = this.position();
    var dur = this.duration;
    this.posEl.textContent = fmt(pos);
    this.durEl.textContent = fmt(dur);
    this.wave.setAttribute("aria-valuemax", String(Math.round(dur)));
    this.wave.setAttribute("aria-valuenow", String(Math.round(pos)));
    this.wave.setAttribute("aria-valuetext", spoken(pos) + " of " + spoken(dur));
    this.root.dataset.position = pos.toFixed(3);
    this.draw();
  };

  Player.prototype.onMetadata = function () {
    var a = this.audio;
    if (isFinite(a.duration) && a.duration > 0) this.duration = a.duration;
    if (this.pendingSeek !== null) {
      a.currentTime = Math.min(this.pendingSeek, this.duration);
      this.pendingSeek = null;
    }
    a.playbackRate = parseFloat(this.speedEl.value) || 1;
    a.preservesPitch = true;
    this.update();
  };

  Player.prototype.seek = function (seconds) {
    var t = Math.max(0, Math.min(seconds, this.duration || seconds));
    if (this.audio.readyState === 0) this.pendingSeek = t;
    else this.audio.currentTime = t;
    this.update();
  };

  Player.prototype.ensureGraph = function () {
    if (this.graph || !(window.AudioContext || window.webkitAudioContext)) return;
    var Ctx = window.AudioContext || window.webkitAudioContext;
    var ctx = new Ctx();
    var source = ctx.createMediaElementSource(this.audio);
    var split = ctx.createChannelSplitter(2);
    var merge = ctx.createChannelMerger(2);
    var gains = {};
    var analysers = {};
    source.connect(split);
    SIDES.forEach(function (side, ch) {
      var gain = ctx.createGain();
      var an = ctx.createAnalyser();
      an.fftSize = 1024;
      split.connect(gain, ch);
      gain.connect(merge, 0, ch);
      gain.connect(an);
      gains[side] = gain;
      analysers[side] = an;
    });
    merge.connect(ctx.destination);
    this.graph = { ctx: ctx, gains: gains, analysers: analysers, buf: new Float32Array(1024) };
    this.applyGains();
  };

  Player.prototype.gainOf = function (side) {
    var anySolo = this.solo.caller || this.solo.assistant;
    if (anySolo) return this.solo[side] ? 1 : 0;
    return this.muted[side] ? 0 : 1;
  };

  Player.prototype.applyGains = function () {
    var self = this;
    SIDES.forEach(function (side) {
      var g = self.gainOf(side);
      self.root.dataset["gain" + side.charAt(0).toUpperCase() + side.slice(1)] = String(g);
      if (self.graph) self.graph.gains[side].gain.setTargetAtTime(g, self.graph.ctx.currentTime, 0.01);
    });
    this.root.querySelectorAll("[data-side]").forEach(function (btn) {
      var state = btn.dataset.mode === "solo" ? self.solo : self.muted;
      btn.setAttribute("aria-pressed", state[btn.dataset.side] ? "true" : "false");
    });
  };

  Player.prototype.toggleSide = function (side, mode) {
    var state = mode === "solo" ? this.solo : this.muted;
    var on = !state[side];
    if (mode === "solo") {
      this.solo = { caller: false, assistant: false };
      this.solo[side] = on;
    } else {
      state[side] = on;
    }
    this.applyGains();
  };

  Player.prototype.levels = function () {
    var g = this.graph;
    if (!g) return;
    var root = this.root;
    SIDES.forEach(function (side) {
      g.analysers[side].getFloatTimeDomainData(g.buf);
      var sum = 0;
      for (var i = 0; i < g.buf.length; i++) sum += g.buf[i] * g.buf[i];
      var rms = Math.sqrt(sum / g.buf.length);
      var key = "level" + side.charAt(0).toUpperCase() + side.slice(1);
      root.dataset[key] = rms.toFixed(5);
      var peakKey = "peak" + side.charAt(0).toUpperCase() + side.slice(1);
      root.dataset[peakKey] = Math.max(parseFloat(root.dataset[peakKey] || "0"), rms).toFixed(5);
    });
  };

  Player.prototype.toggle = function () {
    if (this.audio.paused) this.play();
    else this.audio.pause();
  };

  Player.prototype.play = function () {
    var a = this.audio;
    this.ensureGraph();
    if (this.graph && this.graph.ctx.state === "suspended") this.graph.ctx.resume();
    if (this.pendingUrl) this.swapSrc(this.pendingUrl, false);
    a.preload = "auto";
    var self = this;
    var p = a.play();
    if (p && p.catch) p.catch(function (err) {
      if (err && err.name === "NotAllowedError") self.showError("Press play again to start the audio.");
    });
  };

  Player.prototype.onPlayState = function () {
    var playing = !this.audio.paused && !this.audio.ended;
    this.root.dataset.state = playing ? "playing" : "paused";
    this.playBtn.setAttribute("aria-label", playing ? "Pause" : "Play");
    this.playBtn.classList.toggle("is-playing", playing);
    var self = this;
    cancelAnimationFrame(this.raf);
    if (playing) {
      var tick = function () {
        self.update();
        self.levels();
        if (!self.audio.paused) self.raf = requestAnimationFrame(tick);
      };
      this.raf = requestAnimationFrame(tick);
    }
    this.update();
  };

  Player.prototype.onPause = function () {
    this.onPlayState();
    if (this.pendingUrl) this.swapSrc(this.pendingUrl, false);
  };

  /* Seeking with pointer (mouse, pen, touch): click or drag anywhere on the waveform. */
  Player.prototype.timeAt = function (clientX) {
    var rect = this.wave.getBoundingClientRect();
    var f = Math.max(0, Math.min(1, (clientX - rect.left) / rect.width));
    return f * (this.duration || 0);
  };
  Player.prototype.onPointerDown = function (e) {
    if (e.button !== undefined && e.button !== 0) return;
    this.dragging = true;
    try { this.wave.setPointerCapture(e.pointerId); } catch (err) { /* not capturable */ }
    this.seek(this.timeAt(e.clientX));
  };
  Player.prototype.onPointerMove = function (e) {
    if (this.dragging) this.seek(this.timeAt(e.clientX));
  };
  Player.prototype.onPointerUp = function () { this.dragging = false; };

  Player.prototype.onKey = function (e) {
    var pos = this.position();
    switch (e.key) {
      case " ":
      case "Spacebar":
      case "Enter":
        this.toggle();
        break;
      case "ArrowLeft":
      case "ArrowDown":
        this.seek(pos - STEP_S);
        break;
      case "ArrowRight":
      case "ArrowUp":
        this.seek(pos + STEP_S);
        break;
      case "PageDown":
        this.seek(pos - 30);
        break;
      case "PageUp":
        this.seek(pos + 30);
        break;
      case "Home":
        this.seek(0);
        break;
      case "End":
        this.seek(this.duration);
        break;
      default:
        return;
    }
    e.preventDefault();
  };

  /* Signed URLs expire: fetch fresh ones ahead of time and swap without losing place. */
  Player.prototype.scheduleRenewal = function () {
    clearTimeout(this.renewTimer);
    if (!this.expires) return;
    var lead = Math.min(600, (this.expires - Date.now() / 1000) / 3);
    var wait = Math.max(5, this.expires - Date.now() / 1000 - lead) * 1000;
    var self = this;
    this.renewTimer = setTimeout(function () { self.renew(); }, wait);
  };

  Player.prototype.renew = function () {
    var self = this;
    return fetch(this.root.dataset.renewUrl, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) {
        if (r.status === 401) throw new Error("signed out");
        if (!r.ok) throw new Error("renew " + r.status);
        return r.json();
      })
      .then(function (urls) {
        if (self.destroyed) return urls;
        self.expires = urls.expires;
        self.root.dataset.expires = String(urls.expires);
        self.download.href = urls.download_url;
        var a = self.audio;
        // Idle or paused: swap now. Playing: on the next pause, or just before expiry.
        if (a.paused || a.readyState === 0) self.swapSrc(urls.mp3_url, false);
        else {
          self.pendingUrl = urls.mp3_url;
          var left = (urls.expires - Date.now() / 1000);
          setTimeout(function () { if (self.pendingUrl) self.swapSrc(self.pendingUrl, true); }, Math.max(0, left - 60) * 1000);
        }
        self.scheduleRenewal();
        return urls;
      })
      .catch(function (err) {
        if (self.destroyed) return;
        if (String(err.message) === "signed out") self.showError("Your session has ended; sign in again to keep listening.");
        else self.renewTimer = setTimeout(function () { self.renew(); }, 30000);
      });
  };

  Player.prototype.swapSrc = function (url, resume) {
    var a = this.audio;
    this.pendingUrl = null;
    if (a.getAttribute("src") === url) return;
    var loaded = a.readyState > 0;
    var at = this.position();
    var wasPlaying = resume || !a.paused;
    a.setAttribute("src", url);
    this.root.dataset.src = url;
    if (loaded) {
      this.pendingSeek = at;
      a.load();
      if (wasPlaying) this.play();
    }
  };

  Player.prototype.onError = function () {
    var a = this.audio;
    if (!a.error || this.destroyed) return;
    var now = Date.now();
    // A signed URL that expired mid-listen: renew once, resume where we were.
    if (now - this.lastRecovery > 10000) {
      this.lastRecovery = now;
      var self = this;
      var at = this.position();
      var wasPlaying = !a.paused || this.root.dataset.state === "playing";
      this.renew().then(function () {
        if (self.destroyed) return;
        self.pendingSeek = at;
        a.load();
        if (wasPlaying) self.play();
      });
      return;
    }
    this.showError("The recording could not be loaded. Reload the page to try again.");
  };

  Player.prototype.showError = function (msg) {
    this.errorEl.textContent = msg;
    this.errorEl.hidden = false;
  };

  function setup(scope) {
    instances = instances.filter(function (p) {
      if (!p.root.isConnected) { p.destroy(); return false; }
      return true;
    });
    var roots = [];
    if (scope.matches && scope.matches("[data-player]")) roots.push(scope);
    if (scope.querySelectorAll) roots.push.apply(roots, scope.querySelectorAll("[data-player]"));
    roots.forEach(function (root) {
      if (root._talkturoPlayer) return;
      root._talkturoPlayer = new Player(root);
      instances.push(root._talkturoPlayer);
    });
  }

  // HTMX warns before it removes an element; tear down only players that really left the page.
  function teardown(scope) {
    var doomed = instances.filter(function (p) {
      return scope === p.root || (scope.contains && scope.contains(p.root));
    });
    if (!doomed.length) return;
    setTimeout(function () {
      doomed.forEach(function (p) {
        if (p.root.isConnected || p.destroyed) return;
        p.destroy();
        p.root._talkturoPlayer = null;
        instances = instances.filter(function (x) { return x !== p; });
      });
    }, 0);
  }

  document.addEventListener("DOMContentLoaded", function () { setup(document); });
  document.addEventListener("htmx:load", function (e) { setup(e.detail && e.detail.elt ? e.detail.elt : document); });
  document.addEventListener("htmx:afterSwap", function () { setup(document); });
  document.addEventListener("htmx:beforeCleanupElement", function (e) { teardown(e.target); });
  // Buttons in the transcript ask to hear a moment: seek the live player there and play.
  document.addEventListener("talkturo:seek", function (e) {
    var ms = e.detail && Number(e.detail.ms);
    var p = instances.filter(function (x) { return x.root.isConnected; }).pop();
    if (!p || !isFinite(ms)) return;
    p.seek(ms / 1000);
    if (p.audio.paused) p.play();
  });
  if (document.readyState !== "loading") setup(document);

  window.talkturoPlayer = { instances: function () { return instances.slice(); }, findMarks: findMarks, setup: setup };
})();
