/*
 * Redact mode (admins): select a span on the waveform by dragging (mouse, pen, touch) or
 * with "Start/End at playhead" and the time fields, choose channel and replacement,
 * confirm in a dialog that says it cannot be undone, then the panel reloads with the new
 * audio and the span drawn hatched. The server decides (403 for agents, 409 under legal
 * hold); its `detail` is shown as it comes.
 */
import { clock } from "./format.js";

const MIN_SPAN_S = 0.05;
// A press that moves less than this many CSS pixels is a click: it moves the playhead.
const CLICK_PX = 4;
const SIDES = { caller: "the caller's channel", assistant: "the assistant's channel", both: "both channels" };

/* "m:ss.s" (tenths), as the panel writes times. */
export function precise(seconds) {
  const tenths = Math.max(0, Math.floor(seconds * 10 + 1e-6));
  return clock(Math.floor(tenths / 10)) + "." + (tenths % 10);
}

/* Seconds from "m:ss.s", "h:mm:ss.s" or "ss.s"; null when it is not a time. */
export function parseMoment(text) {
  const m = /^\s*(?:(\d+):)?(?:(\d+):)?(\d+(?:\.\d{1,3})?)\s*$/.exec(text || "");
  if (!m) return null;
  let hours = 0;
  let minutes = 0;
  if (m[2] !== undefined) { hours = Number(m[1]); minutes = Number(m[2]); }
  else if (m[1] !== undefined) minutes = Number(m[1]);
  return (hours * 60 + minutes) * 60 + parseFloat(m[3]);
}

function csrfToken(form) {
  const field = form.querySelector("input[name=_csrf_token]");
  if (field && field.value) return field.value;
  const meta = document.querySelector("meta[name=csrf-token]");
  return meta ? meta.content : "";
}

export class Redactor {
  constructor(player, box) {
    this.player = player;
    this.box = box;
    this.root = player.root;
    this.toggleButton = box.querySelector("[data-redact-toggle]");
    this.form = box.querySelector("[data-redact-form]");
    this.startInput = box.querySelector("[data-redact-start]");
    this.endInput = box.querySelector("[data-redact-end]");
    this.message = box.querySelector("[data-redact-message]");
    this.done = box.querySelector("[data-redact-done]");
    this.dialog = box.querySelector("[data-redact-confirm]");
    this.summary = box.querySelector("[data-redact-summary]");
    this.held = box.dataset.held === "1";
    this.active = false;
    this.selection = null;
    this.drag = null;
    this.overlay = null;
    this.band = null;
    this.busy = false;
    const on = (target, type, fn) => player.on(target, type, fn.bind(this));
    on(this.toggleButton, "click", this.toggle);
    on(this.form, "submit", this.review);
    on(this.startInput, "input", this.fromFields);
    on(this.endInput, "input", this.fromFields);
    on(this.form, "change", this.onChange);
    for (const button of box.querySelectorAll("[data-redact-set]")) {
      on(button, "click", () => this.atPlayhead(button.dataset.redactSet));
    }
    on(box.querySelector("[data-redact-clear]"), "click", this.clear);
    on(box.querySelector("[data-redact-cancel]"), "click", this.cancel);
    on(box.querySelector("[data-redact-confirm-go]"), "click", this.submit);
    // Escape closes the dialog (the browser does it), not the whole panel behind it.
    on(this.dialog, "keydown", (event) => { if (event.key === "Escape") event.stopPropagation(); });
    this.root.dataset.redactMode = "off";
  }

  channel() {
    const checked = this.form.querySelector("input[name=channel]:checked");
    return checked ? checked.value : "both";
  }

  mode() {
    const checked = this.form.querySelector("input[name=mode]:checked");
    return checked ? checked.value : "silence";
  }

  say(text) {
    this.message.textContent = text;
  }

  toggle() {
    if (this.held) {
      this.done.textContent = "Under legal hold: release the hold (Admin tab) before redacting.";
      return;
    }
    this.setActive(!this.active);
  }

