"""In Chromium: another origin cannot frame the dashboard, and no page breaks its own CSP."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from tests.browser.conftest import sign_in
from tests.browser.test_player import Seeded, seeded  # noqa: F401
from tests.conftest import free_port

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def _sign_in(page: Any, s: Seeded) -> None:
    sign_in(page, s.url, s.email)


@pytest.fixture
def framing_site(seeded: Seeded) -> Iterator[str]:  # noqa: F811
    """A page on another port of the same host (same site, other origin) that frames
    /assistants, as the attack did."""
    html = (
        "<!doctype html><title>other</title>"
        f'<iframe id="victim" src="{seeded.url}/assistants" width="800" height="600"></iframe>'
    ).encode()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(html)))
            self.end_headers()
            self.wfile.write(html)

        def log_message(self, *args: Any) -> None:
            pass

    port = free_port()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{port}/"
    server.shutdown()
    server.server_close()


def test_another_origin_cannot_frame_assistants(
    seeded: Seeded,  # noqa: F811
    framing_site: str,
    browser: Any,
) -> None:
    context = browser.new_context()
    page = context.new_page()
    _sign_in(page, seeded)
    # Signed in: the page itself shows the switches.
    page.goto(f"{seeded.url}/assistants")
    assert page.locator("h1").first.inner_text().startswith("Assistants")
    console: list[str] = []
    page.on("console", lambda m: console.append(m.text))
    page.goto(framing_site)
    page.wait_for_timeout(1500)
    framed = [f for f in page.frames if f is not page.main_frame]
    assert framed, "the iframe exists"
    for frame in framed:
        # Chromium replaces a refused frame with its own error page: no form, no switch.
        assert frame.locator("form").count() == 0, frame.url
        assert frame.locator("[name=enabled]").count() == 0
    assert any("frame-ancestors" in line for line in console), console
    context.close()


def test_pages_load_with_no_csp_violation(seeded: Seeded, browser: Any) -> None:  # noqa: F811
    context = browser.new_context()
    page = context.new_page()
    violations: list[str] = []
    page.on(
        "console",
        lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None,
    )
    page.goto(f"{seeded.url}/login")
    page.wait_for_load_state("networkidle")
    _sign_in(page, seeded)
    page.wait_for_load_state("networkidle")
    page.goto(f"{seeded.url}/calls/{seeded.call_id}")
    page.wait_for_selector("[data-player][data-painted='1']", timeout=30000)
    # The player plays (its script and the MP3 are allowed).
    page.keyboard.press("Escape")
    for path in (
        "/assistants",
        "/settings/storage",
        "/settings/api-keys",
        "/settings/password",
        "/offline",
    ):
        page.goto(f"{seeded.url}{path}")
        page.wait_for_load_state("networkidle")
    # An HTMX swap (filter as you type) brings fragments in: still nothing refused.
    page.goto(f"{seeded.url}/calls")
    page.fill("#f-q", "zzz")
    page.wait_for_url("**/calls?q=zzz**")
    page.wait_for_load_state("networkidle")
    assert violations == []
    # htmx kept its indicator style out of the page.
    assert page.locator("style").count() == 0
    context.close()
