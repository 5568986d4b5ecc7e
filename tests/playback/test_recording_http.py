"""The recording over HTTP: Range conformance byte for byte on local storage and on S3,
signed URLs, status messages, peaks, audit events and deletion."""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import re
import time
from dataclasses import dataclass
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from tests.conftest import Tenant, login
from tests.playback.conftest import SpeechRecording, seed_call
from web.models import AuditEvent, Call, Recording, RecordingStatus
from web.recordings.placement import storage_of
from web.recordings.playback import signed_player_urls
from web.security import sign_path

SECRET = "test-secret-key-0123456789abcdef"


def _signed(call_id: Any, ttl: int = 600, **extra: str) -> str:
    urls = signed_player_urls(SECRET, call_id, ttl)
    url = str(urls["mp3_url"])
    for k, v in extra.items():
        url += f"&{k}={v}"
    return url


@dataclass
class StoredCall:
    """A call with a stored recording."""

    call: Call
    rec: Recording

    @property
    def mp3_url(self) -> str:
        """The player's signed URL of the MP3."""
        return _signed(self.call.id)


@pytest.fixture
async def stored(
    app: Any, tenant: Tenant, speech: SpeechRecording, storage_kind: str
) -> StoredCall:
    """A call of the org with a stored recording, on each storage."""
    return StoredCall(*await seed_call(app, tenant, speech))


@pytest.fixture
async def admin_call(
    client: AsyncTestClient[Any], tenant: Tenant, stored: StoredCall
) -> StoredCall:
    """The stored call, and the org's admin signed in."""
    await login(client, tenant.admin.email)
    return stored


def _ranges(size: int) -> list[tuple[str | None, int, int, int]]:
    """(Range header, status, first byte, last byte) for a body of ``size``."""
    return [
        (None, 200, 0, size - 1),
        ("bytes=0-", 206, 0, size - 1),
        ("bytes=0-0", 206, 0, 0),
        ("bytes=100-4195", 206, 100, 4195),
        (f"bytes={size - 10}-", 206, size - 10, size - 1),
        (f"bytes={size - 10}-{size + 5000}", 206, size - 10, size - 1),
        ("bytes=-1", 206, size - 1, size - 1),
        ("bytes=-70000", 206, max(size - 70000, 0), size - 1),
        (f"bytes=-{size * 2}", 206, 0, size - 1),
        (f"bytes={size}-", 416, 0, 0),
        ("bytes=-0", 416, 0, 0),
        ("bytes=0-1,10-20", 200, 0, size - 1),
        ("bytes=9-3", 200, 0, size - 1),
        ("bytes=oops", 200, 0, size - 1),
        ("pages=1-2", 200, 0, size - 1),
        ("bytes=" + ",".join(f"{i}-{i}" for i in range(1000)), 200, 0, size - 1),
    ]


@pytest.mark.slow
async def test_range_conformance_table(
    client: AsyncTestClient[Any],
    speech: SpeechRecording,
    admin_call: StoredCall,
) -> None:
    size, url = len(speech.mp3), admin_call.mp3_url
    for header, status, first, last in _ranges(size):
        headers = {"Range": header} if header else {}
        resp = await client.get(url, headers=headers)
        assert resp.status_code == status, (header, resp.status_code, resp.text[:200])
        assert resp.headers["accept-ranges"] == "bytes"
        assert resp.headers["etag"] == f'"{speech.sha256}"'
        assert resp.headers["x-content-type-options"] == "nosniff"
        assert resp.headers["cache-control"] == "private"
        assert "last-modified" in resp.headers
        assert "content-disposition" not in resp.headers
        if status == 416:
            assert resp.headers["content-range"] == f"bytes */{size}"
            assert resp.content == b""
            continue
        assert resp.content == speech.mp3[first : last + 1], header
        assert int(resp.headers["content-length"]) == last - first + 1
        assert resp.headers["content-type"] == "audio/mpeg"
        if status == 206:
            assert resp.headers["content-range"] == f"bytes {first}-{last}/{size}"
        else:
            assert "content-range" not in resp.headers


