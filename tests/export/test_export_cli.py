"""``talkturo export`` and ``talkturo export verify``, run as real subprocesses."""

from __future__ import annotations

import asyncio
import base64
import json
import re
import zipfile
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tests.conftest import make_tenant
from tests.export.conftest import BASE_TIME, Stored, payload, store_call
from tests.web.test_cli import talkturo
from web.models import AuditEvent
from web.recordings.export import public_key
from web.settings import Settings
from web.storage import Storages

SECRET = "test-secret-key-0123456789abcdef"


async def _run(env: dict[str, str], *args: str) -> Any:
    return await asyncio.to_thread(talkturo, env, *args)


async def _seed(settings: Settings) -> tuple[Any, list[Stored]]:
    tenant = await make_tenant("CLI Org")
    async with Storages(settings) as storages:
        app = SimpleNamespace(state=SimpleNamespace(storages=storages))
        stored = [
            await store_call(app, tenant, payload(300_000 + i), started_at=BASE_TIME + timedelta(i))
            for i in range(3)
        ]
    return tenant, stored


def _one_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    return lines[0]


@pytest.mark.usefixtures("db_backend", "db")
async def test_export_then_verify(env: dict[str, str], settings: Settings, tmp_path: Path) -> None:
    tenant, stored = await _seed(settings)
    folder = tmp_path / "exports"
    folder.mkdir()
    out = folder / "march.zip"
    done = await _run(env, "export", "--org", str(tenant.org.id), "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""
    assert "export: 3 recording(s)" in done.stderr
    assert re.search(r"export: 3/3 \S+\.mp3 \(0\.9/0\.9 MB\)", done.stderr), done.stderr
    assert sorted(p.name for p in await asyncio.to_thread(folder.iterdir)) == ["march.zip"]
    zf = zipfile.ZipFile(out)
    for s in stored:
        assert zf.read(f"{s.call.id}.mp3") == s.data
    assert len(json.loads(zf.read("manifest.json"))) == 3
    events = await AuditEvent.filter(org_id=tenant.org.id, action="recording.export")
    assert len(events) == 3
    assert {e.actor for e in events} == {"command line (talkturo export)"}

    key = await public_key(tenant.org.id, SECRET)
    match = re.search(r"--public-key (\S+)", done.stderr)
    assert match is not None
    assert match.group(1) == key["public_key"]
    ok = await _run({}, "export", "verify", str(out), "--public-key", key["public_key"])
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "OK" in ok.stdout
    assert "3 recording(s)" in ok.stdout
    pem = tmp_path / "export-key.pem"
    pem.write_text(key["public_key_pem"])
    assert (await _run({}, "export", "verify", str(out), "--public-key", str(pem))).returncode == 0

    # One byte changed in the second entry: exit 1, naming that entry and the check.
    raw = bytearray(out.read_bytes())
    target = stored[1]
    at = raw.index(target.data[1000:1064]) + 10
    raw[at] ^= 0x20
    bad = tmp_path / "bad.zip"
    bad.write_bytes(bytes(raw))
    failed = await _run({}, "export", "verify", str(bad), "--public-key", str(pem))
    assert failed.returncode == 1
    assert failed.stdout.startswith(f"FAIL {target.call.id}.mp3: zip crc-32:")
    assert len(failed.stdout.strip().splitlines()) == 1
    assert "1 check(s) failed" in failed.stderr


@pytest.mark.usefixtures("db")
async def test_export_dates_choose_the_recordings(
    env: dict[str, str], settings: Settings, tmp_path: Path
) -> None:
    tenant, stored = await _seed(settings)
    out = tmp_path / "one-day.zip"
    done = await _run(
        env,
        "export",
        "--org",
        str(tenant.org.id),
        "--out",
        str(out),
        "--date-from",
        "2025-03-11",
        "--date-to",
        "2025-03-11",
    )
    assert done.returncode == 0, done.stderr
    names = [n for n in zipfile.ZipFile(out).namelist() if n.endswith(".mp3")]
    assert names == [f"{stored[1].call.id}.mp3"]


@pytest.mark.usefixtures("db")
async def test_bad_arguments_exit_2_with_one_line(
    env: dict[str, str], settings: Settings, tmp_path: Path
) -> None:
    tenant, _ = await _seed(settings)
    org = str(tenant.org.id)
    out = str(tmp_path / "x.zip")
    junk, missing = str(tmp_path / "junk.zip"), str(tmp_path / "missing.zip")
    await asyncio.to_thread((tmp_path / "junk.zip").write_bytes, b"PK")
    cases = [
        (["export", "--out", out], "--org"),
        (["export", "--org", org], "--out"),
        (["export", "--org", "nope", "--out", out], "No org"),
        (["export", "--org", org, "--out", out, "--date-from", "March"], "date_from"),
        (["export", "--org", org, "--out", str(tmp_path / "no" / "x.zip")], "does not exist"),
        (["export", "verify", missing, "--public-key", "AAAA"], "no such file"),
        (["export", "verify", out], "--public-key"),
        (["export", "verify", junk, "--public-key", "not a key"], "public key"),
        (["export", "verify", junk, "--public-key", "AAAA"], "32 bytes"),
        (["export", "nonsense"], "invalid choice"),
    ]
    for args, words in cases:
        result = await _run(env, *args)
        assert result.returncode == 2, (args, result.stderr)
        assert words in _one_line(result.stderr), (args, result.stderr)
    assert not (tmp_path / "x.zip").exists()


async def test_verify_says_when_the_file_is_not_an_archive(tmp_path: Path) -> None:
    junk = tmp_path / "junk.zip"
    junk.write_bytes(b"not a zip at all")
    key = base64.b64encode(Ed25519PrivateKey.generate().public_key().public_bytes_raw()).decode()
    result = await _run({}, "export", "verify", str(junk), "--public-key", key)
    assert result.returncode == 1, result.stderr
    assert result.stdout.startswith("FAIL archive: format: not a readable ZIP file")
