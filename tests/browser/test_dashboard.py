"""Call Logs, Call Detail and Assistants in real Chromium against a real ``talkturo serve``:
filter as you type, open a call from the keyboard, close it, go back, flip a recording
switch, and no serious or critical axe-core violation on any of the three screens."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import seeded_server, sign_in
from tests.conftest import ROOT, make_tenant
from tests.dashboard._data import add_analysis, add_messages, seed

pytestmark = [pytest.mark.browser, pytest.mark.slow]

AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"


@dataclass
class Site:
    url: str
    admin: str
    agent: str
    calls: dict[str, str]
    sales_id: str


async def _seed(_: Path) -> tuple[str, str, dict[str, str], str]:
    a = await make_tenant("Org Browser")
    b = await make_tenant("Org Other")
    s = await seed(a.org, b.org)
    refund = s.calls["refund"]
    await add_messages(
        refund, [("user", "I would like a refund.", 400), ("assistant", "Sure.", 2600)]
    )
    await add_analysis(refund, "Refund issued.", True, {"order_id": "A-1001"})
    ids = {name: str(c.id) for name, c in s.calls.items()}
    return a.admin.email, a.agent.email, ids, str(s.sales.id)


@pytest.fixture
def site(tmp_path: Path, db_url: str, server_factory: Any) -> Site:
    """A running server over the hand-built calls of tests/dashboard/_data.py."""
    url, (admin, agent, ids, sales) = seeded_server(tmp_path, db_url, server_factory, _seed)
    return Site(url, admin, agent, ids, sales)


def _signed_in(browser: Any, site: Site, email: str, **context_args: Any) -> Any:
    page = browser.new_context(viewport={"width": 1280, "height": 900}, **context_args).new_page()
    sign_in(page, site.url, email)
    return page


def _axe_serious(page: Any) -> list[dict[str, Any]]:
    """axe-core's serious and critical violations on the page as it is now."""
    # Evaluated, not added as a <script>: the page's CSP refuses inline script.
    page.evaluate(AXE.read_text())
    violations: list[dict[str, Any]] = page.evaluate(
        """async () => (await axe.run(document, {resultTypes: ['violations']})).violations
             .map(v => ({id: v.id, impact: v.impact,
                         nodes: v.nodes.slice(0, 3).map(n => n.target.join(' '))}))"""
    )
    return [v for v in violations if v["impact"] in {"serious", "critical"}]


def _row_ids(page: Any) -> list[str]:
    return list(page.eval_on_selector_all("tr.call-row", "rs => rs.map(r => r.dataset.callId)"))


def test_filter_open_close_and_back(site: Site, browser: Any) -> None:
    page = _signed_in(browser, site, site.agent)
    page.goto(f"{site.url}/calls")
    assert page.title().startswith("Call Logs")
    assert _axe_serious(page) == []

    page.fill("#f-q", "refund")
    page.wait_for_url(re.compile(r"/calls\?q=refund$"))
    page.wait_for_function("document.querySelectorAll('tr.call-row').length === 2")
    assert _row_ids(page) == [site.calls["refund"], site.calls["old"]]

    page.select_option("#f-status", "completed")
    page.wait_for_url(re.compile(r"/calls\?q=refund&status=completed$"))
    page.fill("#f-date_from", "2025-03-01")
    page.wait_for_url(re.compile(r"date_from=2025-03-01"))
    page.wait_for_function("document.querySelectorAll('tr.call-row').length === 1")
    assert _row_ids(page) == [site.calls["refund"]]
    list_url = page.url

    # Keyboard: focus the row, Enter opens the panel beside the list.
    page.focus(f'tr[data-call-id="{site.calls["refund"]}"]')
    page.keyboard.press("Enter")
    page.wait_for_selector("#panel [data-detail]")
    page.wait_for_url(re.compile(rf"/calls/{site.calls['refund']}\?"))
    assert "q=refund" in page.url
    assert "status=completed" in page.url
    assert page.evaluate("document.activeElement.id") == "detail-title"
    assert page.is_visible("#tp-transcript")
    assert page.is_hidden("#tp-messages")
    assert _axe_serious(page) == []

    page.click("#tab-messages")
    assert page.is_visible("#tp-messages")
    page.keyboard.press("ArrowRight")
    assert page.evaluate("document.activeElement.id") == "tab-analysis"
    assert page.is_visible("#tp-analysis")
    assert "A-1001" in page.inner_text("#tp-analysis")

    # Escape closes: the URL is the list's again and focus is back on the row.
    page.focus("#detail-title")
    page.keyboard.press("Escape")
    page.wait_for_url(list_url)
    page.wait_for_selector("#panel", state="hidden")
    page.wait_for_function(
        f"document.activeElement && document.activeElement.dataset.callId === "
        f"'{site.calls['refund']}'"
    )

    # Open with a click, then the browser's Back: the list with its filters.
    page.click(f'tr[data-call-id="{site.calls["refund"]}"] td.phone >> nth=0')
    page.wait_for_selector("#panel [data-detail]")
    page.go_back()
    page.wait_for_url(list_url)
    page.wait_for_selector("#panel", state="hidden")
    assert page.input_value("#f-q") == "refund"
    assert page.input_value("#f-status") == "completed"
    assert page.input_value("#f-date_from") == "2025-03-01"
    assert _row_ids(page) == [site.calls["refund"]]

    # A bad value is said next to the filters, not a crash.
    page.fill("#f-min_duration", "-5")
    page.wait_for_selector("#filter-message li")
    assert "Minimum duration" in page.inner_text("#filter-message")

    # The same URL loaded whole, without JavaScript, shows the same rows.
    plain = _signed_in(browser, site, site.agent, java_script_enabled=False)
    plain.goto(list_url)
    assert _row_ids(plain) == [site.calls["refund"]]
    plain.goto(f"{site.url}/calls/{site.calls['refund']}")
    assert "I would like a refund." in plain.content()