async def test_head_if_range_and_download(
    client: AsyncTestClient[Any],
    speech: SpeechRecording,
    admin_call: StoredCall,
) -> None:
    call, size, url = admin_call.call, len(speech.mp3), admin_call.mp3_url
    head = await client.head(url)
    assert head.status_code == 200
    assert head.headers["content-length"] == str(size)
    assert head.content == b""
    head_range = await client.head(url, headers={"Range": "bytes=10-19"})
    assert head_range.status_code == 206
    assert head_range.headers["content-range"] == f"bytes 10-19/{size}"

    etag = head.headers["etag"]
    modified = head.headers["last-modified"]
    same = await client.get(url, headers={"Range": "bytes=5-9", "If-Range": etag})
    assert same.status_code == 206
    assert same.content == speech.mp3[5:10]
    by_date = await client.get(url, headers={"Range": "bytes=5-9", "If-Range": modified})
    assert by_date.status_code == 206
    changed = await client.get(url, headers={"Range": "bytes=5-9", "If-Range": '"other"'})
    assert changed.status_code == 200
    assert changed.content == speech.mp3
    weak = await client.get(url, headers={"Range": "bytes=5-9", "If-Range": f"W/{etag}"})
    assert weak.status_code == 200

    dl = await client.get(_signed(call.id, download="1"))
    assert dl.status_code == 200
    assert dl.headers["content-disposition"] == f'attachment; filename="{call.id}.mp3"'
    assert hashlib.sha256(dl.content).hexdigest() == speech.sha256


async def test_signed_player_url_rules(
    client: AsyncTestClient[Any],
    app: Any,
    tenant: Tenant,
    other_tenant: Tenant,
    speech: SpeechRecording,
    admin_call: StoredCall,
) -> None:
    call = admin_call.call
    path = f"/calls/{call.id}/recording.mp3"
    past = int(time.time()) - 5
    expired = f"{path}?expires={past}&signature={sign_path(SECRET, path, past)}"
    assert (await client.get(expired)).status_code == 403
    good = _signed(call.id)
    altered = good[:-3] + ("AAA" if not good.endswith("AAA") else "BBB")
    assert (await client.get(altered)).status_code == 403
    later = good.replace("expires=", "expires=9")
    assert (await client.get(later)).status_code == 403
    unsigned = await client.get(path)
    assert unsigned.status_code == 403
    assert (await client.get(good)).status_code == 200
    # The signature of one call does not open another.
    other_call, _ = await seed_call(app, tenant, speech)
    swapped = good.replace(str(call.id), str(other_call.id))
    assert (await client.get(swapped)).status_code == 403

    # The session is required too: a signed URL alone is not enough.
    client.cookies.clear()
    anon = await client.get(good, follow_redirects=False)
    assert anon.status_code in {303, 401}

    # Another org's user, even with a genuine signed URL: 404 like a missing call.
    await login(client, other_tenant.admin.email)
    theirs = await client.get(good, headers={"Accept": "application/json"})
    assert theirs.status_code == 404
    assert theirs.json()["detail"] == "No such call."


async def test_api_recording_key_or_signed_link(
    client: AsyncTestClient[Any],
    tenant: Tenant,
    other_tenant: Tenant,
    speech: SpeechRecording,
    stored: StoredCall,
) -> None:
    call = stored.call
    api = f"/api/v1/calls/{call.id}/recording"
    with_key = await client.get(api, headers=tenant.api("agent"))
    assert with_key.status_code == 200
    assert with_key.content == speech.mp3
    assert with_key.headers["content-disposition"] == f'attachment; filename="{call.id}.mp3"'
    ranged = await client.get(api, headers={**tenant.api(), "Range": "bytes=-100"})
    assert ranged.status_code == 206
    assert ranged.content == speech.mp3[-100:]

    detail = (await client.get(f"/api/v1/calls/{call.id}", headers=tenant.api())).json()
    link = detail["recording"]["url"]
    assert link.startswith(api + "?expires=")
    no_key = await client.get(link)
    assert no_key.status_code == 200
    assert hashlib.sha256(no_key.content).hexdigest() == speech.sha256

    assert (await client.get(link[:-2] + "xx")).status_code == 403
    past = int(time.time()) - 1
    expired = f"{api}?expires={past}&signature={sign_path(SECRET, api, past)}"
    assert (await client.get(expired)).status_code == 403
    assert (await client.get(api)).status_code == 401
    bad_key = await client.get(api, headers={"Authorization": "Bearer tk_nope"})
    assert bad_key.status_code == 401
    theirs = await client.get(api, headers=other_tenant.api())
    assert theirs.status_code == 404
    assert theirs.json() == {"status_code": 404, "detail": "No such call."}


