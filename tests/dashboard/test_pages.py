"""Call Logs, Call Detail and Assistants over HTTP: pages, HTMX fragments, API list."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from tests.conftest import Tenant, login, post_call
from tests.dashboard._data import Seed, add_analysis, add_messages, make_call, seed
from web.models import Assistant, Call, CallStatus, RecordingStatus

HX = {"HX-Request": "true"}


@pytest.fixture
async def data(client: AsyncTestClient[Any], tenant: Tenant, other_tenant: Tenant) -> Seed:
    """Org A's known calls (see _data.seed) and org B's look-alike."""
    return await seed(tenant.org, other_tenant.org)


async def _switch(
    client: AsyncTestClient[Any], data: Seed, setting: str, enabled: str, token: str
) -> Any:
    """Flip one of Sales line's switches (``recording`` or ``dtmf``) as the HTMX form does."""
    return await client.post(
        f"/assistants/{data.sales.id}/{setting}",
        data={"enabled": enabled},
        headers={**HX, "X-CSRFToken": token},
    )


async def _refusals(
    client: AsyncTestClient[Any],
    tenant: Tenant,
    data: Seed,
    setting: str,
    token: str,
    bad: str,
    agent_value: str,
) -> tuple[str, str]:
    """The switch refuses ``bad`` (400); then, signed in as the agent: the assistants page
    it sees, and the text of its refused attempt (403) to set ``agent_value``."""
    resp = await _switch(client, data, setting, bad, token)
    assert resp.status_code == 400
    assert "enabled must be true or false" in resp.text
    client.cookies.clear()
    token = await login(client, tenant.agent.email)
    page = await client.get("/assistants")
    refused = await _switch(client, data, setting, agent_value, token)
    assert refused.status_code == 403
    return page.text, refused.text


def row_ids(html: str) -> list[str]:
    return re.findall(r'<tr class="call-row[^"]*" data-call-id="([0-9a-f-]+)"', html)


async def test_full_page_and_rows_fragment(
    client: AsyncTestClient[Any], tenant: Tenant, data: Seed, db_backend: str
) -> None:
    await login(client, tenant.agent.email)
    page = await client.get("/calls?status=completed")
    assert page.status_code == 200
    assert "<html" in page.text
    assert 'id="filters"' in page.text
    assert '<nav id="sidebar"' in page.text
    assert 'value="completed" selected' in page.text
    expected = [str(data.calls[n].id) for n in ("refund", "booking", "old")]
    assert row_ids(page.text) == expected
    assert "hx-request" in page.headers["vary"].lower()

    frag = await client.get("/calls?status=completed", headers=HX)
    assert frag.status_code == 200
    assert "<html" not in frag.text
    assert 'id="filters"' not in frag.text
    assert row_ids(frag.text) == expected
    # The same URL without JavaScript renders the same rows.
    assert row_ids(frag.text) == row_ids(page.text)


async def test_rows_show_what_a_call_is(
    client: AsyncTestClient[Any], tenant: Tenant, data: Seed
) -> None:
    await login(client, tenant.agent.email)
    html = (await client.get(f"/calls?q={data.calls['booking'].id}", headers=HX)).text
    assert row_ids(html) == [str(data.calls["booking"].id)]
    for text in (
        "2025-03-10 11:40",
        "Sales line",
        "outbound",
        "+1 415-555-0100",
        "+44 20 7946 0958",
    ):
        assert text in html
    assert "5:00" in html  # 300 s
    assert 'aria-label="Has a recording"' in html
    no_rec = (await client.get(f"/calls?q={data.calls['busy'].id}", headers=HX)).text
    assert "Has a recording" not in no_rec
    assert "busy" in no_rec


async def test_other_orgs_calls_never_listed(
    client: AsyncTestClient[Any], tenant: Tenant, data: Seed
) -> None:
    await login(client, tenant.admin.email)
    html = (await client.get("/calls?q=refund")).text
    assert str(data.foreign.id) not in html