def test_assistants_switch_admin_and_agent(site: Site, browser: Any) -> None:
    page = _signed_in(browser, site, site.admin)
    page.goto(f"{site.url}/assistants")
    assert page.title().startswith("Assistants")
    assert _axe_serious(page) == []
    switch = f'#assistant-{site.sales_id} [role="switch"]'
    assert page.get_attribute(switch, "aria-checked") == "true"
    page.click(switch)
    page.wait_for_selector(f'{switch}[aria-checked="false"]')
    assert "Recording is now off for Sales line" in page.inner_text("#toggle-status")
    assert "already running" in page.inner_text("#toggle-status")
    page.reload()
    assert page.get_attribute(switch, "aria-checked") == "false"

    agent = _signed_in(browser, site, site.agent)
    agent.goto(f"{site.url}/assistants")
    assert agent.query_selector('[role="switch"]') is None
    assert "recording off" in agent.inner_text(f"#assistant-{site.sales_id}").lower()
    assert _axe_serious(agent) == []
    refused = agent.evaluate(
        """async (url) => {
             const token = document.querySelector('meta[name=csrf-token]').content;
             const r = await fetch(url, {method: 'POST', headers: {'X-CSRFToken': token,
               'HX-Request': 'true', 'Content-Type': 'application/x-www-form-urlencoded'},
               body: 'enabled=true'});
             return {status: r.status, text: await r.text()};
           }""",
        f"/assistants/{site.sales_id}/recording",
    )
    assert refused["status"] == 403
    assert "Only admins can turn recording on or off." in refused["text"]
    page.reload()
    assert page.get_attribute(switch, "aria-checked") == "false"


def test_narrow_screen_menu_and_panel_over_the_list(site: Site, browser: Any) -> None:
    page = _signed_in(browser, site, site.agent)
    page.set_viewport_size({"width": 390, "height": 800})
    page.goto(f"{site.url}/calls")
    # The sidebar is folded away (and out of the tab order) until the menu opens it.
    assert page.is_hidden("#sidebar a[href='/assistants']")
    page.click("[data-menu]")
    page.wait_for_selector("#sidebar a[href='/assistants']", state="visible")
    assert page.get_attribute("[data-menu]", "aria-expanded") == "true"
    box = page.locator("[data-menu]").bounding_box()
    assert box["height"] >= 44
    page.keyboard.press("Escape")
    page.click(f'tr[data-call-id="{site.calls["booking"]}"] td.phone >> nth=0')
    page.wait_for_selector("#panel [data-detail]")
    panel = page.locator("#panel").bounding_box()
    assert panel["width"] >= 380
    assert panel["x"] == 0
    close = page.locator("[data-close-panel]").bounding_box()
    assert close["width"] >= 44
    assert close["height"] >= 44
