"""The export archive over HTTP, on SQLite and PostgreSQL, local storage and S3 (moto_server):
byte identity with the download route, the manifest, the signature, filters, tenancy, roles."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import json
import subprocess
import zipfile
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from tests.conftest import Tenant, login
from tests.export.conftest import BASE_TIME, export_zip, payload, store_call
from web.models import Assistant, AuditEvent, Direction, OrgExportKey, RecordingStatus
from web.recordings.export import MANIFEST_FIELDS, zip64_thresholds
from web.recordings.export_verify import load_public_key, verify
from web.security import decrypt_secret, encrypt_secret

SECRET = "test-secret-key-0123456789abcdef"


async def _public_key(client: httpx.AsyncClient, tenant: Tenant) -> Ed25519PublicKey:
    resp = await client.get("/api/v1/org/export-key", headers=tenant.api())
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["algorithm"] == "Ed25519"
    raw = base64.b64decode(body["public_key"])
    assert len(raw) == 32
    pem = load_pem_public_key(body["public_key_pem"].encode())
    assert isinstance(pem, Ed25519PublicKey)
    key = Ed25519PublicKey.from_public_bytes(raw)
    assert pem.public_bytes_raw() == raw
    assert body["fingerprint"] == f"sha256:{hashlib.sha256(raw).hexdigest()}"
    return key


@pytest.mark.usefixtures("db_backend")
async def test_every_entry_is_byte_identical_to_its_download(
    client: httpx.AsyncClient, app: Any, tenant: Tenant, speech: Any, storage_kind: str
) -> None:
    bot = await Assistant.create(org=tenant.org, name="Bot")
    stored = [
        await store_call(app, tenant, speech.mp3, assistant=bot),
        # Sizes across chunk boundaries (256 KiB reads) and a one-byte recording.
        await store_call(app, tenant, payload(700_001), started_at=BASE_TIME + timedelta(1)),
        await store_call(app, tenant, payload(262_144), started_at=BASE_TIME + timedelta(2)),
        await store_call(app, tenant, payload(1), started_at=BASE_TIME + timedelta(3)),
    ]
    # Not available: never in an archive.
    await store_call(app, tenant, payload(10), status=RecordingStatus.DELETED)
    await store_call(app, tenant, payload(10), status=RecordingStatus.PROCESSING)

    resp = await client.get("/api/v1/recordings/export", headers=tenant.api())
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"] == "application/zip"
    assert resp.headers["content-disposition"].startswith('attachment; filename="talkturo-export-')
    assert resp.headers["cache-control"] == "no-store"
    assert "content-encoding" not in resp.headers
    zf = zipfile.ZipFile(io.BytesIO(resp.content))
    assert zf.testzip() is None
    expected = {f"{s.call.id}.mp3" for s in stored}
    assert set(zf.namelist()) == expected | {"manifest.json", "manifest.sig"}
    assert zf.namelist()[-2:] == ["manifest.json", "manifest.sig"]

    for s in stored:
        info = zf.getinfo(f"{s.call.id}.mp3")
        assert info.compress_type == zipfile.ZIP_STORED
        download = await client.get(f"/api/v1/calls/{s.call.id}/recording", headers=tenant.api())
        assert download.status_code == 200
        assert zf.read(info) == download.content == s.data

    manifest = json.loads(zf.read("manifest.json"))
    assert [e["file"] for e in manifest] == [n for n in zf.namelist() if n.endswith(".mp3")]
    by_call = {e["call_id"]: e for e in manifest}
    for s in stored:
        e = by_call[str(s.call.id)]
        assert tuple(e) == MANIFEST_FIELDS
        assert e == {
            "call_id": str(s.call.id),
            "file": f"{s.call.id}.mp3",
            "started_at": s.call.started_at.isoformat(),
            "assistant_id": str(s.call.assistant_id),
            "from_number": "+14155550101",
            "to_number": "+14155550100",
            "duration_ms": 29_500,
            "size_bytes": len(s.data),
            "sha256": hashlib.sha256(s.data).hexdigest(),
        }
    # Newest first, as Call Logs lists them.
    assert [e["call_id"] for e in manifest] == [str(s.call.id) for s in reversed(stored)]

    key = await _public_key(client, tenant)
    key.verify(zf.read("manifest.sig"), zf.read("manifest.json"))
    assert len(zf.read("manifest.sig")) == 64

    events = await AuditEvent.filter(org_id=tenant.org.id, action="recording.export")
    assert sorted(str(e.call_id) for e in events) == sorted(str(s.call.id) for s in stored)  # type: ignore[attr-defined]
    assert {e.actor for e in events} == {"api key " + tenant.admin_key[:11]}
    assert len({e.detail["export_id"] for e in events}) == 1
    assert all(e.detail["sha256_ok"] for e in events)


def _data_offset(raw: bytes, info: zipfile.ZipInfo) -> int:
    """Where an entry's bytes start: after its local header (30 bytes, name, extra)."""
    start = info.header_offset
    name_len = int.from_bytes(raw[start + 26 : start + 28], "little")
    extra_len = int.from_bytes(raw[start + 28 : start + 30], "little")
    return start + 30 + name_len + extra_len


