/*
 * The transcript in step with playback: the line being spoken carries aria-current="true"
 * and is kept in view, until the agent scrolls the transcript away ("Follow playback"
 * brings it back).
 */

export class TranscriptFollower {
  constructor(panel) {
    this.panel = panel;
    this.list = panel.querySelector("[data-transcript]");
    this.button = panel.querySelector("[data-follow]");
    this.lines = this.list ? Array.from(this.list.querySelectorAll("[data-start-ms]")) : [];
    this.starts = this.lines.map((line) => Number(line.dataset.startMs) / 1000);
    this.ends = this.lines.map((line) => Number(line.dataset.endMs) / 1000);
    this.current = -1;
    this.following = true;
    this.listeners = [];
    if (!this.lines.length) return;
    const scroller = this.scroller();
    const away = () => this.setFollowing(false);
    this.listen(scroller, "wheel", away, { passive: true });
    this.listen(scroller, "touchmove", away, { passive: true });
    this.listen(scroller, "keydown", (e) => {
      if (["PageUp", "PageDown"].includes(e.key)) away();
    });
    if (this.button) this.listen(this.button, "click", () => {
      this.setFollowing(!this.following);
      if (this.following) this.reveal(true);
    });
  }

  listen(target, type, fn, options) {
    target.addEventListener(type, fn, options);
    this.listeners.push([target, type, fn, options]);
  }

  destroy() {
    for (const [target, type, fn, options] of this.listeners) target.removeEventListener(type, fn, options);
    this.listeners = [];
  }

  /* The element that scrolls the transcript: the panel, or the page when the panel does not. */
  scroller() {
    return this.panel.closest("#panel") || document.scrollingElement;
  }

  setFollowing(on) {
    this.following = on;
    if (this.button) this.button.setAttribute("aria-pressed", on ? "true" : "false");
  }

  /* Mark the line spoken at ``seconds`` (the last one started, if between lines). */
  update(seconds) {
    if (!this.lines.length) return;
    let index = -1;
    for (let i = 0; i < this.starts.length; i++) {
      if (this.starts[i] <= seconds + 0.05) index = i;
      else break;
    }
    if (index >= 0 && seconds > this.ends[index] + 1.5 && index + 1 < this.lines.length) index = -1;
    if (index === this.current) return;
    if (this.current >= 0) this.lines[this.current].removeAttribute("aria-current");
    this.current = index;
    if (index < 0) return;
    this.lines[index].setAttribute("aria-current", "true");
    if (this.following) this.reveal(false);
  }

  /* Scroll the current line below the pinned player, if it is not in view already. */
  reveal(force) {
    if (this.current < 0 || !this.list.offsetParent) return;
    const line = this.lines[this.current];
    const scroller = this.scroller();
    const pinned = this.panel.querySelector("[data-detail-top]");
    const box = scroller === document.scrollingElement
      ? { top: 0, bottom: window.innerHeight }
      : scroller.getBoundingClientRect();
    const top = box.top + (pinned && scroller !== document.scrollingElement ? pinned.offsetHeight : 0);
    const rect = line.getBoundingClientRect();
    if (!force && rect.top >= top && rect.bottom <= box.bottom) return;
    scroller.scrollTop += rect.top - top - 24;
  }
}
