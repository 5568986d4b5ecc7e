"""Call review in real Chromium at phone, tablet and desktop sizes (touch on the small
ones): nothing wider than the screen, Close/Play/Download on screen, the player pinned
while the transcript scrolls, the spoken line marked and followed, deep links to a
moment, notes as markers, Close offline, and no serious axe-core finding anywhere."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import seeded_server, sign_in, touch_page
from tests.browser.test_dashboard import _axe_serious
from tests.conftest import make_tenant
from tests.dashboard._data import add_messages, seed
from tests.playback.conftest import SpeechRecording, seed_call_on
from web.models import Call
from web.storage import LocalStorage

pytestmark = [pytest.mark.browser, pytest.mark.slow]

# Width, height, touch: a phone, a tablet upright and on its side, a desktop.
SIZES = [(390, 844, True), (820, 1180, True), (1180, 820, True), (1440, 900, False)]
# Transcript turns every 1.2 s, enough of them that the transcript scrolls on every size.
TURN_MS = 1200


@dataclass
class Review:
    url: str
    call_id: str
    admin: str
    agent: str
    duration_s: float


async def _seed(root: Path, speech: SpeechRecording) -> tuple[str, str, str]:
    tenant = await make_tenant("Org Review")
    other = await make_tenant("Org Elsewhere")
    await seed(tenant.org, other.org)
    call, _ = await seed_call_on(LocalStorage(root), tenant, speech)
    await Call.filter(id=call.id).update(campaign="spring-renewals")
    turns = []
    for i in range(speech.duration_ms // TURN_MS):
        role = "user" if i % 2 == 0 else "assistant"
        turns.append((role, f"Line {i}: about the order and its delivery window.", i * TURN_MS))
    await add_messages(call, turns)
    return str(call.id), tenant.admin.email, tenant.agent.email


@pytest.fixture
def review(
    tmp_path: Path, db_url: str, server_factory: Any, browser_speech: SpeechRecording
) -> Review:
    """A running server: a list of known calls and one recorded call with a timed transcript."""
    url, (call_id, admin, agent) = seeded_server(
        tmp_path, db_url, server_factory, lambda root: _seed(root, browser_speech)
    )
    return Review(url, call_id, admin, agent, browser_speech.duration_ms / 1000)


def _page(browser: Any, r: Review, email: str, width: int, height: int, touch: bool) -> Any:
    page = touch_page(browser, width, height, touch)
    sign_in(page, r.url, email)
    return page


def _call_page(
    browser: Any, r: Review, email: str, size: tuple[int, int, bool], query: str = ""
) -> Any:
    """Signed in at ``size`` (width, height, touch), the recorded call opened by its link
    (plus ``query``) with its waveform drawn."""
    page = _page(browser, r, email, *size)
    page.goto(f"{r.url}/calls/{r.call_id}{query}")
    page.wait_for_selector("[data-player][data-painted='1']", timeout=30000)
    return page


def _no_overflow(page: Any) -> None:
    width, inner = page.evaluate("() => [document.scrollingElement.scrollWidth, innerWidth]")
    assert width <= inner, (width, inner)


def _on_screen(page: Any, selector: str) -> None:
    box = page.evaluate(
        """(s) => { const r = document.querySelector(s).getBoundingClientRect();
                    return [r.left, r.top, r.right, r.bottom, innerWidth, innerHeight]; }""",
        selector,
    )
    left, top, right, bottom, width, height = box
    assert min(left, top) >= 0, (selector, box)
    assert right <= width, (selector, box)
    assert bottom <= height, (selector, box)


def _shot(page: Any, tmp_path: Path, name: str) -> None:
    folder = Path(os.environ.get("TALKTURO_REVIEW_SHOTS", tmp_path))
    folder.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(folder / f"{name}.png"))


def _open(page: Any, r: Review, touch: bool) -> None:
    row = page.locator(f'tr[data-call-id="{r.call_id}"] td.col-from')
    if touch:
        row.tap()
    else:
        row.click()
    page.wait_for_selector("[data-player][data-painted='1']", timeout=30000)


def _position(page: Any) -> float:
    return float(page.evaluate("() => window.talkturoPlayer.instances()[0].position()"))


@pytest.mark.parametrize(("width", "height", "touch"), SIZES, ids=[str(s[0]) for s in SIZES])
def test_layout_fits_and_player_stays_in_view(
    review: Review, browser: Any, tmp_path: Path, width: int, height: int, touch: bool
) -> None:
    email = review.admin if width == 1440 else review.agent
    page = _page(browser, review, email, width, height, touch)
    _no_overflow(page)
    rows = page.evaluate(
        "() => Array.from(document.querySelectorAll('tr.call-row'))"
        ".map(r => r.getBoundingClientRect().right)"
    )
    assert rows
    assert max(rows) <= width
    assert _axe_serious(page) == []
    _shot(page, tmp_path, f"list-{width}")

    _open(page, review, touch)
    _no_overflow(page)
    for control in ("[data-close-panel]", "[data-play]", "[data-download]"):
        _on_screen(page, control)
    assert _axe_serious(page) == []
    _shot(page, tmp_path, f"panel-{width}")
    # Header and player agree on the duration.
    header = page.inner_text("[data-header-duration]")
    assert header == page.inner_text("[data-dur]")
    # Admin-only sections sit in their own tab, for admins only.
    assert (page.locator("#tab-admin").count() == 1) == (email == review.admin)

    # Scroll the transcript to its end: the player and Close stay where they were.
    page.evaluate(
        """() => { const p = document.getElementById('panel');
                   const s = p.scrollHeight > p.clientHeight ? p : document.scrollingElement;
                   s.scrollTop = s.scrollHeight; }"""
    )
    page.wait_for_timeout(100)
    last = page.locator("[data-transcript] li").last
    assert last.is_visible()
    for control in ("[data-close-panel]", "[data-play]", "[data-download]", "[data-wave]"):
        _on_screen(page, control)
    _no_overflow(page)
    _shot(page, tmp_path, f"panel-scrolled-{width}")

    page.keyboard.press("Escape")
    page.wait_for_selector("#panel", state="hidden")
    _no_overflow(page)
    assert page.errors == []
    page.context.close()


# Every visible piece of the list's rows inside the list's box, and every tab inside the tab
# row (no horizontal scrolling hides a column, a status badge or a tab).
CLIPPED = """() => {
  const out = [];
  const shown = (el) => {
    const r = el.getBoundingClientRect();
    return r.width > 1 && r.height > 1 && getComputedStyle(el).visibility !== 'hidden';
  };
  const inside = (el, box, what) => {
    const r = el.getBoundingClientRect();
    if (r.left < box.left - 0.5 || r.right > box.right + 0.5) {
      const span = (b) => `${b.left.toFixed(0)}..${b.right.toFixed(0)}`;
      out.push(`${what}: ${el.tagName}.${el.className} ${span(r)} outside ${span(box)}`);
    }
  };
  const results = document.getElementById('results');
  if (results && shown(results)) {
    if (results.scrollWidth > results.clientWidth) {
      out.push(`list scrolls: ${results.scrollWidth} > ${results.clientWidth}`);
    }
    const box = results.getBoundingClientRect();
    const cells = 'thead th, thead th *, tr.call-row td, tr.call-row td *';
    for (const el of results.querySelectorAll(cells)) {
      if (shown(el) && !el.closest('.visually-hidden')) inside(el, box, 'list');
    }
  }
  const tabs = document.querySelector('[role=tablist]');
  if (tabs && shown(tabs)) {
    if (tabs.scrollWidth > tabs.clientWidth) {
      out.push(`tabs scroll: ${tabs.scrollWidth} > ${tabs.clientWidth}`);
    }
    const box = tabs.getBoundingClientRect();
    for (const tab of tabs.querySelectorAll('[role=tab]')) {
      if (!shown(tab)) out.push(`tab not shown: ${tab.id}`);
      else inside(tab, box, 'tab');
      const r = tab.getBoundingClientRect();
      if (r.right > innerWidth || r.left < 0) out.push(`tab off screen: ${tab.id}`);
    }
  }
  return out;
}"""


@pytest.mark.parametrize(("width", "height", "touch"), SIZES, ids=[str(s[0]) for s in SIZES])
def test_nothing_clipped_in_the_list_or_the_tabs(
    review: Review, browser: Any, tmp_path: Path, width: int, height: int, touch: bool
) -> None:
    # An admin has the most tabs (Admin too); the list has every status, "in progress" the widest.
    page = _page(browser, review, review.admin, width, height, touch)
    assert page.locator("tr.call-row .status-in-progress").count() >= 1
    assert page.evaluate(CLIPPED) == []
    _no_overflow(page)
    _open(page, review, touch)
    assert page.locator("[role=tab]").count() == 5
    assert page.evaluate(CLIPPED) == []
    _no_overflow(page)
    if width >= 1280:
        # Beside the panel the list keeps what matters: the numbers, duration and status.
        for column in ("col-from", "col-dur", "col-status"):
            assert page.locator(f"tr.call-row td.{column}").first.is_visible(), column
        first = page.locator("tr.call-row").first
        assert first.locator(".col-to").is_hidden()
        assert first.get_attribute("data-call-id")
        assert first.locator(".col-from .to-sub").is_visible()
    _shot(page, tmp_path, f"clipped-{width}")
    page.context.close()


def test_transcript_follows_playback_deep_link_keys_and_speed(
    review: Review, browser: Any, tmp_path: Path
) -> None:
    # A link to a moment opens the call with the player there (nothing fetched yet).
    page = _call_page(browser, review, review.agent, (820, 1180, True), "?t=6")
    assert abs(_position(page) - 6) < 0.01
    assert page.get_attribute("[data-wave]", "aria-valuenow") == "6"
    # Selecting a line seeks there and plays; the spoken line is marked.
    page.locator("[data-transcript] li").nth(2).locator("button").tap()
    page.wait_for_function("() => document.querySelector('[data-player] audio').currentTime > 2.5")
    page.wait_for_function(
        "() => document.querySelector('[data-transcript] [aria-current=true]') !== null"
    )
    current = page.locator("[data-transcript] [aria-current=true]")
    assert current.count() == 1
    start = float(current.get_attribute("data-start-ms")) / 1000
    assert (
        start
        <= page.evaluate("() => document.querySelector('[data-player] audio').currentTime") + 0.1
    )
    # The line being spoken moves on, and is kept in view below the pinned player.
    page.wait_for_function(
        "() => +document.querySelector('[data-transcript] [aria-current=true]').dataset.startMs"
        f" >= {4 * TURN_MS}",
        timeout=15000,
    )
    line = page.locator("[data-transcript] [aria-current=true]").bounding_box()
    top = page.locator("[data-detail-top]").bounding_box()
    assert line["y"] >= top["y"] + top["height"] - 1
    assert line["y"] + line["height"] <= 1180
    # Scrolling the transcript away stops following; the control brings it back.
    page.mouse.move(400, 1000)
    page.mouse.wheel(0, 600)
    page.wait_for_function(
        "() => document.querySelector('[data-follow]').getAttribute('aria-pressed') === 'false'"
    )
    page.locator("[data-follow]").tap()
    assert page.get_attribute("[data-follow]", "aria-pressed") == "true"

    # Space and arrows anywhere in the panel outside text fields; skip buttons.
    audio = "document.querySelector('[data-player] audio')"
    page.focus("#tp-transcript")
    page.keyboard.press("Space")
    page.wait_for_function(f"() => {audio}.paused")
    at = _position(page)
    page.keyboard.press("ArrowRight")
    assert abs(_position(page) - min(at + 5, review.duration_s)) < 0.3
    page.locator("[data-skip='-15']").tap()
    assert _position(page) < 1.0
    page.locator("[data-skip='15']").tap()
    assert abs(_position(page) - min(15, review.duration_s)) < 0.3
    # Typing in a text field is only typing.
    page.locator("#tab-notes").tap()
    page.fill("#note-text", "a b")
    before = _position(page)
    page.focus("#note-text")
    page.keyboard.press("Space")
    page.keyboard.press("ArrowLeft")
    assert page.evaluate(f"() => {audio}.paused")
    assert _position(page) == before

    # Copy link to this moment: the link names the whole second.
    page.locator("[data-skip='-15']").tap()
    page.locator("[data-copy-moment]").tap()
    copied = page.get_attribute("[data-player]", "data-copied")
    assert copied.endswith(f"/calls/{review.call_id}?t={int(_position(page))}")

    # Speed is remembered for the user: another page load starts at it.
    page.select_option("select[data-speed]", "1.5")
    page.wait_for_function(
        "() => document.querySelector('[data-player]').dataset.speedSaved === '1.5'"
    )
    page.evaluate("() => localStorage.clear()")
    page.goto(f"{review.url}/calls/{review.call_id}")
    page.wait_for_selector("[data-player][data-painted='1']")
    assert page.input_value("select[data-speed]") == "1.5"
    assert page.evaluate(f"() => {audio}.playbackRate") == 1.5
    assert _axe_serious(page) == []
    assert page.errors == []
    page.context.close()


def test_notes_markers_mute_dims_and_admin_tab(
    review: Review, browser: Any, tmp_path: Path
) -> None:
    page = _call_page(browser, review, review.admin, (1440, 900, False))
    page.click("#tab-notes")
    page.fill("#note-at", "0:03")
    page.fill("#note-text", "Caller confirms the address")
    page.click("[data-note-form] button[type=submit]")
    page.wait_for_selector("[data-note-list] [data-at-ms='3000']")
    page.wait_for_function(
        "() => document.querySelector('[data-note-marks]').dataset.count === '1'"
    )
    assert page.inner_text("#notes-count") == "1"
    # Selecting a note seeks there without starting playback.
    page.click("[data-note-list] .note-seek")
    assert abs(_position(page) - 3) < 0.05
    assert page.evaluate("() => document.querySelector('[data-player] audio').paused")
    assert _axe_serious(page) == []
    page.click("[data-note-list] form button")
    page.wait_for_selector("[data-note-list]", state="detached")
    page.wait_for_function(
        "() => document.querySelector('[data-note-marks]').dataset.count === '0'"
    )

    # Muting a side dims its lane on the waveform (the bars are redrawn dimmer).
    def lane_light(top: bool) -> int:
        return int(
            page.evaluate(
                """(top) => { const c = document.querySelector('[data-player] canvas');
                     const h = Math.floor((c.height - 20) / 2);
                     const d = c.getContext('2d').getImageData(0, top ? 0 : h, c.width, h).data;
                     let n = 0;
                     for (let i = 0; i < d.length; i += 4) if (d[i] + d[i+1] + d[i+2] > 450) n++;
                     return n; }""",
                top,
            )
        )

    bright = lane_light(True)
    page.click("[data-side=caller][data-mode=mute]")
    assert lane_light(True) < bright / 4
    assert page.get_attribute("[data-player]", "data-gain-caller") == "0"
    # The layers were built once per size or mute change, not per frame.
    builds = int(page.get_attribute("[data-player]", "data-layer-builds"))
    page.click("[data-play]")
    page.wait_for_function(
        "() => document.querySelector('[data-player] audio').currentTime > 4.5", timeout=15000
    )
    assert int(page.get_attribute("[data-player]", "data-layer-builds")) == builds

    page.click("#tab-admin")
    assert page.is_visible("#tp-admin .legal-hold button")
    assert _axe_serious(page) == []

    # Focus stays on the control HTMX replaced: an assistant's switch, a new key's Copy.
    page.goto(f"{review.url}/assistants")
    switch = "[data-assistant-id] [role=switch]"
    page.focus(switch)
    before = page.get_attribute(switch, "aria-checked")
    page.keyboard.press("Enter")
    page.wait_for_function(
        f"() => document.querySelector('{switch}').getAttribute('aria-checked') !== '{before}'"
    )
    page.wait_for_function("() => document.activeElement.getAttribute('role') === 'switch'")
    page.goto(f"{review.url}/settings/api-keys")
    page.fill("#key-name", "pipeline")
    page.focus("#api-keys button[type=submit].primary")
    page.keyboard.press("Enter")
    page.wait_for_selector("[data-copy-key]")
    page.wait_for_function("() => document.activeElement.matches('[data-copy-key]')")
    assert _axe_serious(page) == []
    page.context.close()


def test_close_and_escape_work_offline(review: Review, browser: Any, tmp_path: Path) -> None:
    page = _page(browser, review, review.agent, 390, 844, True)
    list_url = page.url
    _open(page, review, True)
    page.context.set_offline(True)
    page.locator("[data-close-panel]").tap()
    page.wait_for_selector("#panel", state="hidden")
    assert page.url == list_url
    assert page.is_visible("#stale-note")
    page.context.set_offline(False)
    page.locator("[data-retry-list]").tap()
    page.wait_for_selector("#stale-note", state="detached")

    _open(page, review, True)
    page.context.set_offline(True)
    page.focus("#detail-title")
    page.keyboard.press("Escape")
    page.wait_for_selector("#panel", state="hidden")
    assert page.is_visible("#stale-note")
    page.context.set_offline(False)
    page.context.close()


def test_a_tap_fetches_only_the_panel_before_the_waveform_and_no_copy_is_kept(
    review: Review, browser: Any
) -> None:
    page = _page(browser, review, review.agent, 1440, 900, False)
    # Everything the browser fetched from the tap until the waveform was painted (read a
    # second later, so a request still under way at the paint is listed too).
    fetched = page.evaluate(
        """(id) => new Promise((done) => {
             const t0 = performance.now();
             document.querySelector(`tr[data-call-id="${id}"] td.col-from`).click();
             const seen = () => {
               const m = performance.getEntriesByName('talkturo:waveform-painted')[0];
               if (!m) { requestAnimationFrame(seen); return; }
               setTimeout(() => done(performance.getEntriesByType('resource')
                 .filter(e => e.startTime >= t0 && e.startTime <= m.startTime)
                 .map(e => new URL(e.name).pathname)), 1000);
             };
             requestAnimationFrame(seen);
           })""",
        review.call_id,
    )
    assert fetched == [f"/calls/{review.call_id}"]

    # The next call tapped while this one is open: no copy of the open call (its transcript)
    # goes into the tab's history cache; Back brings it again from the server.
    other = page.evaluate(
        "(id) => document.querySelector(`tr.call-row:not([data-call-id='${id}'])`).dataset.callId",
        review.call_id,
    )
    page.click(f'tr[data-call-id="{other}"] td.col-from')
    page.wait_for_function(
        f"() => document.querySelector('#panel [data-detail]').dataset.callId === '{other}'"
    )
    cache = page.evaluate("() => sessionStorage.getItem('htmx-history-cache') || ''")
    assert "data-call-id" in cache  # the list itself, for Back to it
    assert "about the order and its delivery window" not in cache
    page.go_back()
    page.wait_for_function(
        "(id) => { const d = document.querySelector('#panel [data-detail]');"
        " return d && d.dataset.callId === id; }",
        arg=review.call_id,
    )
    page.wait_for_selector("[data-player][data-painted='1']", timeout=30000)
    page.go_back()
    page.wait_for_selector("#panel", state="hidden")
    page.context.close()


def test_times_in_the_browsers_zone_and_preferences(review: Review, browser: Any) -> None:
    context = browser.new_context(
        viewport={"width": 1180, "height": 820}, timezone_id="America/Los_Angeles"
    )
    page = context.new_page()
    sign_in(page, review.url, review.agent)
    # The page learns the browser's zone and shows the list again on its clock.
    page.wait_for_function(
        "() => document.querySelector('.calls th .hint').textContent === 'America/Los_Angeles'"
    )
    shown = page.evaluate(
        """() => { const t = document.querySelector('tr.call-row time');
                   return [t.getAttribute('datetime'), t.textContent]; }"""
    )
    utc, text = shown
    expected = page.evaluate(
        """(iso) => new Intl.DateTimeFormat('sv-SE', {timeZone: 'America/Los_Angeles',
             year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit',
             minute: '2-digit'}).format(new Date(iso))""",
        utc,
    )
    assert text == expected
    assert "America/Los_Angeles" in page.inner_text("label[for=f-date_from]")

    # A zone chosen in Preferences wins over the browser's.
    page.goto(f"{review.url}/settings/preferences")
    assert _axe_serious(page) == []
    page.select_option("#pref-zone", "Asia/Tokyo")
    page.click("button[type=submit].primary")
    page.wait_for_selector("p.settings-saved")
    page.goto(f"{review.url}/calls")
    assert page.text_content(".calls th .hint") == "Asia/Tokyo"
    context.close()