def _rebuild(zf: zipfile.ZipFile, changes: dict[str, bytes], path: Path) -> Path:
    """A copy of the archive with some entries' contents replaced (CRCs recomputed)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as out:
        for info in zf.infolist():
            out.writestr(info.filename, changes.get(info.filename, zf.read(info)))
    return path


async def test_signature_and_hashes_catch_any_one_byte_change(
    client: httpx.AsyncClient, app: Any, tenant: Tenant, tmp_path: Path
) -> None:
    a = await store_call(app, tenant, payload(300_000))
    b = await store_call(app, tenant, payload(5_000), started_at=BASE_TIME + timedelta(1))
    resp = await client.get("/api/v1/recordings/export", headers=tenant.api())
    raw = resp.content
    good = tmp_path / "good.zip"
    good.write_bytes(raw)
    key = await _public_key(client, tenant)
    report = verify(good, key)
    assert report.ok, report.findings
    assert report.recordings == 2

    zf = zipfile.ZipFile(io.BytesIO(raw))
    # One byte flipped in place, in each entry in turn: the ZIP's CRC-32 or the signature fails.
    for info in zf.infolist():
        at = _data_offset(raw, info) + info.file_size // 2
        bad = tmp_path / f"flip-{info.filename}.zip"
        bad.write_bytes(raw[:at] + bytes([raw[at] ^ 0x01]) + raw[at + 1 :])
        findings = verify(bad, key).findings
        assert findings, info.filename
        assert {f.entry for f in findings} == {info.filename}, findings

    # An entry replaced by a forger who recomputed the CRC: the sha256 check names it.
    for s in (a, b):
        name = f"{s.call.id}.mp3"
        altered = bytearray(s.data)
        altered[len(altered) // 3] ^= 0xFF
        bad = _rebuild(zf, {name: bytes(altered)}, tmp_path / f"forged-{name}.zip")
        findings = verify(bad, key).findings
        assert [(f.entry, f.check) for f in findings] == [(name, "sha256")]
        # ...and a manifest changed to match would break the signature.
        doc = zf.read("manifest.json").replace(
            s.rec.sha256.encode(), hashlib.sha256(altered).hexdigest().encode()
        )
        with pytest.raises(InvalidSignature):
            key.verify(zf.read("manifest.sig"), doc)

    # One byte of the manifest changed (CRC recomputed): the signature fails.
    doc = bytearray(zf.read("manifest.json"))
    doc[doc.index(b'"from_number"') + 20] ^= 0x01
    bad = _rebuild(zf, {"manifest.json": bytes(doc)}, tmp_path / "manifest.zip")
    findings = verify(bad, key).findings
    assert ("manifest.sig", "signature") in {(f.entry, f.check) for f in findings}

    # The signature of another org's key does not verify this archive.
    other = Ed25519PublicKey.from_public_bytes(hashlib.sha256(b"x").digest())
    assert [f.check for f in verify(good, other).findings] == ["signature"]

    # An entry taken out, or one slipped in.
    names = [i.filename for i in zf.infolist()]
    gone = tmp_path / "gone.zip"
    with zipfile.ZipFile(gone, "w") as out:
        for n in names:
            if n != f"{a.call.id}.mp3":
                out.writestr(n, zf.read(n))
    assert [(f.entry, f.check) for f in verify(gone, key).findings] == [
        (f"{a.call.id}.mp3", "presence")
    ]
    extra = tmp_path / "extra.zip"
    with zipfile.ZipFile(extra, "w") as out:
        for n in names:
            out.writestr(n, zf.read(n))
        out.writestr("extra.mp3", b"ID3")
    assert [(f.entry, f.check) for f in verify(extra, key).findings] == [("extra.mp3", "presence")]


async def test_export_key_is_per_org_stable_and_stored_encrypted(
    client: httpx.AsyncClient, tenant: Tenant, other_tenant: Tenant
) -> None:
    first = (await client.get("/api/v1/org/export-key", headers=tenant.api())).json()
    again = (await client.get("/api/v1/org/export-key", headers=tenant.api())).json()
    theirs = (await client.get("/api/v1/org/export-key", headers=other_tenant.api())).json()
    assert first == again
    assert first["public_key"] != theirs["public_key"]
    row = await OrgExportKey.get(org_id=tenant.org.id)
    assert row.public_key == first["public_key"]
    # The private key is only stored encrypted with the secret key.
    assert first["public_key"] not in row.private_key_encrypted
    private = base64.b64decode(decrypt_secret(SECRET, row.private_key_encrypted))
    assert len(private) == 32
    assert base64.b64encode(private).decode() not in row.private_key_encrypted
    assert await OrgExportKey.all().count() == 2
    assert load_public_key(first["public_key_pem"]).public_bytes_raw() == base64.b64decode(
        first["public_key"]
    )


@pytest.mark.usefixtures("db_backend")
async def test_filters_choose_the_entries(
    client: httpx.AsyncClient, app: Any, tenant: Tenant
) -> None:
    bot = await Assistant.create(org=tenant.org, name="Bot")
    other_bot = await Assistant.create(org=tenant.org, name="Other")
    early = await store_call(app, tenant, payload(100), assistant=bot)
    mid = await store_call(
        app,
        tenant,
        payload(200),
        assistant=other_bot,
        started_at=BASE_TIME + timedelta(days=5),
        direction=Direction.OUTBOUND,
        to_number="+442071234567",
    )
    late = await store_call(
        app, tenant, payload(300), assistant=bot, started_at=BASE_TIME + timedelta(days=10)
    )

    async def names(query: str) -> set[str]:
        zf = await export_zip(client, tenant, query)
        manifest = json.loads(zf.read("manifest.json"))
        files = {n for n in zf.namelist() if n.endswith(".mp3")}
        assert files == {e["file"] for e in manifest}
        return {e["call_id"] for e in manifest}

    ids = {k: str(s.call.id) for k, s in (("early", early), ("mid", mid), ("late", late))}
    assert await names("") == set(ids.values())
    assert await names("?date_from=2025-03-12") == {ids["mid"], ids["late"]}
    assert await names("?date_to=2025-03-15") == {ids["early"], ids["mid"]}
    assert await names("?date_from=2025-03-11&date_to=2025-03-19") == {ids["mid"]}
    assert await names(f"?assistant={bot.id}") == {ids["early"], ids["late"]}
    assert await names("?direction=outbound") == {ids["mid"]}
    assert await names("?phone=2071234") == {ids["mid"]}
    assert await names(f"?q={ids['late']}") == {ids["late"]}
    assert await names("?recording=no") == set()
    # The same calls as the list with the same filters.
    listed = await client.get(
        "/api/v1/calls?date_to=2025-03-15&recording=yes", headers=tenant.api()
    )
    assert {c["id"] for c in listed.json()["items"]} == await names(
        "?date_to=2025-03-15&recording=yes"
    )

    bad = await client.get("/api/v1/recordings/export?date_from=March", headers=tenant.api())
    assert bad.status_code == 400
    assert "date_from" in bad.json()["detail"]
    bad = await client.get("/api/v1/recordings/export?status=lost", headers=tenant.api())
    assert bad.status_code == 400
    assert "status" in bad.json()["detail"]


@pytest.mark.usefixtures("db_backend")
async def test_another_orgs_calls_are_never_in_an_archive(
    client: httpx.AsyncClient, app: Any, tenant: Tenant, other_tenant: Tenant
) -> None:
    mine = await store_call(app, tenant, payload(1000))
    theirs_bot = await Assistant.create(org=other_tenant.org, name="Theirs")
    theirs = await store_call(app, other_tenant, payload(2000), assistant=theirs_bot)

    zf = await export_zip(client, tenant)
    assert set(zf.namelist()) == {f"{mine.call.id}.mp3", "manifest.json", "manifest.sig"}
    # Naming their assistant or their call id finds nothing of theirs.
    for query in (f"?assistant={theirs_bot.id}", f"?q={theirs.call.id}"):
        zf = await export_zip(client, tenant, query)
        assert zf.namelist() == ["manifest.json", "manifest.sig"]
        assert json.loads(zf.read("manifest.json")) == []
    # Their export is theirs alone, signed with their key.
    zf = await export_zip(client, other_tenant)
    assert set(zf.namelist()) == {f"{theirs.call.id}.mp3", "manifest.json", "manifest.sig"}
    mine_key = await _public_key(client, tenant)
    with pytest.raises(InvalidSignature):
        mine_key.verify(zf.read("manifest.sig"), zf.read("manifest.json"))
    assert not await AuditEvent.filter(org_id=tenant.org.id, call_id=theirs.call.id).exists()


async def test_agents_and_strangers_are_refused(
    client: httpx.AsyncClient, app: Any, tenant: Tenant
) -> None:
    await store_call(app, tenant, payload(100))
    for path in ("/api/v1/recordings/export", "/api/v1/org/export-key"):
        agent = await client.get(path, headers=tenant.api("agent"))
        assert agent.status_code == 403, path
        assert agent.json()["detail"] == "This needs an admin."
        anonymous = await client.get(path)
        assert anonymous.status_code == 401
        assert "detail" in anonymous.json()
    assert not await AuditEvent.filter(action="recording.export").exists()
    assert not await OrgExportKey.exists()


async def test_a_stored_object_that_does_not_match_its_sha256_is_flagged(
    client: httpx.AsyncClient, app: Any, tenant: Tenant, tmp_path: Path
) -> None:
    honest = await store_call(app, tenant, payload(4000))
    # The object was changed behind the recording's back: same size, other bytes.
    tampered = await store_call(
        app,
        tenant,
        payload(4000),
        started_at=BASE_TIME + timedelta(1),
        sha256=hashlib.sha256(b"what was recorded").hexdigest(),
    )
    resp = await client.get("/api/v1/recordings/export", headers=tenant.api())
    path = tmp_path / "export.zip"
    path.write_bytes(resp.content)
    manifest = {e["call_id"]: e for e in json.loads(zipfile.ZipFile(path).read("manifest.json"))}
    assert "error" not in manifest[str(honest.call.id)]
    flagged = manifest[str(tampered.call.id)]
    assert flagged["sha256"] == tampered.rec.sha256
    assert hashlib.sha256(tampered.data).hexdigest() in flagged["error"]
    findings = verify(path, await _public_key(client, tenant)).findings
    assert {(f.entry, f.check) for f in findings} == {
        (f"{tampered.call.id}.mp3", "export"),
        (f"{tampered.call.id}.mp3", "sha256"),
    }
    event = await AuditEvent.get(call_id=tampered.call.id, action="recording.export")
    assert event.detail["sha256_ok"] is False


def _zip64_records(raw: bytes) -> tuple[bool, list[bytes]]:
    """Whether the archive ends with a ZIP64 end record, and each central entry's extra field."""
    extras = []
    zf = zipfile.ZipFile(io.BytesIO(raw))
    for info in zf.infolist():
        extras.append(info.extra)
    return raw.rfind(b"PK\x06\x06") != -1 and raw.rfind(b"PK\x06\x07") != -1, extras


