"""Headless Chromium (the system's, never a downloaded one) for the browser tests."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

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
