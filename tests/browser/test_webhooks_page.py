"""Settings → Webhooks in real Chromium: add an endpoint, copy its secret once, no axe issue."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import seeded_server, sign_in
from tests.browser.test_dashboard import _axe_serious
from tests.conftest import make_tenant

pytestmark = [pytest.mark.browser, pytest.mark.slow]


async def _admin(_: Path) -> str:
    return (await make_tenant("Org Hooks")).admin.email


def test_add_an_endpoint_and_copy_its_secret(
    tmp_path: Path, db_url: str, server_factory: Any, browser: Any
) -> None:
    url, email = seeded_server(tmp_path, db_url, server_factory, _admin)
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=url)
    page = context.new_page()
    sign_in(page, url, email)

    page.goto(f"{url}/settings/webhooks")
    assert _axe_serious(page) == []
    page.fill("#hook-url", "https://8.8.8.8/hooks/talkturo")
    page.fill("#hook-description", "CRM")
    page.uncheck("input[value='recording.purged']")
    page.click("text=Add endpoint")
    secret = page.locator("[data-new-secret]")
    secret.wait_for()
    shown = secret.inner_text().strip()
    assert shown.startswith("whsec_")
    page.click("button[data-copy]")
    page.locator("[data-copy-state]", has_text="Copied").wait_for()
    assert page.evaluate("navigator.clipboard.readText()") == shown
    assert _axe_serious(page) == []

    page.reload()
    assert page.locator("[data-new-secret]").count() == 0
    assert shown not in page.content()
    assert "https://8.8.8.8/hooks/talkturo" in page.content()
    context.close()