@pytest.mark.parametrize(
    ("query", "field", "words"),
    [
        ("status=done", "status", "must be one of"),
        ("date_from=yesterday", "date_from", "use a date"),
        ("min_duration=abc", "min_duration", "whole number"),
        ("cursor=%%%", "cursor", "page link is not valid"),
        ("date_from=2025-03-10&date_to=2025-03-01", "date_to", "before the start"),
    ],
)
async def test_bad_filter_is_said_in_the_filter_bar(
    client: AsyncTestClient[Any], tenant: Tenant, data: Seed, query: str, field: str, words: str
) -> None:
    await login(client, tenant.agent.email)
    page = await client.get(f"/calls?{query}")
    assert page.status_code == 400
    bar = page.text.split('id="filters"', 1)[1].split("</form>", 1)[0]
    assert 'id="filter-message"' in bar
    assert words in bar
    if field != "cursor":
        assert re.search(rf'id="f-{field}"[^>]*aria-invalid="true"', page.text, re.S)
    assert row_ids(page.text) == []
    frag = await client.get(f"/calls?{query}", headers=HX)
    assert frag.status_code == 400
    assert 'id="filter-message" class="filter-message" role="alert" hx-swap-oob="true"' in frag.text
    assert words in frag.text


async def test_cursor_pages_in_the_page(
    client: AsyncTestClient[Any], tenant: Tenant, data: Seed, db_backend: str
) -> None:
    asst = await Assistant.create(org=tenant.org, name="Bulk")
    for i in range(55):
        await make_call(tenant.org, asst, minutes_ago=100 + i)
    await login(client, tenant.agent.email)
    first = await client.get(f"/calls?assistant={asst.id}")
    assert len(row_ids(first.text)) == 50
    older = re.search(r'href="(/calls\?[^"]*cursor=[^"]+)"[^>]*rel="next"', first.text)
    assert older, "a link to older calls"
    link = older.group(1).replace("&amp;", "&")
    assert f"assistant={asst.id}" in link
    second = await client.get(link, headers=HX)
    assert len(row_ids(second.text)) == 5
    assert not set(row_ids(second.text)) & set(row_ids(first.text))
    assert "Newest calls" in second.text
    assert 'rel="next"' not in second.text


async def test_detail_fragment_and_full_page(
    client: AsyncTestClient[Any], tenant: Tenant, data: Seed, db_backend: str
) -> None:
    call = data.calls["refund"]
    await add_messages(
        call,
        [("user", "I would like a refund.", 400), ("assistant", "Sure, on its way.", 2600)],
    )
    await add_analysis(
        call, "Refund issued.", True, {"order_id": "A-1001", "items": [1, 2], "amount": 12.5}
    )
    await login(client, tenant.agent.email)
    frag = await client.get(f"/calls/{call.id}?status=completed", headers=HX)
    assert frag.status_code == 200
    html = frag.text
    assert "<html" not in html
    assert 'id="filters"' not in html
    # The player comes first, above the tabs.
    assert html.index('class="player') < html.index('role="tablist"')
    assert "Hello, I would like a refund for my order." in html
    assert 'data-seek-ms="400"' in html
    assert 'data-seek-ms="2600"' in html
    assert "0:02" in html
    assert "Caller" in html
    assert "Assistant" in html
    assert "Refund issued." in html
    assert "Successful" in html
    assert "<dt>order_id</dt>" in html
    assert "A-1001" in html
    assert "&#34;items&#34;" not in html
    assert "[\n  1,\n  2\n]" in html
    # Closing goes back to the list with its filters.
    assert 'href="/calls?status=completed"' in html

    page = await client.get(f"/calls/{call.id}?status=completed")
    assert page.status_code == 200
    assert 'id="filters"' in page.text
    assert 'id="panel"' in page.text
    assert 'id="panel" class="panel" aria-label="Call detail" hidden' not in page.text
    assert "I would like a refund." in page.text
    assert row_ids(page.text) == [str(data.calls[n].id) for n in ("refund", "booking", "old")]
    assert re.search(rf'class="call-row is-open" data-call-id="{call.id}"', page.text)


async def test_detail_of_missing_or_foreign_call_is_404(
    client: AsyncTestClient[Any], tenant: Tenant, data: Seed
) -> None:
    await login(client, tenant.admin.email)
    for ident in (data.foreign.id, uuid.uuid4(), "not-a-uuid"):
        resp = await client.get(f"/calls/{ident}")
        assert resp.status_code == 404
        assert "No such call." in resp.text


