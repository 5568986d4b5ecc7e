"""Headless Chromium (the system's, never a downloaded one) for the browser tests."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from tests.conftest import PASSWORD, in_thread, make_env
from tests.playback.conftest import SpeechRecording, make_speech_recording
from web.db import close_db, open_db
from web.settings import DatabaseSettings

T = TypeVar("T")

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    # The player's tests press play from scripts as well as by clicks.
    "--autoplay-policy=no-user-gesture-required",
]


@pytest.fixture
def browser() -> Iterator[Any]:
    """Headless Chromium, closed after the test."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture(scope="session")
def browser_speech(tmp_path_factory: pytest.TempPathFactory) -> SpeechRecording:
    """Real two-voice speech for the browser tests (made once)."""
    return make_speech_recording(tmp_path_factory.mktemp("browser-speech"))


def seeded_server(
    tmp_path: Path, db_url: str, server_factory: Any, seed: Callable[[Path], Awaitable[T]]
) -> tuple[str, T]:
    """Run ``seed(recordings folder)`` with the database open, then start a server over
    that data: (the server's URL, what ``seed`` returned)."""
    data = tmp_path / "data"

    async def run() -> T:
        await open_db(DatabaseSettings(db_url))
        try:
            return await seed(data / "recordings")
        finally:
            await close_db()

    result: T = in_thread(run())
    server = server_factory(make_env(data, db_url))
    return server.url, result


def touch_page(browser: Any, width: int, height: int, touch: bool) -> Any:
    """A page in a new context of ``width`` x ``height`` (a phone or tablet when ``touch`` and
    narrower than 1000 px); ``page.errors`` collects the page's uncaught errors."""
    context = browser.new_context(
        viewport={"width": width, "height": height},
        has_touch=touch,
        is_mobile=touch and width < 1000,
    )
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.errors = errors
    return page


def sign_in(page: Any, url: str, email: str) -> Any:
    """Sign ``email`` in on ``page`` through the login form of the server at ``url``;
    returns the page, on the calls list."""
    page.goto(f"{url}/login")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/calls**")
    return page
