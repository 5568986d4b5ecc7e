"""Notes pinned to moments of a call, campaigns on calls, and the reviewer's preferences:
over the API (Bearer keys) and the dashboard (session), with org and author rules."""

from __future__ import annotations

import re
import uuid

import httpx
import pytest

from tests.conftest import Tenant, login, post_call
from web.models import User


async def _post_raw(
    client: httpx.AsyncClient, t: Tenant, assistant: str = "B", **extra: object
) -> httpx.Response:
    asst = await client.post(
        "/api/v1/assistants", json={"name": assistant, "recording_enabled": True}, headers=t.api()
    )
    return await post_call(client, t, asst.json()["id"], **extra)


async def _call(client: httpx.AsyncClient, t: Tenant, **extra: object) -> dict[str, object]:
    resp = await _post_raw(client, t, "Desk", **extra)
    assert resp.status_code == 201, resp.text
    body: dict[str, object] = resp.json()
    return body


async def test_notes_api_add_list_delete_and_author_rules(
    client: httpx.AsyncClient, tenant: Tenant, other_tenant: Tenant, db_backend: str
) -> None:
    call = await _call(client, tenant)
    url = f"/api/v1/calls/{call['id']}/notes"
    first = await client.post(
        url, json={"at_ms": 61_500, "text": " Refund promised "}, headers=tenant.api()
    )
    assert first.status_code == 201, first.text
    note = first.json()
    assert set(note) == {"id", "at_ms", "text", "author", "created_at"}
    assert note["at_ms"] == 61_500
    assert note["text"] == "Refund promised"
    assert note["author"].startswith("api key ")
    by_agent = await client.post(
        url, json={"at_ms": 1_000, "text": "Greeting"}, headers=tenant.api("agent")
    )
    assert by_agent.status_code == 201

    listed = await client.get(url, headers=tenant.api("agent"))
    assert listed.status_code == 200
    assert [n["text"] for n in listed.json()["items"]] == ["Greeting", "Refund promised"]

    # Another org: the call does not exist for it, for reading, adding and deleting alike.
    for method, path, body in (
        ("GET", url, None),
        ("POST", url, {"at_ms": 0, "text": "x"}),
        ("DELETE", f"{url}/{note['id']}", None),
    ):
        resp = await client.request(method, path, json=body, headers=other_tenant.api())
        assert resp.status_code == 404, (method, resp.text)
        assert resp.json()["detail"] == "No such call."

    # The agent key did not write the admin's note: 403; its own note it may delete.
    refused = await client.delete(f"{url}/{note['id']}", headers=tenant.api("agent"))
    assert refused.status_code == 403
    assert "author or an admin" in refused.json()["detail"]
    own = await client.delete(f"{url}/{by_agent.json()['id']}", headers=tenant.api("agent"))
    assert own.status_code == 204
    # An admin deletes anyone's note; a second delete finds nothing.
    again = await client.post(
        url, json={"at_ms": 5, "text": "agent again"}, headers=tenant.api("agent")
    )
    assert (
        await client.delete(f"{url}/{again.json()['id']}", headers=tenant.api())
    ).status_code == 204
    assert (await client.delete(f"{url}/{note['id']}", headers=tenant.api())).status_code == 204
    gone = await client.delete(f"{url}/{note['id']}", headers=tenant.api())
    assert gone.status_code == 404
    assert (await client.get(url, headers=tenant.api())).json()["items"] == []
    assert (await client.get(url)).status_code == 401


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"at_ms": -1, "text": "x"}, "at_ms"),
        ({"at_ms": 10**18, "text": "x"}, "at_ms"),
        ({"at_ms": 0, "text": "   "}, "empty"),
        ({"at_ms": 0, "text": "x" * 2001}, "2000"),
        ({"at_ms": 0, "text": "a\x00b"}, "NUL"),
        ({"at_ms": "soon", "text": "x"}, "at_ms"),
        ({"at_ms": 0}, "text"),
    ],
)
async def test_notes_api_bad_input(
    client: httpx.AsyncClient, tenant: Tenant, body: dict[str, object], words: str
) -> None:
    call = await _call(client, tenant)
    resp = await client.post(f"/api/v1/calls/{call['id']}/notes", json=body, headers=tenant.api())
    assert resp.status_code == 400, resp.text
    assert words in resp.json()["detail"]