@pytest.mark.parametrize(
    ("kind", "words"),
    [
        ("off", "recording was turned off for Support desk when the call started"),
        ("busy", "the call ended before any audio (busy)"),
        ("noanswer", "the call ended before any audio (no answer)"),
        ("processing", "being processed, usually ready within seconds"),
        ("failed", "The recording failed"),
        ("purged", "deleted by the retention policy on 2025-04-09"),
        ("deleted", "The recording was deleted on 2025-03-11"),
        ("available", "Purges on 2026-03-10"),
        ("forever", "Kept until deleted"),
        ("live", "Recording now"),
        ("retrying", "Storage has not taken the recording yet (3 attempts); it is retried"),
        ("host-away", "Waiting for the server that recorded this call"),
        ("live-host-away", "Waiting for the server that recorded this call"),
    ],
)
async def test_every_recording_state_in_words(
    client: AsyncTestClient[Any], tenant: Tenant, data: Seed, kind: str, words: str
) -> None:
    day = datetime(2025, 4, 9, 3, tzinfo=UTC)
    fields: dict[str, Any] = {}
    rec: RecordingStatus | None = None
    status = CallStatus.COMPLETED
    enabled = True
    asst = data.sales
    if kind == "off":
        enabled, asst = False, data.support
    elif kind == "busy":
        status = CallStatus.BUSY
    elif kind == "noanswer":
        status = CallStatus.NO_ANSWER
    elif kind == "live":
        rec, status = RecordingStatus.RECORDING, CallStatus.IN_PROGRESS
        fields = {"claimed_until": datetime.now(UTC) + timedelta(seconds=30)}
    elif kind == "live-host-away":
        # The host died mid-call and never came back: its claim ran out long ago.
        rec, status = RecordingStatus.RECORDING, CallStatus.IN_PROGRESS
        fields = {"claimed_until": datetime.now(UTC) - timedelta(minutes=30)}
    elif kind == "retrying":
        rec = RecordingStatus.PROCESSING
        fields = {
            "upload_attempts": 3,
            "next_attempt_at": datetime.now(UTC) + timedelta(seconds=4),
            "last_error": "storage unavailable",
        }
    elif kind == "host-away":
        rec = RecordingStatus.PROCESSING
        fields = {"upload_attempts": 2, "next_attempt_at": datetime.now(UTC) - timedelta(hours=1)}
    elif kind == "purged":
        rec, fields = RecordingStatus.PURGED, {"purged_at": day}
    elif kind == "deleted":
        rec, fields = RecordingStatus.DELETED, {"deleted_at": datetime(2025, 3, 11, tzinfo=UTC)}
    elif kind == "available":
        rec = RecordingStatus.AVAILABLE
        fields = {"purge_at": datetime(2026, 3, 10, tzinfo=UTC), "duration_ms": 60000}
    elif kind == "forever":
        rec, fields = RecordingStatus.AVAILABLE, {"duration_ms": 60000}
    else:
        rec = RecordingStatus(kind)
    call: Call = await make_call(
        tenant.org, asst, status=status, recording=rec, recording_enabled=enabled, **fields
    )
    await login(client, tenant.agent.email)
    html = (await client.get(f"/calls/{call.id}", headers=HX)).text
    state = re.search(r'<p class="recording-state[^>]*>(.*?)</p>', html, re.S)
    assert state, html
    text = re.sub(r"<[^>]+>", "", state.group(1))
    assert words in text
    if kind in {"processing", "live", "retrying", "host-away", "live-host-away"}:
        # It refreshes itself until the recording is ready.
        assert 'hx-trigger="every 5s"' in html


