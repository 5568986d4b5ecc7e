/*
 * The MP3 fed to the <audio> element through Media Source Extensions, so Play does not wait
 * on the network: the first few KB are fetched when the panel opens (a Range request), and
 * Play starts from them while the rest streams in. With a plain src, Chromium's MP3 probe
 * reads the end of the file before the first sound, which on a slow link means waiting for
 * the whole file (or one more round trip). Any failure here hands back to the plain src.
 */

export const HEAD_BYTES = 8192;
// Longer recordings stay on the plain src: MSE keeps what it buffers in memory.
const MAX_SECONDS = 20 * 60;

export function streamable(durationSeconds) {
  return (
    typeof window.MediaSource === "function" &&
    MediaSource.isTypeSupported("audio/mpeg") &&
    durationSeconds > 0 &&
    durationSeconds <= MAX_SECONDS
  );
}

export class Stream {
  constructor(audio, duration, onFail) {
    this.audio = audio;
    this.duration = duration;
    this.onFail = onFail;
    this.head = null;
    this.headPromise = null;
    this.url = null;
    this.attached = false;
    this.failed = false;
    this.done = false;
    this.queue = [];
    this.controller = null;
    this.objectUrl = null;
    this.buffer = null;
  }

  /* The first HEAD_BYTES of the recording (once); resolves with them, or null. */
  prefetch(url) {
    if (this.headPromise) return this.headPromise;
    this.url = url;
    this.controller = new AbortController();
    this.headPromise = fetch(url, {
      credentials: "same-origin",
      headers: { Range: "bytes=0-" + (HEAD_BYTES - 1) },
      signal: this.controller.signal,
    })
      .then((response) => {
        if (response.status !== 206) throw new Error("head " + response.status);
        const range = response.headers.get("Content-Range") || "";
        this.total = parseInt(range.split("/")[1], 10) || 0;
        return response.arrayBuffer();
      })
      .then((bytes) => { this.head = bytes; return bytes; })
      .catch(() => null);
    return this.headPromise;
  }

  /* Points the element at a MediaSource fed from the head, then from the rest as it comes. */
  attach(url) {
    if (this.attached || this.failed) return;
    this.attached = true;
    this.url = url;
    const source = new MediaSource();
    this.source = source;
    this.objectUrl = URL.createObjectURL(source);
    source.addEventListener("sourceopen", () => this.open(), { once: true });
    this.audio.src = this.objectUrl;
  }

  open() {
    if (this.failed) return;
    try {
      this.buffer = this.source.addSourceBuffer("audio/mpeg");
      if (this.duration > 0) this.source.duration = this.duration;
    } catch (err) {
      this.fail();
      return;
    }
    this.buffer.addEventListener("updateend", () => this.pump());
    this.buffer.addEventListener("error", () => this.fail());
    // Nothing asked for yet (Play came first): one request for the whole file.
    if (!this.headPromise) { this.fetchRest(0); return; }
    this.headPromise.then((head) => {
      if (this.failed) return;
      if (!head) { this.fail(); return; }
      this.push(head);
      if (this.total && head.byteLength >= this.total) this.finish();
      else this.fetchRest(head.byteLength);
    });
  }

  fetchRest(from) {
    this.controller = new AbortController();
    fetch(this.url, {
      credentials: "same-origin",
      headers: { Range: "bytes=" + from + "-" },
      signal: this.controller.signal,
    })
      .then((response) => {
        if (response.status !== 206 || !response.body) throw new Error("rest " + response.status);
        const reader = response.body.getReader();
        const read = () => reader.read().then(({ done, value }) => {
          if (this.failed) return undefined;
          if (done) { this.finish(); return undefined; }
          this.push(value);
          return read();
        });
        return read();
      })
      .catch(() => { if (!this.failed) this.fail(); });
  }

  push(chunk) {
    this.queue.push(chunk);
    this.pump();
  }

  finish() {
    this.done = true;
    this.pump();
  }

  pump() {
    const buffer = this.buffer;
    if (this.failed || !buffer || buffer.updating || this.source.readyState !== "open") return;
    try {
      if (this.queue.length) {
        buffer.appendBuffer(this.queue.shift());
      } else if (this.done) {
        this.source.endOfStream();
      }
    } catch (err) {
      this.fail();
    }
  }

  /* Stop streaming and give the element back to its plain src. */
  fail() {
    if (this.failed) return;
    this.failed = true;
    this.stop();
    this.onFail();
  }

  stop() {
    if (this.controller) this.controller.abort();
    this.queue = [];
    if (this.objectUrl) URL.revokeObjectURL(this.objectUrl);
    this.objectUrl = null;
  }

  get active() {
    return this.attached && !this.failed;
  }
}