async def test_note_after_the_end_of_an_ended_call_is_refused(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    call = await _call(client, tenant, started_at="2025-03-01T10:00:00Z")
    await client.post(
        f"/api/v1/calls/{call['id']}/end",
        json={"status": "completed", "ended_at": "2025-03-01T10:01:00Z"},
        headers=tenant.api(),
    )
    url = f"/api/v1/calls/{call['id']}/notes"
    late = await client.post(url, json={"at_ms": 60_001, "text": "x"}, headers=tenant.api())
    assert late.status_code == 400
    assert "after the end" in late.json()["detail"]
    assert (
        await client.post(url, json={"at_ms": 60_000, "text": "x"}, headers=tenant.api())
    ).status_code == 201


async def test_campaign_on_calls_and_as_a_filter(
    client: httpx.AsyncClient, tenant: Tenant, other_tenant: Tenant, db_backend: str
) -> None:
    spring = await _call(client, tenant, campaign="spring-renewals")
    plain = await _call(client, tenant)
    await _call(client, other_tenant, campaign="spring-renewals")
    assert spring["campaign"] == "spring-renewals"
    assert plain["campaign"] is None
    read = await client.get(f"/api/v1/calls/{spring['id']}", headers=tenant.api("agent"))
    assert read.json()["campaign"] == "spring-renewals"

    listed = await client.get("/api/v1/calls?campaign=spring-renewals", headers=tenant.api())
    assert [c["id"] for c in listed.json()["items"]] == [spring["id"]]
    none = await client.get("/api/v1/calls?campaign=autumn", headers=tenant.api())
    assert none.json()["items"] == []

    too_long = await _post_raw(client, tenant, campaign="x" * 101)
    assert too_long.status_code == 400
    assert "100" in too_long.json()["detail"]
    wrong_type = await _post_raw(client, tenant, campaign=5)
    assert wrong_type.status_code == 400
    long_filter = await client.get("/api/v1/calls?campaign=" + "x" * 101, headers=tenant.api())
    assert long_filter.status_code == 400

    await login(client, tenant.agent.email)
    page = await client.get("/calls?campaign=spring-renewals", headers={"HX-Request": "true"})
    assert re.findall(r'data-call-id="([0-9a-f-]+)"', page.text) == [spring["id"]]
    assert "spring-renewals" in page.text


async def test_from_and_to_filters_and_call_id_column(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    a = await _call(client, tenant)
    b = await _post_raw(client, tenant, from_number="+1 212 555 7000", to_number="+1 415 555 0101")
    await login(client, tenant.agent.email)
    by_from = await client.get("/calls?from_number=415-555-0101", headers={"HX-Request": "true"})
    assert re.findall(r'data-call-id="([0-9a-f-]+)"', by_from.text) == [a["id"]]
    by_to = await client.get("/calls?to_number=4155550101", headers={"HX-Request": "true"})
    assert re.findall(r'data-call-id="([0-9a-f-]+)"', by_to.text) == [b.json()["id"]]
    assert f'<code title="{a["id"]}">{str(a["id"])[:8]}</code>' in by_from.text
    bad = await client.get("/calls?from_number=abc", headers={"HX-Request": "true"})
    assert bad.status_code == 400
    assert "From" in bad.text


async def test_panel_notes_author_rules_and_agent_never_sees_legal_hold(
    client: httpx.AsyncClient, tenant: Tenant, other_tenant: Tenant
) -> None:
    call = await _call(client, tenant)
    token = await login(client, tenant.agent.email)
    hx = {"HX-Request": "true", "X-CSRFToken": token}
    added = await client.post(
        f"/calls/{call['id']}/notes", data={"at": "1:05", "text": "Asked for a refund"}, headers=hx
    )
    assert added.status_code == 200
    assert "Asked for a refund" in added.text
    assert 'data-at-ms="65000"' in added.text
    assert tenant.agent.email in added.text
    bad = await client.post(
        f"/calls/{call['id']}/notes", data={"at": "soon", "text": "x"}, headers=hx
    )
    assert bad.status_code == 400
    assert "m:ss" in bad.text

    admin_note = await client.post(
        f"/api/v1/calls/{call['id']}/notes",
        json={"at_ms": 2000, "text": "admin's"},
        headers=tenant.api(),
    )
    panel = await client.get(f"/calls/{call['id']}", headers={"HX-Request": "true"})
    assert "Not on legal hold" not in panel.text
    assert 'id="tab-admin"' not in panel.text
    # The agent may delete only their own note: no button on the admin's, and 403 if forced.
    refused = await client.post(
        f"/calls/{call['id']}/notes/{admin_note.json()['id']}/delete", headers=hx
    )
    assert refused.status_code == 403
    own_id = re.search(r'data-note-id="([0-9a-f-]+)" data-at-ms="65000"', added.text)
    assert own_id
    deleted = await client.post(f"/calls/{call['id']}/notes/{own_id.group(1)}/delete", headers=hx)
    assert deleted.status_code == 200
    assert "Asked for a refund" not in deleted.text
    missing = await client.post(f"/calls/{call['id']}/notes/{uuid.uuid4()}/delete", headers=hx)
    assert missing.status_code == 404


async def test_times_and_date_filters_in_the_viewers_zone(
    client: httpx.AsyncClient, tenant: Tenant, db_backend: str
) -> None:
    # 02:30 UTC on 1 March is the evening of 28 February in Los Angeles.
    call = await _call(client, tenant, started_at="2025-03-01T02:30:00Z")
    token = await login(client, tenant.agent.email)
    hx = {"HX-Request": "true"}
    utc = await client.get("/calls?date_from=2025-03-01&date_to=2025-03-01", headers=hx)
    assert call["id"] in utc.text
    assert "2025-03-01 02:30" in utc.text
    client.cookies.set("talkturo_tz", "America/Los_Angeles")
    la = await client.get("/calls?date_from=2025-02-28&date_to=2025-02-28", headers=hx)
    assert call["id"] in la.text
    assert "2025-02-28 18:30" in la.text
    assert "America/Los_Angeles" in la.text
    assert call["id"] not in (await client.get("/calls?date_from=2025-03-01", headers=hx)).text

    # A zone chosen in preferences wins over the browser's; an unknown one is refused.
    bad = await client.post(
        "/settings/preferences", data={"time_zone": "Mars/Olympus", "_csrf_token": token}
    )
    assert bad.status_code == 400
    assert "time zone" in bad.text
    saved = await client.post(
        "/settings/preferences", data={"time_zone": "Asia/Tokyo", "_csrf_token": token}
    )
    assert saved.status_code == 200
    tokyo = await client.get("/calls", headers=hx)
    assert "2025-03-01 11:30" in tokyo.text
    user = await User.get(id=tenant.agent.id)
    assert user.time_zone == "Asia/Tokyo"


async def test_speed_is_remembered_per_user(client: httpx.AsyncClient, tenant: Tenant) -> None:
    token = await login(client, tenant.agent.email)
    saved = await client.post(
        "/settings/preferences", data={"speed": "1.5"}, headers={"X-CSRFToken": token}
    )
    assert saved.status_code == 204
    bad = await client.post(
        "/settings/preferences", data={"speed": "9"}, headers={"X-CSRFToken": token}
    )
    assert bad.status_code == 400
    assert (await User.get(id=tenant.agent.id)).playback_speed == "1.5"
    assert (await User.get(id=tenant.admin.id)).playback_speed is None


async def test_search_hits_marked_in_rows_and_transcript(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    call = await _call(client, tenant)
    await client.put(
        f"/api/v1/calls/{call['id']}/transcript",
        json={
            "messages": [
                {"role": "user", "text": "I want my refunds <now>", "start_ms": 0, "end_ms": 900},
                {"role": "assistant", "text": "Sure.", "start_ms": 1000, "end_ms": 1500},
            ]
        },
        headers=tenant.api(),
    )
    await login(client, tenant.agent.email)
    rows = await client.get("/calls?q=refund", headers={"HX-Request": "true"})
    assert call["id"] in rows.text
    snippet = re.search(r'<span class="snippet">(.*?)</span>', rows.text, re.S)
    assert snippet
    assert "<mark>refunds</mark>" in snippet.group(1)
    assert "&lt;now&gt;" in snippet.group(1)
    panel = await client.get(f"/calls/{call['id']}?q=refund", headers={"HX-Request": "true"})
    assert "<mark>refunds</mark> &lt;now&gt;" in panel.text
    assert 'data-start-ms="0" data-end-ms="900"' in panel.text
    plain = await client.get(f"/calls/{call['id']}", headers={"HX-Request": "true"})
    assert "<mark>" not in plain.text
