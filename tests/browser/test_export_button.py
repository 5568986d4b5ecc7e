"""Export on Call Logs in real Chromium against a real ``talkturo serve``: after filtering
as you type, the download holds exactly the recordings the list shows; agents see no
Export."""

from __future__ import annotations

import json
import re
import zipfile
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from tests.browser.conftest import sign_in
from tests.conftest import in_thread, make_env, make_tenant
from tests.export.conftest import BASE_TIME, payload, store_call
from web.db import close_db, open_db
from web.models import Direction
from web.settings import load_settings
from web.storage import Storages

pytestmark = [pytest.mark.browser, pytest.mark.slow]


async def _seed(env: dict[str, str]) -> tuple[str, str, str, str]:
    settings = load_settings(env)
    await open_db(settings.database)
    try:
        tenant = await make_tenant("Org Export Button")
        async with Storages(settings) as storages:
            app = SimpleNamespace(state=SimpleNamespace(storages=storages))
            inbound = await store_call(app, tenant, payload(2048))
            outbound = await store_call(
                app, tenant, payload(4096), started_at=BASE_TIME, direction=Direction.OUTBOUND
            )
        return tenant.admin.email, tenant.agent.email, str(inbound.call.id), str(outbound.call.id)
    finally:
        await close_db()


def _signed_in(browser: Any, url: str, email: str) -> Any:
    page = browser.new_context(accept_downloads=True).new_page()
    sign_in(page, url, email)
    return page


def test_export_follows_the_filters(
    tmp_path: Path, db_url: str, server_factory: Any, browser: Any
) -> None:
    env = make_env(tmp_path / "data", db_url)
    admin, agent, inbound, outbound = in_thread(_seed(env))
    server = server_factory(env)

    page = _signed_in(browser, server.url, admin)
    page.goto(f"{server.url}/calls")
    page.select_option("#f-direction", "outbound")
    page.wait_for_url(re.compile(r"/calls\?direction=outbound$"))
    page.wait_for_function("document.querySelectorAll('tr.call-row').length === 1")
    assert page.get_attribute("#export-calls", "href") == "/calls/export?direction=outbound"
    with page.expect_download() as info:
        page.click("#export-calls")
    saved = tmp_path / "export.zip"
    info.value.save_as(saved)
    zf = zipfile.ZipFile(saved)
    assert [e["call_id"] for e in json.loads(zf.read("manifest.json"))] == [outbound]
    assert f"{inbound}.mp3" not in zf.namelist()

    page = _signed_in(browser, server.url, agent)
    page.goto(f"{server.url}/calls")
    assert page.locator("#export-calls").count() == 0