  setActive(active) {
    this.active = active;
    this.toggleButton.setAttribute("aria-pressed", active ? "true" : "false");
    this.form.hidden = !active;
    this.root.dataset.redactMode = active ? "on" : "off";
    if (active) {
      this.done.textContent = "";
      this.overlay = document.createElement("div");
      this.overlay.className = "redact-overlay";
      this.overlay.setAttribute("aria-hidden", "true");
      this.band = document.createElement("div");
      this.band.className = "redact-band";
      this.band.hidden = true;
      this.overlay.appendChild(this.band);
      this.player.wave.appendChild(this.overlay);
      this.overlay.addEventListener("pointerdown", (e) => this.onDown(e));
      this.overlay.addEventListener("pointermove", (e) => this.onMove(e));
      this.overlay.addEventListener("pointerup", (e) => this.onUp(e));
      this.overlay.addEventListener("pointercancel", (e) => this.onUp(e));
      this.draw();
    } else {
      if (this.overlay) this.overlay.remove();
      this.overlay = null;
      this.band = null;
      this.say("");
    }
  }

  /* Dragging selects; a click (barely moved) moves the playhead as outside Redact mode. */
  onDown(event) {
    if (event.button !== undefined && event.button !== 0) return;
    event.stopPropagation();
    // A mouse drag selects the span, not the text around the player.
    if (event.pointerType !== "touch") event.preventDefault();
    try { this.overlay.setPointerCapture(event.pointerId); } catch (err) { /* not capturable */ }
    this.drag = { x: event.clientX, at: this.player.timeAt(event.clientX), moved: false };
  }

  onMove(event) {
    if (!this.drag) return;
    event.stopPropagation();
    if (!this.drag.moved && Math.abs(event.clientX - this.drag.x) < CLICK_PX) return;
    this.drag.moved = true;
    const at = this.player.timeAt(event.clientX);
    this.select(Math.min(this.drag.at, at), Math.max(this.drag.at, at));
  }

  onUp(event) {
    if (!this.drag) return;
    event.stopPropagation();
    const drag = this.drag;
    this.drag = null;
    if (!drag.moved) this.player.seek(drag.at);
  }

  atPlayhead(which) {
    const at = this.player.position();
    const current = this.selection || { start: at, end: at };
    if (which === "start") this.select(at, Math.max(at, current.end));
    else this.select(Math.min(current.start, at), at);
  }

  select(start, end) {
    const duration = this.player.serverDuration || this.player.duration || 0;
    const s = Math.max(0, Math.min(start, duration));
    const e = Math.max(s, Math.min(end, duration));
    this.selection = { start: s, end: e };
    this.startInput.value = precise(s);
    this.endInput.value = precise(e);
    this.startInput.removeAttribute("aria-invalid");
    this.endInput.removeAttribute("aria-invalid");
    this.say("");
    this.draw();
  }

  fromFields() {
    const start = parseMoment(this.startInput.value);
    const end = parseMoment(this.endInput.value);
    if (start === null || end === null) return;
    this.selection = { start, end };
    this.draw();
  }

  onChange(event) {
    if (event.target && event.target.name === "channel") this.draw();
  }

  clear() {
    this.selection = null;
    this.startInput.value = "";
    this.endInput.value = "";
    this.say("");
    this.draw();
  }

  draw() {
    const sel = this.selection;
    this.root.dataset.selectionStart = sel ? sel.start.toFixed(3) : "";
    this.root.dataset.selectionEnd = sel ? sel.end.toFixed(3) : "";
    if (!this.band) return;
    const total = this.player.duration || 1;
    this.band.hidden = !sel || sel.end <= sel.start;
    if (this.band.hidden) return;
    this.band.className = "redact-band redact-band-" + this.channel();
    this.band.style.left = (100 * sel.start) / total + "%";
    this.band.style.width = Math.max(0.3, (100 * (sel.end - sel.start)) / total) + "%";
  }

