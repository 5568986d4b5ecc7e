"""The player in real Chromium: waveform from peaks, play, seek, speed, keyboard, solo,
download, signed-URL renewal mid-playback, and the PWA shell offline. Against a real
``talkturo serve`` and real speech."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import seeded_server, sign_in
from tests.conftest import make_tenant
from tests.playback.conftest import SpeechRecording, seed_call_on
from web.storage import LocalStorage

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@dataclass
class Seeded:
    url: str
    call_id: str
    email: str
    speech: SpeechRecording


async def _seed(root: Path, speech: SpeechRecording) -> tuple[str, str]:
    tenant = await make_tenant("Org Browser")
    call, _ = await seed_call_on(LocalStorage(root), tenant, speech)
    return str(call.id), tenant.admin.email


@pytest.fixture
def seeded(
    tmp_path: Path, db_url: str, server_factory: Any, browser_speech: SpeechRecording
) -> Seeded:
    """A running server with one call whose recording is stored on local storage."""
    url, (call_id, email) = seeded_server(
        tmp_path, db_url, server_factory, lambda root: _seed(root, browser_speech)
    )
    return Seeded(url, call_id, email, browser_speech)


def _open_panel(
    browser: Any,
    s: Seeded,
    *,
    fake_clock: bool = False,
    plain_src: bool = False,
    **context_args: Any,
) -> tuple[Any, Any, list[str]]:
    context = browser.new_context(**context_args)
    page = context.new_page()
    if plain_src:
        # A browser without Media Source Extensions: the element plays the signed URL itself.
        page.add_init_script("delete window.MediaSource")
    if fake_clock:
        # The page's timers and Date run on a clock the test can move ahead.
        page.clock.install()
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    ranges: list[str] = []
    page.on("request", lambda r: ".mp3" in r.url and ranges.append(r.headers.get("range", "")))
    page.mp3_ranges = ranges
    sign_in(page, s.url, s.email)
    requests.clear()
    page.goto(f"{s.url}/calls/{s.call_id}")
    page.wait_for_selector("[data-player][data-painted='1']", timeout=30000)
    return context, page, requests


def _pixels(page: Any) -> dict[str, int]:
    return page.evaluate(
        """() => {
          const c = document.querySelector('[data-player] canvas');
          const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
          let white = 0, purple = 0;
          for (let i = 0; i < d.length; i += 4) {
            const [r, g, b] = [d[i], d[i + 1], d[i + 2]];
            // Played bars are full colour, unplayed ones dimmed over the dark card.
            if (r > 80 && Math.max(r, g, b) - Math.min(r, g, b) < 16) white++;
            else if (b > g + 40 && b > r + 20) purple++;
          }
          return {white, purple};
        }"""
    )


def _position(page: Any) -> float:
    """Where the player is (its pending seek before the audio has loaded)."""
    return float(page.evaluate("() => window.talkturoPlayer.instances()[0].position()"))


def test_waveform_play_seek_speed_keyboard(seeded: Seeded, browser: Any) -> None:
    context, page, requests = _open_panel(browser, seeded)
    # The waveform is drawn from peaks alone (inline in the panel, or fetched); of the MP3 only
    # its first 8 KB come before Play (one Range request), so Play starts without a round trip.
    inline = page.locator("[data-player] script[data-peaks]").count() == 1
    assert inline or any(u.endswith("/peaks.json") for u in requests)
    page.wait_for_function(
        """() => performance.getEntriesByType('resource')
                 .some(e => e.name.includes('.mp3') && e.responseEnd > 0)"""
    )
    assert page.mp3_ranges == ["bytes=0-8191"]
    fetched = page.evaluate(
        """() => performance.getEntriesByType('resource').filter(e => e.name.includes('.mp3'))
                 .reduce((n, e) => n + e.encodedBodySize, 0)"""
    )
    assert fetched == 8192
    if shot := __import__("os").environ.get("TALKTURO_PLAYER_SHOT"):
        page.screenshot(path=shot)
    colors = _pixels(page)
    assert colors["purple"] > 200, colors
    assert colors["white"] > 200, colors
    # Unplayed caller bars are dimmed white: start playing past a few seconds to see bright white.
    duration = seeded.speech.duration_ms / 1000
    slider = page.locator("[data-wave]")
    assert slider.get_attribute("role") == "slider"
    assert slider.get_attribute("aria-valuemax") == str(round(duration))

    # Click at 50% before anything is loaded: the position is remembered.
    box = slider.bounding_box()
    page.mouse.click(box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.5)
    page.click("[data-play]")
    page.wait_for_function(
        "() => document.querySelector('[data-player]').dataset.state === 'playing'"
    )
    page.wait_for_function(
        "() => document.querySelector('[data-player] audio').readyState >= 1", timeout=10000
    )
    assert abs(_position(page) - duration / 2) < 1.0
    start = _position(page)
    page.wait_for_function(
        f"() => document.querySelector('[data-player] audio').currentTime > {start + 0.5}",
        timeout=10000,
    )
    assert _pixels(page)["white"] > 100

    # Click at 25% while playing.
    page.mouse.click(box["x"] + box["width"] * 0.25, box["y"] + box["height"] * 0.5)
    assert abs(_position(page) - duration / 4) < 1.0

    page.select_option("[data-speed]", "1.5")
    assert page.evaluate("() => document.querySelector('[data-player] audio').playbackRate") == 1.5
    assert page.evaluate("() => document.querySelector('[data-player] audio').preservesPitch")

    slider.focus()
    page.keyboard.press("Home")
    assert _position(page) < 0.5
    page.keyboard.press("ArrowRight")
    assert 4.5 < _position(page) < 6.0
    page.keyboard.press("ArrowLeft")
    assert _position(page) < 1.0
    page.keyboard.press("End")
    assert _position(page) > duration - 1.0
    assert int(slider.get_attribute("aria-valuenow")) >= round(duration) - 1
    assert "seconds of" in slider.get_attribute("aria-valuetext")
    # Space toggles playback: from a settled pause, it plays, then pauses again.
    audio = "document.querySelector('[data-player] audio')"
    page.evaluate(f"() => {audio}.pause()")
    page.wait_for_function(f"() => {audio}.paused")
    page.keyboard.press("Home")
    page.keyboard.press("Space")
    page.wait_for_function(f"() => !{audio}.paused")
    # The player's own state follows the media element's events.
    page.wait_for_function(
        "() => document.querySelector('[data-player]').dataset.state === 'playing'"
    )
    page.keyboard.press("Space")
    page.wait_for_function(f"() => {audio}.paused")
    context.close()


@pytest.mark.parametrize("streaming", [True, False], ids=["mediasource", "plain-src"])
def test_signed_url_renewed_mid_playback_without_losing_place(
    seeded: Seeded, browser: Any, streaming: bool
) -> None:
    context, page, requests = _open_panel(browser, seeded, fake_clock=True, plain_src=not streaming)
    player = "document.querySelector('[data-player]')"
    audio = f"{player}.querySelector('audio')"
    # The signed URL the player loads from (streamed through MediaSource, or the element's src).
    url = "window.talkturoPlayer.instances()[0].url"
    first_src = page.evaluate(f"() => {audio}.getAttribute('src')")
    assert page.evaluate(f"() => {url}") == first_src
    first_expires = int(page.evaluate(f"() => {player}.dataset.expires"))
    page.click("[data-play]")
    page.wait_for_function(f"() => {audio}.currentTime > 1.0", timeout=10000)
    assert page.evaluate(f"() => {audio}.src.startsWith('blob:')") == streaming

    # 51 minutes on (the URL lives an hour): the player fetches fresh URLs and plays on.
    page.clock.fast_forward("51:00")
    page.wait_for_function(f"() => +{player}.dataset.expires > {first_expires}")
    assert any(seeded.call_id in u and "recording-url" in u for u in requests), requests
    assert not page.evaluate(f"() => {audio}.paused")
    # Back near the start: on a busy machine the waits above may have used much of the 15 s
    # call, and what follows needs it playing on.
    page.evaluate(
        "() => document.dispatchEvent(new CustomEvent('talkturo:seek', {detail: {ms: 500}}))"
    )
    page.wait_for_function(f"() => !{audio}.paused && {audio}.currentTime < 3")
    at = page.evaluate(f"() => {audio}.currentTime")
    if streaming:
        # Streamed: the new URL is taken at once for what is still to fetch; nothing reloads.
        assert page.evaluate(f"() => {url}") != first_src
        assert f"expires={first_expires}" not in page.evaluate(f"() => {url}")
        page.wait_for_function(f"() => !{audio}.paused && {audio}.currentTime > {at + 0.5}")
        assert page.evaluate(f"() => {player}.querySelector('[data-error]').hidden")
        context.close()
        return
    # While playing, the source is swapped only shortly before the old one expires.
    assert page.evaluate(f"() => {audio}.getAttribute('src')") == first_src
    page.clock.fast_forward("09:00")
    page.wait_for_function(f"() => {audio}.getAttribute('src') !== {first_src!r}")
    # The new URL plays on from where the old one was, not from the start.
    page.wait_for_function(f"() => {audio}.readyState >= 2", timeout=10000)
    assert at - 0.3 <= page.evaluate(f"() => {audio}.currentTime") < at + 5
    page.wait_for_function(f"() => !{audio}.paused && {audio}.currentTime > {at + 0.5}")
    assert page.evaluate(f"() => {player}.querySelector('[data-error]').hidden")
    new_src = page.evaluate(f"() => {audio}.getAttribute('src')")
    assert f"expires={first_expires}" not in new_src
    context.close()


def test_a_broken_stream_falls_back_to_the_plain_source(seeded: Seeded, browser: Any) -> None:
    context, page, _ = _open_panel(browser, seeded)
    # The rest of the file cannot be fetched (the first 8 KB came when the panel opened).
    page.route(
        "**/recording.mp3*",
        lambda route: (
            route.abort()
            if route.request.headers.get("range", "").startswith("bytes=8192-")
            else route.continue_()
        ),
    )
    page.click("[data-play]")
    audio = "document.querySelector('[data-player] audio')"
    page.wait_for_function(
        "() => document.querySelector('[data-player]').dataset.streaming === '0'", timeout=10000
    )
    page.wait_for_function(f"() => !{audio}.paused && {audio}.currentTime > 1.0", timeout=10000)
    assert not page.evaluate(f"() => {audio}.src.startsWith('blob:')")
    assert page.evaluate("() => document.querySelector('[data-player] [data-error]').hidden")
    context.close()


def test_solo_caller_silences_assistant_and_talk_over_lane(seeded: Seeded, browser: Any) -> None:
    context, page, _ = _open_panel(browser, seeded)
    # The seeded call has the assistant talking over the caller, and a long pause (the strip
    # follows the waveform's first paint).
    page.wait_for_selector(".player-mark-overlap")
    assert page.locator(".player-mark-overlap").count() >= 1
    assert page.locator(".player-mark-silence").count() >= 1
    mark_start = float(page.locator(".player-mark-silence").first.get_attribute("data-start"))
    page.locator(".player-mark-silence").first.click()
    assert abs(_position(page) - mark_start) < 0.5

    # Both talk between about 1.5 s and 4 s: listen there with the caller soloed.
    page.evaluate(
        "() => document.dispatchEvent(new CustomEvent('talkturo:seek', {detail: {ms: 1600}}))"
    )
    page.wait_for_function(
        "() => document.querySelector('[data-player]').dataset.state === 'playing'"
    )
    page.click("[data-side=caller][data-mode=solo]")
    player = page.locator("[data-player]")
    assert player.get_attribute("data-gain-caller") == "1"
    assert player.get_attribute("data-gain-assistant") == "0"
    levels = page.evaluate(
        """async () => {
          const root = document.querySelector('[data-player]');
          const out = [];
          for (let i = 0; i < 20; i++) {
            await new Promise(r => setTimeout(r, 60));
            const d = root.dataset;
            out.push([parseFloat(d.levelCaller), parseFloat(d.levelAssistant)]);
          }
          return out;
        }"""
    )
    # Allow the 10 ms gain ramp to settle before judging the assistant.
    assert max(c for c, _ in levels) > 0.005
    assert max(a for _, a in levels[3:]) < 1e-4
    page.click("[data-side=caller][data-mode=solo]")
    assert player.get_attribute("data-gain-assistant") == "1"
    page.click("[data-side=assistant][data-mode=mute]")
    assert player.get_attribute("data-gain-assistant") == "0"
    assert player.get_attribute("data-gain-caller") == "1"
    context.close()


def test_download_gives_the_stored_file(seeded: Seeded, browser: Any) -> None:
    context, page, _ = _open_panel(browser, seeded, accept_downloads=True)
    with page.expect_download() as info:
        page.click("[data-download]")
    download = info.value
    assert download.suggested_filename == f"{seeded.call_id}.mp3"
    data = Path(download.path()).read_bytes()
    assert hashlib.sha256(data).hexdigest() == seeded.speech.sha256
    context.close()


def test_service_worker_and_offline_shell(seeded: Seeded, browser: Any) -> None:
    context, page, _ = _open_panel(browser, seeded)
    manifest = page.evaluate("() => fetch('/manifest.webmanifest').then(r => r.json())")
    assert manifest["display"] == "standalone"
    assert manifest["start_url"] == "/calls"
    assert {i["sizes"] for i in manifest["icons"]} == {"192x192", "512x512"}
    assert any(i.get("purpose") == "maskable" for i in manifest["icons"])
    page.wait_for_function(
        "() => navigator.serviceWorker.ready.then(r => !!r.active)", timeout=15000
    )
    page.wait_for_function(
        "() => caches.open('talkturo-shell-v1').then(c => c.match('/offline')).then(r => !!r)",
        timeout=15000,
    )
    # No recording or peaks in the SW's cache.
    cached = page.evaluate(
        "() => caches.open('talkturo-shell-v1').then(c => c.keys()).then(ks => ks.map(k => k.url))"
    )
    assert not any(".mp3" in u or "peaks" in u for u in cached)
    context.set_offline(True)
    page.goto(f"{seeded.url}/calls")
    assert page.locator("[data-offline]").is_visible()
    assert "You are offline" in page.content()
    # The shell's stylesheet came from the cache: the card is styled.
    radius = page.evaluate(
        "() => getComputedStyle(document.querySelector('.login-card')).borderRadius"
    )
    assert radius == "10px"
    context.set_offline(False)
    context.close()


def test_player_modules_come_in_one_round_trip(seeded: Seeded, browser: Any) -> None:
    # Every module of the player's import graph is preloaded by the page, none found only by
    # an import (each import level would cost one more round trip on a slow link).
    context, page, _ = _open_panel(browser, seeded)
    graph = page.evaluate(
        """async () => {
          const seen = new Set();
          const walk = async (url) => {
            if (seen.has(url)) return;
            seen.add(url);
            const text = await (await fetch(url)).text();
            for (const m of text.matchAll(/from\\s+["'](\\.[^"']+)["']/g)) {
              await walk(new URL(m[1], url).href);
            }
          };
          await walk(new URL('/static/js/player/index.js', location.href).href);
          const preloaded = Array.from(document.querySelectorAll('link[rel=modulepreload]'))
            .map(l => l.href);
          return [Array.from(seen).sort(), preloaded.sort()];
        }"""
    )
    imported, preloaded = graph
    assert len(imported) >= 7, imported
    assert set(imported) <= set(preloaded), set(imported) - set(preloaded)
    context.close()


def test_a_seek_far_past_the_stream_fetches_from_there(seeded: Seeded, browser: Any) -> None:
    duration = seeded.speech.duration_ms / 1000
    assert duration > 15, "the seeded call must outlast the head and the far-ahead margin"
    context, page, _ = _open_panel(browser, seeded)
    # The rest of the stream never arrives (a slow link): only the first 8 KB play.
    stalled: list[Any] = []
    page.route(
        "**/recording.mp3*",
        lambda route: (
            stalled.append(route)
            if route.request.headers.get("range", "").startswith("bytes=8192-")
            else route.continue_()
        ),
    )
    page.click("[data-play]")
    audio = "document.querySelector('[data-player] audio')"
    page.wait_for_function(f"() => !{audio}.paused && {audio}.src.startsWith('blob:')")
    target = duration - 3
    page.evaluate(
        "ms => document.dispatchEvent(new CustomEvent('talkturo:seek', {detail: {ms}}))",
        int(target * 1000),
    )
    # The player leaves the stream for the signed URL and plays from the target at once.
    page.wait_for_function(
        "() => document.querySelector('[data-player]').dataset.streaming === '0'", timeout=10000
    )
    page.wait_for_function(
        f"t => !{audio}.paused && {audio}.currentTime > t", arg=target, timeout=10000
    )
    assert not page.evaluate(f"() => {audio}.src.startsWith('blob:')")
    context.close()