async def test_zip64_past_the_limits(
    client: httpx.AsyncClient, app: Any, tenant: Tenant, tmp_path: Path
) -> None:
    stored = [
        await store_call(app, tenant, payload(50_000 + i), started_at=BASE_TIME + timedelta(i))
        for i in range(4)
    ]
    plain = (await client.get("/api/v1/recordings/export", headers=tenant.api())).content
    has_end64, extras = _zip64_records(plain)
    assert not has_end64
    assert not any(e.startswith(b"\x01\x00") for e in extras)

    # Limits lowered below each entry's size and the entry count: ZIP64 everywhere.
    with zip64_thresholds(size=10_000, entries=3):
        raw = (await client.get("/api/v1/recordings/export", headers=tenant.api())).content
    has_end64, extras = _zip64_records(raw)
    assert has_end64
    zf = zipfile.ZipFile(io.BytesIO(raw))
    mp3s = [i for i in zf.infolist() if i.filename.endswith(".mp3")]
    assert all(i.extra.startswith(b"\x01\x00") for i in mp3s)  # the ZIP64 extended field
    for s in stored:
        assert zf.read(f"{s.call.id}.mp3") == s.data
    assert zf.testzip() is None
    path = tmp_path / "zip64.zip"
    path.write_bytes(raw)
    assert verify(path, await _public_key(client, tenant)).ok
    unzip = await asyncio.to_thread(
        subprocess.run, ["unzip", "-t", str(path)], capture_output=True, text=True
    )
    assert unzip.returncode == 0, unzip.stdout + unzip.stderr
    assert "No errors detected" in unzip.stdout