async def test_assistants_admin_toggles_agent_reads(
    client: AsyncTestClient[Any], tenant: Tenant, data: Seed, db_backend: str
) -> None:
    # A call already running keeps the setting it started with.
    running = await post_call(client, tenant, str(data.sales.id), from_number="+1 415 555 0199")
    assert running.json()["recording_enabled"] is True

    token = await login(client, tenant.admin.email)
    page = await client.get("/assistants")
    assert page.status_code == 200
    assert "calls already running keep the setting" in page.text
    assert 'role="switch" aria-checked="true"' in page.text  # Sales line
    assert 'role="switch" aria-checked="false"' in page.text  # Support desk

    resp = await _switch(client, data, "recording", "false", token)
    assert resp.status_code == 200
    assert resp.text.lstrip().startswith(f'<tr id="assistant-{data.sales.id}"')
    assert 'aria-checked="false"' in resp.text
    assert 'hx-swap-oob="true"' in resp.text
    assert "Recording is now off for Sales line" in resp.text
    assert (await Assistant.get(id=data.sales.id)).recording_enabled is False
    call = await client.get(f"/api/v1/calls/{running.json()['id']}", headers=tenant.api())
    assert call.json()["recording_enabled"] is True

    # Without JavaScript the form posts and gets the whole page back.
    full = await client.post(
        f"/assistants/{data.sales.id}/recording",
        data={"enabled": "true", "_csrf_token": token},
    )
    assert full.status_code == 200
    assert "<html" in full.text
    assert "Recording is now on for Sales line" in full.text

    page, refused = await _refusals(client, tenant, data, "recording", token, "maybe", "false")
    assert 'role="switch"' not in page
    assert "Only admins can turn recording" in page
    assert "Only admins can turn recording on or off." in refused
    assert (await Assistant.get(id=data.sales.id)).recording_enabled is True


async def test_api_list_shares_the_filters(
    client: AsyncTestClient[Any], tenant: Tenant, data: Seed, db_backend: str
) -> None:
    resp = await client.get(
        "/api/v1/calls", params={"q": "refund", "limit": "1"}, headers=tenant.api("agent")
    )
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert [i["id"] for i in body["items"]] == [str(data.calls["refund"].id)]
    item = body["items"][0]
    assert set(item) >= {"id", "assistant_id", "direction", "from_number", "status", "recording"}
    assert item["recording"]["status"] == "available"
    assert body["next_cursor"]
    rest = await client.get(
        "/api/v1/calls",
        params={"q": "refund", "cursor": body["next_cursor"]},
        headers=tenant.api(),
    )
    assert [i["id"] for i in rest.json()["items"]] == [str(data.calls["old"].id)]
    assert rest.json()["next_cursor"] is None
    one = await client.get(f"/api/v1/calls/{data.calls['old'].id}", headers=tenant.api())
    assert one.json() == rest.json()["items"][0]


@pytest.mark.parametrize(
    "query", ["status=done", "limit=0", "limit=x", "cursor=zz", "date_to=2025-13-01"]
)
async def test_api_list_bad_filters_are_400(
    client: AsyncTestClient[Any], tenant: Tenant, query: str
) -> None:
    resp = await client.get(f"/api/v1/calls?{query}", headers=tenant.api())
    assert resp.status_code == 400
    assert resp.json()["status_code"] == 400
    assert resp.json()["detail"]


async def test_assistants_keypad_tone_switch(
    client: AsyncTestClient[Any], tenant: Tenant, data: Seed, db_backend: str
) -> None:
    """Admins switch keypad-tone removal per assistant; new calls take it, agents only read it."""
    token = await login(client, tenant.admin.email)
    page = await client.get("/assistants")
    assert f'action="/assistants/{data.sales.id}/dtmf"' in page.text
    assert "Remove keypad tones from the recordings of Sales line" in page.text

    resp = await _switch(client, data, "dtmf", "false", token)
    assert resp.status_code == 200
    assert resp.text.lstrip().startswith(f'<tr id="assistant-{data.sales.id}"')
    assert "Keypad tones are now kept in the recordings of Sales line" in resp.text
    sales = await Assistant.get(id=data.sales.id)
    assert sales.redact_dtmf is False
    assert sales.recording_enabled is True
    api = await client.get(f"/api/v1/assistants/{data.sales.id}", headers=tenant.api())
    assert api.json()["redact_dtmf"] is False
    call = await post_call(client, tenant, str(data.sales.id), from_number="+1 415 555 0199")
    assert (await Call.get(id=call.json()["id"])).redact_dtmf is False

    page, refused = await _refusals(client, tenant, data, "dtmf", token, "sometimes", "true")
    assert "/dtmf" not in page
    assert "Tones kept" in page
    assert "Only admins can change keypad-tone removal." in refused
    assert (await Assistant.get(id=data.sales.id)).redact_dtmf is False
