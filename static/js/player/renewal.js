/* Signed player URLs expire: fetch fresh ones ahead of time, and say when that fails. */

export class Renewal {
  constructor(url, expires, onUrls, onSignedOut) {
    this.url = url;
    this.expires = expires;
    this.onUrls = onUrls;
    this.onSignedOut = onSignedOut;
    this.timer = 0;
    this.stopped = false;
  }

  schedule() {
    clearTimeout(this.timer);
    if (!this.expires || this.stopped) return;
    const left = this.expires - Date.now() / 1000;
    const lead = Math.min(600, left / 3);
    const wait = Math.max(5, left - lead) * 1000;
    this.timer = setTimeout(() => this.renew(), wait);
  }

  /* Fresh URLs now; resolves with them (or undefined when it could not get any). */
  renew() {
    return fetch(this.url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then((response) => {
        if (response.status === 401) throw new Error("signed out");
        if (!response.ok) throw new Error("renew " + response.status);
        return response.json();
      })
      .then((urls) => {
        if (this.stopped) return urls;
        this.expires = urls.expires;
        this.onUrls(urls);
        this.schedule();
        return urls;
      })
      .catch((err) => {
        if (this.stopped) return undefined;
        if (String(err.message) === "signed out") this.onSignedOut();
        else this.timer = setTimeout(() => this.renew(), 30000);
        return undefined;
      });
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
  }
}
