"""Redact mode and marked spans in real Chromium: an admin selects a span on the waveform
(a touch drag on a tablet, the keyboard on a desktop), confirms, and sees the new audio with
the span hatched; pauses and removed keypad tones are marked too, with a legend and a list
in words; an agent never sees the control and the server refuses it; under legal hold the
panel says why it cannot redact, also when the hold comes between opening and confirming."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import sign_in, touch_page
from tests.browser.test_dashboard import _axe_serious
from tests.conftest import in_thread, make_env, make_tenant
from tests.playback.conftest import SpeechRecording, make_speech_recording, seed_call_on
from web.db import close_db, open_db
from web.models import Recording
from web.settings import DatabaseSettings
from web.storage import LocalStorage

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SIZES = [(390, 844, True), (820, 1180, True), (1180, 820, True), (1440, 900, False)]
PAUSE = {"start_ms": 6000, "end_ms": 7500}
KEYPAD = {"start_ms": 9000, "end_ms": 9400, "channel": "both", "reason": "dtmf"}


@dataclass
class Site:
    url: str
    db_url: str
    call_id: str
    admin: str
    agent: str
    duration_s: float


async def _seed(db_url: str, root: Path, speech: SpeechRecording) -> tuple[str, str, str]:
    await open_db(DatabaseSettings(db_url))
    try:
        tenant = await make_tenant("Org Redact")
        call, _ = await seed_call_on(
            LocalStorage(root), tenant, speech, pauses=[PAUSE], redactions=[KEYPAD]
        )
        return str(call.id), tenant.admin.email, tenant.agent.email
    finally:
        await close_db()


async def _row(db_url: str, call_id: str, **changes: Any) -> Recording:
    await open_db(DatabaseSettings(db_url))
    try:
        if changes:
            await Recording.filter(call_id=call_id).update(**changes)
        return await Recording.get(call_id=call_id)
    finally:
        await close_db()


@pytest.fixture(scope="module")
def redact_speech(tmp_path_factory: pytest.TempPathFactory) -> SpeechRecording:
    """Real two-voice speech (espeak-ng)."""
    return make_speech_recording(tmp_path_factory.mktemp("redact-speech"))


@pytest.fixture
def site(tmp_path: Path, db_url: str, server_factory: Any, redact_speech: SpeechRecording) -> Site:
    data = tmp_path / "data"
    call_id, admin, agent = in_thread(_seed(db_url, data / "recordings", redact_speech))
    server = server_factory(make_env(data, db_url))
    return Site(server.url, db_url, call_id, admin, agent, redact_speech.duration_ms / 1000)


def _page(browser: Any, site: Site, email: str, width: int, height: int, touch: bool) -> Any:
    page = sign_in(touch_page(browser, width, height, touch), site.url, email)
    page.goto(f"{site.url}/calls/{site.call_id}")
    page.wait_for_selector("[data-player][data-painted='1']", timeout=30000)
    return page


def _shot(page: Any, name: str) -> None:
    folder = Path(os.environ.get("TALKTURO_REDACT_SHOTS", "/tmp/shots-redact"))
    folder.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(folder / f"{name}.png"))


def _no_overflow(page: Any) -> None:
    width, inner = page.evaluate("() => [document.scrollingElement.scrollWidth, innerWidth]")
    assert width <= inner, (width, inner)


def _marks(page: Any) -> list[dict[str, Any]]:
    """The spans drawn over the waveform, with their box relative to the waveform's."""
    result: list[dict[str, Any]] = page.evaluate(
        """() => {
             const w = document.querySelector('[data-wave]').getBoundingClientRect();
             const marks = document.querySelectorAll('[data-span-marks] .player-span');
             return Array.from(marks).map(m => {
               const r = m.getBoundingClientRect();
               return {kind: m.dataset.kind, cls: m.className,
                       left: (r.left - w.left) / w.width, right: (r.right - w.left) / w.width,
                       top: (r.top - w.top) / w.height, bottom: (r.bottom - w.top) / w.height};
             }); }"""
    )
    return result


def _wave_box(page: Any) -> tuple[float, float, float, float]:
    box = page.locator("[data-wave]").bounding_box()
    assert box is not None
    return box["x"], box["y"], box["width"], box["height"]


