"""The media socket takes admin and ingest keys; a read-only (agent) key is refused."""

from __future__ import annotations

import httpx

from tests.ingest.conftest import (
    Live,
    Voice,
    create_call,
    frames,
    start_message,
    stream,
    wait_for_status,
)
from web.models import Recording

STOP = {"event": "stop", "stop": {"accountSid": "AC0001", "callSid": "CA0001"}}


async def test_media_socket_checks_the_key_role(live: Live, voices: tuple[Voice, Voice]) -> None:
    caller, _ = voices
    audio = frames("inbound", caller.mulaw8k[:8000], 8000, 1)
    refused = await create_call(live.http, live.tenant)
    closed = await stream(live.ws(refused), [start_message(live.tenant.agent_key), *audio, STOP])
    assert closed.code == 1008
    assert "ingest key" in closed.reason
    assert await Recording.get_or_none(call_id=refused) is None
    # The same key in the Authorization header is refused alike.
    closed = await stream(
        live.ws(refused), [start_message(), *audio, STOP], headers=live.tenant.api("agent")
    )
    assert closed.code == 1008
    accepted = await create_call(live.http, live.tenant)
    closed = await stream(live.ws(accepted), [start_message(live.tenant.ingest_key), *audio, STOP])
    assert closed.code == 1000, closed.reason
    await wait_for_status(accepted, "available")
    # Ending the call: the ingest key learns the recording's state, not a download link.
    async with httpx.AsyncClient(base_url=live.http) as http:
        ended = await http.post(
            f"/api/v1/calls/{accepted}/end",
            json={"status": "completed"},
            headers=live.tenant.api("ingest"),
        )
        assert ended.status_code == 200, ended.text
        assert ended.json()["recording"]["status"] == "available"
        assert ended.json()["recording"]["url"] is None
        read = await http.get(f"/api/v1/calls/{accepted}", headers=live.tenant.api("agent"))
        assert "signature=" in read.json()["recording"]["url"]
        refused = await http.get(
            f"/api/v1/calls/{accepted}/recording", headers=live.tenant.api("ingest")
        )
        assert refused.status_code == 403