@pytest.mark.parametrize(
    ("status", "fields", "says"),
    [
        (RecordingStatus.PROCESSING, {}, "still processing"),
        (RecordingStatus.RECORDING, {}, "still being recorded"),
        (RecordingStatus.FAILED, {}, "failed"),
        (
            RecordingStatus.DELETED,
            {"deleted_at": "2025-02-03T04:05:06+00:00"},
            "deleted on 2025-02-03",
        ),
        (
            RecordingStatus.PURGED,
            {"purged_at": "2025-01-02T00:00:00+00:00"},
            "purged on 2025-01-02",
        ),
    ],
)
async def test_unavailable_recording_says_why(
    client: AsyncTestClient[Any],
    app: Any,
    tenant: Tenant,
    speech: SpeechRecording,
    status: RecordingStatus,
    fields: dict[str, Any],
    says: str,
    storage_kind: str,
) -> None:
    from datetime import datetime

    parsed = {k: datetime.fromisoformat(v) for k, v in fields.items()}
    call, _ = await seed_call(app, tenant, speech, status=status, **parsed)
    resp = await client.get(f"/api/v1/calls/{call.id}/recording", headers=tenant.api())
    assert resp.status_code == 404
    assert says in resp.json()["detail"]
    await login(client, tenant.agent.email)
    page = await client.get(_signed(call.id), headers={"Accept": "application/json"})
    assert page.status_code == 404
    assert says in page.json()["detail"]