@pytest.mark.parametrize(("width", "height", "touch"), SIZES, ids=[str(s[0]) for s in SIZES])
def test_pause_and_keypad_spans_are_marked_with_words(
    site: Site, browser: Any, width: int, height: int, touch: bool
) -> None:
    page = _page(browser, site, site.agent, width, height, touch)
    marks = _marks(page)
    assert sorted(m["kind"] for m in marks) == ["keypad", "paused"]
    for mark in marks:
        start, end = (
            (PAUSE if mark["kind"] == "paused" else KEYPAD)["start_ms"],
            (PAUSE if mark["kind"] == "paused" else KEYPAD)["end_ms"],
        )
        assert abs(mark["left"] - start / 1000 / site.duration_s) < 0.01, mark
        assert mark["right"] - mark["left"] >= (end - start) / 1000 / site.duration_s - 0.01
        assert mark["top"] < 0.05
        assert mark["bottom"] > 0.7  # both lanes
    # The legend and the spans in words.
    summary = page.locator("[data-span-info] summary")
    assert "Paused" in summary.inner_text()
    assert "Keypad tone removed" in summary.inner_text()
    summary.click()
    items = page.locator("[data-span-info] li")
    assert items.count() == 2
    assert items.nth(0).inner_text().replace("\n", " ").startswith("0:06.0\u20130:07.5")
    assert "Paused" in items.nth(0).inner_text()
    assert "Keypad tone removed" in items.nth(1).inner_text()
    items.nth(1).locator("button").click()
    page.wait_for_function("Math.abs(window.talkturoPlayer.instances()[0].position() - 9) < 0.05")
    _no_overflow(page)
    # An agent has no Redact control.
    assert page.locator("[data-redact]").count() == 0
    assert _axe_serious(page) == []
    if width in (820, 1440):
        _shot(page, f"marks-{width}")
    assert page.errors == []
    page.context.close()


def _touch_drag(page: Any, x0: float, x1: float, y: float) -> None:
    """A finger drag through the DevTools protocol (pointer events of type touch)."""
    cdp = page.context.new_cdp_session(page)
    cdp.send("Input.dispatchTouchEvent", {"type": "touchStart", "touchPoints": [{"x": x0, "y": y}]})
    for i in range(1, 11):
        x = x0 + (x1 - x0) * i / 10
        point = {"x": x, "y": y}
        cdp.send("Input.dispatchTouchEvent", {"type": "touchMove", "touchPoints": [point]})
    cdp.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})


def _confirm_and_wait(page: Any, width: int) -> None:
    page.click("[data-redact-review]")
    dialog = page.locator("[data-redact-confirm]")
    dialog.wait_for(state="visible")
    text = dialog.inner_text()
    assert "cannot be undone" in text
    assert "deleted" in text
    assert page.evaluate("() => document.activeElement.matches('[data-redact-cancel]')")
    assert _axe_serious(page) == []
    _shot(page, f"confirm-{width}")
    page.click("[data-redact-confirm-go]")
    page.wait_for_function(
        "() => document.querySelector('[data-redact-done]')?.textContent.startsWith('Redacted ')",
        timeout=60000,
    )
    page.wait_for_selector("[data-player][data-painted='1']", timeout=30000)


def test_admin_drags_a_span_on_a_tablet_and_sees_it_hatched(site: Site, browser: Any) -> None:
    before = in_thread(_row(site.db_url, site.call_id))
    page = _page(browser, site, site.admin, 820, 1180, True)
    toggle = page.locator("[data-redact-toggle]")
    toggle.tap()
    assert toggle.get_attribute("aria-pressed") == "true"
    assert page.locator("[data-redact-form]").is_visible()
    # The channel first: Chromium takes the first tap after a quick drag as the end of a fling.
    page.tap("input[name=channel][value=caller]")
    assert page.is_checked("input[name=channel][value=caller]")
    x, y, w, h = _wave_box(page)
    _touch_drag(page, x + 0.1 * w, x + 0.25 * w, y + h * 0.3)
    start = float(page.get_attribute("[data-player]", "data-selection-start") or "nan")
    end = float(page.get_attribute("[data-player]", "data-selection-end") or "nan")
    assert abs(start - 0.1 * site.duration_s) < 0.2
    assert abs(end - 0.25 * site.duration_s) < 0.2
    # A drag selects; it does not move the playhead.
    assert float(page.evaluate("window.talkturoPlayer.instances()[0].position()")) == 0
    page.wait_for_selector(".redact-band.redact-band-caller")
    assert _axe_serious(page) == []
    _shot(page, "redact-mode-820")
    _confirm_and_wait(page, 820)

    after = in_thread(_row(site.db_url, site.call_id))
    assert after.sha256 != before.sha256
    assert after.storage_key != before.storage_key
    spans = [r for r in after.redactions if r["reason"] != "dtmf"]
    assert len(spans) == 1
    assert spans[0]["channel"] == "caller"
    assert abs(spans[0]["start_ms"] / 1000 - start) < 0.11
    assert abs(spans[0]["end_ms"] / 1000 - end) < 0.11
    # The new panel: the new audio's URL, the span hatched over the caller's lane only.
    hatched = [m for m in _marks(page) if m["kind"] == "redacted"]
    assert len(hatched) == 1
    assert "player-span-on-caller" in hatched[0]["cls"]
    assert hatched[0]["bottom"] < 0.5
    assert abs(hatched[0]["left"] - spans[0]["start_ms"] / 1000 / site.duration_s) < 0.01
    assert "Redacted" in page.inner_text("[data-span-info] summary")
    assert page.evaluate("() => document.activeElement.matches('[data-redact-toggle]')")
    _no_overflow(page)
    assert _axe_serious(page) == []
    _shot(page, "hatched-820")
    assert page.errors == []
    page.context.close()