async def test_empty_export_is_a_signed_empty_manifest(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    zf = await export_zip(client, tenant)
    assert zf.namelist() == ["manifest.json", "manifest.sig"]
    assert json.loads(zf.read("manifest.json")) == []
    (await _public_key(client, tenant)).verify(zf.read("manifest.sig"), zf.read("manifest.json"))


@pytest.mark.usefixtures("db_backend")
async def test_dashboard_export_for_admins_with_the_current_filters(
    client: httpx.AsyncClient, app: Any, tenant: Tenant
) -> None:
    inbound = await store_call(app, tenant, payload(1234))
    outbound = await store_call(
        app, tenant, payload(4321), direction=Direction.OUTBOUND, started_at=BASE_TIME
    )
    await login(client, tenant.admin.email)
    page = await client.get("/calls?direction=outbound", headers={"Accept": "text/html"})
    assert 'id="export-calls"' in page.text
    assert 'href="/calls/export?direction=outbound"' in page.text
    # The rows fragment brings the link with the new filters along, out of band.
    rows = await client.get("/calls?direction=inbound", headers={"HX-Request": "true"})
    assert 'href="/calls/export?direction=inbound"' in rows.text
    assert 'hx-swap-oob="true"' in rows.text.split('id="export-calls"')[1].split(">")[0]

    resp = await client.get("/calls/export?direction=outbound")
    assert resp.status_code == 200
    assert resp.headers["content-type"] == "application/zip"
    zf = zipfile.ZipFile(io.BytesIO(resp.content))
    assert zf.read(f"{outbound.call.id}.mp3") == outbound.data
    assert f"{inbound.call.id}.mp3" not in zf.namelist()
    event = await AuditEvent.get(call_id=outbound.call.id, action="recording.export")
    assert event.actor == tenant.admin.email

    bad = await client.get("/calls/export?min_duration=-3", headers={"Accept": "text/html"})
    assert bad.status_code == 400
    assert "min_duration" in bad.text
    assert "Traceback" not in bad.text


async def test_dashboard_export_is_refused_to_agents(
    client: httpx.AsyncClient, app: Any, tenant: Tenant
) -> None:
    await store_call(app, tenant, payload(10))
    anonymous = await client.get("/calls/export", follow_redirects=False)
    assert anonymous.status_code == 303
    await login(client, tenant.agent.email)
    page = await client.get("/calls", headers={"Accept": "text/html"})
    assert page.status_code == 200
    assert "export-calls" not in page.text
    refused = await client.get("/calls/export", headers={"Accept": "text/html"})
    assert refused.status_code == 403
    assert "Only admins can export recordings." in refused.text
    assert not await AuditEvent.filter(action="recording.export").exists()


async def test_a_recording_missing_from_storage_is_left_out(
    client: httpx.AsyncClient, app: Any, tenant: Tenant
) -> None:
    kept = await store_call(app, tenant, payload(3000))
    lost = await store_call(app, tenant, payload(3000), started_at=BASE_TIME + timedelta(1))
    await app.state.storages.platform().delete(lost.rec.storage_key)
    zf = await export_zip(client, tenant)
    assert set(zf.namelist()) == {f"{kept.call.id}.mp3", "manifest.json", "manifest.sig"}
    assert [e["call_id"] for e in json.loads(zf.read("manifest.json"))] == [str(kept.call.id)]
    assert not await AuditEvent.filter(call_id=lost.call.id).exists()


async def test_an_export_key_sealed_with_another_secret_is_a_clear_409(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    await client.get("/api/v1/org/export-key", headers=tenant.api())
    await OrgExportKey.filter(org_id=tenant.org.id).update(
        private_key_encrypted=encrypt_secret("another-secret-key", "AAAA")
    )
    resp = await client.get("/api/v1/recordings/export", headers=tenant.api())
    assert resp.status_code == 409
    assert "TALKTURO_SECRET_KEY" in resp.json()["detail"]