  /* Check the selection, then ask (the dialog says what will happen). */
  review(event) {
    event.preventDefault();
    if (this.busy) return;
    const start = parseMoment(this.startInput.value);
    const end = parseMoment(this.endInput.value);
    if (start === null || end === null) {
      this.markInvalid(start === null ? this.startInput : this.endInput);
      this.say("Select a span first: drag across the waveform, or give its start and end as m:ss.s.");
      return;
    }
    if (end - start < MIN_SPAN_S) {
      this.markInvalid(this.endInput);
      this.say("The end must come after the start.");
      return;
    }
    this.say("");
    const how = this.mode() === "tone" ? "a 1 kHz tone" : "silence";
    this.summary.textContent = "From " + precise(start) + " to " + precise(end) + " (" +
      (end - start).toFixed(1) + " s), " + SIDES[this.channel()] + " will be replaced with " + how + ".";
    if (typeof this.dialog.showModal === "function") this.dialog.showModal();
    else this.dialog.setAttribute("open", "");
    const cancel = this.dialog.querySelector("[data-redact-cancel]");
    if (cancel) cancel.focus();
  }

  markInvalid(field) {
    field.setAttribute("aria-invalid", "true");
    field.focus();
  }

  cancel() {
    this.closeDialog();
    this.form.querySelector("[data-redact-review]").focus();
  }

  closeDialog() {
    if (this.dialog.open && typeof this.dialog.close === "function") this.dialog.close();
    else this.dialog.removeAttribute("open");
  }

  submit() {
    if (this.busy) return;
    this.busy = true;
    this.closeDialog();
    this.root.dataset.redactState = "sending";
    this.say("");
    this.done.textContent = "Redacting… the new audio is being made.";
    const body = new URLSearchParams(new FormData(this.form));
    const what = precise(parseMoment(this.startInput.value)) + "–" + precise(parseMoment(this.endInput.value));
    fetch(this.form.action, {
      method: "POST",
      credentials: "same-origin",
      headers: {
        "Content-Type": "application/x-www-form-urlencoded",
        "Accept": "application/json",
        "X-CSRFToken": csrfToken(this.form),
      },
      body,
    })
      .then((response) => response.json().catch(() => ({})).then((data) => ({ response, data })))
      .then(({ response, data }) => {
        if (!response.ok) {
          this.busy = false;
          this.root.dataset.redactState = "refused";
          this.done.textContent = "";
          this.say((data && data.detail) || "The redaction failed (" + response.status + "). Try again.");
          this.form.querySelector("[data-redact-review]").focus();
          return;
        }
        this.root.dataset.redactState = "done";
        this.reloadPanel("Redacted " + what + ". The old audio was deleted; this is the new recording.");
      })
      .catch(() => {
        this.busy = false;
        this.root.dataset.redactState = "refused";
        this.done.textContent = "";
        this.say(navigator.onLine ? "The server did not answer: nothing was changed yet. Try again." : "You are offline: nothing was changed.");
      });
  }

  /* The panel again from the server: new audio, new peaks, the span drawn hatched. */
  reloadPanel(text) {
    const url = "/calls/" + this.box.dataset.callId + location.search;
    const after = () => {
      const done = document.querySelector("[data-redact-done]");
      if (done) done.textContent = text;
      const toggle = document.querySelector("[data-redact-toggle]");
      if (toggle) toggle.focus();
    };
    const panel = document.getElementById("panel");
    if (window.htmx && panel && panel.contains(this.box)) {
      window.htmx.ajax("GET", url, { target: "#panel", swap: "innerHTML" }).then(after, () => location.reload());
    } else {
      location.reload();
    }
  }
}

export function attachRedact(player) {
  const box = player.root.querySelector("[data-redact]");
  if (!box || box._talkturoRedact) return null;
  box._talkturoRedact = new Redactor(player, box);
  return box._talkturoRedact;
}