def test_admin_redacts_with_the_keyboard_on_a_desktop(site: Site, browser: Any) -> None:
    page = _page(browser, site, site.admin, 1440, 900, False)
    page.focus("[data-redact-toggle]")
    page.keyboard.press("Enter")
    assert page.get_attribute("[data-player]", "data-redact-mode") == "on"
    # The playhead by the slider's keys, the span's ends at the playhead.
    page.focus("[data-wave]")
    page.keyboard.press("ArrowRight")  # 5 s
    page.click("[data-redact-set=start]")
    page.focus("[data-wave]")
    page.keyboard.press("ArrowRight")  # 10 s
    page.focus("[data-redact-set=end]")
    page.keyboard.press("Enter")
    assert page.input_value("[data-redact-start]") == "0:05.0"
    assert page.input_value("[data-redact-end]") == "0:10.0"
    page.check("input[name=mode][value=tone]")
    _shot(page, "redact-mode-1440")
    # A reversed span is refused before anything is sent.
    page.fill("[data-redact-end]", "0:04")
    page.click("[data-redact-review]")
    assert "after the start" in page.inner_text("[data-redact-message]")
    assert page.get_attribute("[data-redact-end]", "aria-invalid") == "true"
    assert not page.locator("[data-redact-confirm]").is_visible()
    page.fill("[data-redact-end]", "0:10")
    # Escape closes the dialog and leaves the panel open.
    page.click("[data-redact-review]")
    page.locator("[data-redact-confirm]").wait_for(state="visible")
    page.keyboard.press("Escape")
    page.locator("[data-redact-confirm]").wait_for(state="hidden")
    assert page.locator("[data-detail]").is_visible()
    _confirm_and_wait(page, 1440)
    row = in_thread(_row(site.db_url, site.call_id))
    assert [(r["start_ms"], r["end_ms"], r["channel"]) for r in row.redactions][1:] == [
        (5000, 10000, "both")
    ]
    hatched = [m for m in _marks(page) if m["kind"] == "redacted"]
    assert len(hatched) == 1
    assert hatched[0]["top"] < 0.05
    assert hatched[0]["bottom"] > 0.7
    page.locator("[data-span-info] summary").click()
    assert "Redacted" in page.locator("[data-span-info] li", has_text="0:05.0").inner_text()
    assert _axe_serious(page) == []
    _shot(page, "hatched-1440")
    assert page.errors == []
    page.context.close()


def test_agent_is_refused_and_legal_hold_is_explained(site: Site, browser: Any) -> None:
    agent = _page(browser, site, site.agent, 820, 1180, True)
    assert agent.locator("[data-redact-toggle]").count() == 0
    status = agent.evaluate(
        """async (id) => {
             const token = document.cookie.split('; ').find(c => c.startsWith('talkturo_csrf='));
             const body = new URLSearchParams({start: '0:01', end: '0:02', channel: 'both',
                                               mode: 'silence'});
             const r = await fetch('/calls/' + id + '/redactions', {method: 'POST', body,
               headers: {'Accept': 'application/json',
                         'X-CSRFToken': token ? token.split('=')[1] : ''}});
             return [r.status, (await r.json()).detail];
           }""",
        site.call_id,
    )
    assert status[0] == 403, status
    agent.context.close()

    # The hold comes while the admin has the panel open: the server's 409 is shown.
    page = _page(browser, site, site.admin, 1440, 900, False)
    page.click("[data-redact-toggle]")
    page.fill("[data-redact-start]", "0:01")
    page.fill("[data-redact-end]", "0:02")
    in_thread(_row(site.db_url, site.call_id, legal_hold=True))
    page.click("[data-redact-review]")
    page.click("[data-redact-confirm-go]")
    page.wait_for_function(
        "() => document.querySelector('[data-redact-message]').textContent.includes('legal hold')"
    )
    assert page.get_attribute("[data-player]", "data-redact-state") == "refused"
    # Opened again under hold: the control says why before anything is tried.
    page.reload()
    page.wait_for_selector("[data-player][data-painted='1']", timeout=30000)
    toggle = page.locator("[data-redact-toggle]")
    assert toggle.get_attribute("aria-disabled") == "true"
    assert "legal hold" in page.inner_text("#redact-held")
    # aria-disabled keeps it focusable and clickable (Playwright needs force to click it).
    toggle.click(force=True)
    assert page.get_attribute("[data-player]", "data-redact-mode") == "off"
    assert "release the hold" in page.inner_text("[data-redact-done]")
    assert _axe_serious(page) == []
    row = in_thread(_row(site.db_url, site.call_id))
    assert [r["reason"] for r in row.redactions] == ["dtmf"]
    assert page.errors == []
    page.context.close()