async def test_peaks_gzip_and_cache(
    client: AsyncTestClient[Any],
    speech: SpeechRecording,
    admin_call: StoredCall,
) -> None:
    call = admin_call.call
    url = f"/calls/{call.id}/peaks.json"
    raw = await client.get(url, headers={"Accept-Encoding": "gzip"})
    assert raw.status_code == 200
    assert raw.headers["content-encoding"] == "gzip"
    assert raw.json()["version"] == 2
    assert raw.json()["channels"] == 2
    assert "private" in raw.headers["cache-control"]
    assert "max-age=" in raw.headers["cache-control"]
    assert raw.headers["vary"] == "Accept-Encoding"
    assert int(raw.headers["content-length"]) < len(speech.peaks_json)
    # httpx decodes gzip; the bytes on the wire are the gzip of the stored JSON.
    assert gzip.decompress(gzip.compress(raw.content)) == speech.peaks_json
    plain = await client.get(url, headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers
    assert plain.content == speech.peaks_json
    again = await client.get(url, headers={"If-None-Match": raw.headers["etag"]})
    assert again.status_code == 304


async def test_peaks_stored_gzipped_are_served_as_stored(
    client: AsyncTestClient[Any],
    app: Any,
    speech: SpeechRecording,
    admin_call: StoredCall,
) -> None:
    call, rec = admin_call.call, admin_call.rec
    stored = gzip.compress(speech.peaks_json, mtime=0)
    storage = await storage_of(app.state.storages, rec)
    await storage.put_bytes(rec.peaks_key, stored, "application/gzip")
    url = f"/calls/{call.id}/peaks.json"
    async with client.stream("GET", url, headers={"Accept-Encoding": "gzip"}) as raw:
        wire = b"".join([chunk async for chunk in raw.aiter_raw()])
        assert raw.headers["content-encoding"] == "gzip"
    assert wire == stored
    plain = await client.get(url, headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers
    assert plain.headers["content-type"].startswith("application/json")
    assert plain.content == speech.peaks_json


async def test_listens_and_downloads_are_audited_once(
    client: AsyncTestClient[Any],
    tenant: Tenant,
    admin_call: StoredCall,
    db_backend: str,
) -> None:
    call = admin_call.call
    url = _signed(call.id)
    await client.get(url, headers={"Range": "bytes=0-"})
    await client.get(url, headers={"Range": "bytes=1000-"})
    await client.get(url, headers={"Range": "bytes=5000-6000"})
    await client.head(url)
    await client.get(_signed(call.id, download="1"))
    await client.get(f"/api/v1/calls/{call.id}/recording", headers=tenant.api())
    events = await AuditEvent.filter(call_id=call.id).order_by("id")
    assert [e.action for e in events] == [
        "recording.listen",
        "recording.download",
        "recording.download",
    ]
    assert events[0].actor == tenant.admin.email
    assert events[0].user_id == tenant.admin.id  # type: ignore[attr-defined]
    assert events[2].actor.startswith("api key tk_")
    assert all(e.org_id == tenant.org.id for e in events)  # type: ignore[attr-defined]

    fragment = await client.get(f"/calls/{call.id}/audit", headers={"HX-Request": "true"})
    assert fragment.status_code == 200
    assert "listened" in fragment.text
    assert tenant.admin.email in fragment.text
    client.cookies.clear()
    await login(client, tenant.agent.email)
    refused = await client.get(f"/calls/{call.id}/audit", headers={"Accept": "application/json"})
    assert refused.status_code == 403


async def test_delete_recording(
    client: AsyncTestClient[Any],
    app: Any,
    tenant: Tenant,
    stored: StoredCall,
    db_backend: str,
) -> None:
    call, rec = stored.call, stored.rec
    api = f"/api/v1/calls/{call.id}/recording"
    agent = await client.delete(api, headers=tenant.api("agent"))
    assert agent.status_code == 403
    assert (await client.get(api, headers=tenant.api())).status_code == 200

    gone = await client.delete(api, headers=tenant.api())
    assert gone.status_code == 204
    storage = app.state.storages.platform()
    from web.storage import ObjectNotFound

    for key in (rec.storage_key, rec.peaks_key):
        with pytest.raises(ObjectNotFound):
            await storage.head(key)
    row = await Recording.get(id=rec.id)
    assert row.status == RecordingStatus.DELETED
    assert row.deleted_at is not None
    assert (await Call.get(id=call.id)).has_recording is False
    assert await AuditEvent.filter(call_id=call.id, action="recording.delete").count() == 1
    after = await client.get(api, headers=tenant.api())
    assert after.status_code == 404
    assert "deleted on" in after.json()["detail"]
    again = await client.delete(api, headers=tenant.api())
    assert again.status_code == 404


class _Statements(logging.Handler):
    """The SQL statements the ORM sends while attached."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.sql: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.sql.append(record.getMessage())


async def test_panel_is_compressed_carries_the_peaks_and_reads_each_row_once(
    client: AsyncTestClient[Any], speech: SpeechRecording, admin_call: StoredCall
) -> None:
    # The Call Detail panel (the HTMX fragment a row tap fetches) on a slow link: gzipped
    # when accepted, the peaks inside it (no second request before the waveform), and the
    # call and the user read once each (the notes and the preferences reuse them).
    url = f"/calls/{admin_call.call.id}"
    hx = {"HX-Request": "true", "HX-Target": "panel"}
    logger = logging.getLogger("tortoise.db_client")
    statements, level = _Statements(), logger.level
    logger.addHandler(statements)
    logger.setLevel(logging.DEBUG)
    try:
        packed = await client.get(url, headers={**hx, "Accept-Encoding": "gzip"})
    finally:
        logger.removeHandler(statements)
        logger.setLevel(level)
    assert packed.status_code == 200
    assert packed.headers["content-encoding"] == "gzip"
    assert int(packed.headers["content-length"]) < len(packed.content) / 2
    inline = re.search(r'<script type="application/json" data-peaks>(.*?)</script>', packed.text)
    assert inline is not None
    assert json.loads(inline.group(1)) == json.loads(speech.peaks_json)
    reads = [s for s in statements.sql if s.lstrip().upper().startswith("SELECT")]
    assert len([s for s in reads if 'FROM "call" ' in s]) == 1, reads
    assert len([s for s in reads if 'FROM "user" ' in s]) == 0, reads
    plain = await client.get(url, headers={**hx, "Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers
    assert inline.group(0) in plain.text
