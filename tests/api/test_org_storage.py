"""Org storage: plan and retention, an enterprise's own bucket checked before it is saved.

The own bucket lives on a moto_server of its own with authentication on (moto's
``INITIAL_NO_AUTH_ACTION_COUNT``): real IAM users, a read-write key and a read-only key,
so wrong credentials and missing permissions are refused by the server, not simulated.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from litestar import Litestar

from tests.conftest import (
    Tenant,
    free_port,
    login,
    make_env,
    make_tenant,
    s3_keys,
    wait_for_port,
)
from tests.playback.conftest import SpeechRecording, make_speech_recording
from tests.retention.conftest import SeedRecording, seeder
from web.models import Org, Plan, Recording
from web.settings import Settings

# Actions moto lets through before it starts checking credentials: the set-up below.
_SETUP_ACTIONS = 6


@dataclass
class AuthS3:
    """A moto_server that checks credentials, with a bucket and two IAM users' keys."""

    endpoint: str
    bucket: str
    rw: tuple[str, str]
    ro: tuple[str, str]

    def object_keys(self) -> set[str]:
        return s3_keys(self.endpoint, self.bucket, *self.rw)

    def body(self, **extra: Any) -> dict[str, Any]:
        return {
            "bucket": self.bucket,
            "prefix": "calls",
            "region": "us-east-1",
            "endpoint_url": self.endpoint,
            "access_key_id": self.rw[0],
            "secret_access_key": self.rw[1],
            **extra,
        }


@pytest.fixture(scope="module")
def auth_s3() -> Iterator[AuthS3]:
    """moto_server with authentication: bucket ``own-bucket``, users ``rw`` and ``ro``."""
    port = free_port()
    exe = Path(sys.executable).with_name("moto_server")
    env = {**os.environ, "INITIAL_NO_AUTH_ACTION_COUNT": str(_SETUP_ACTIONS)}
    proc = subprocess.Popen(
        [str(exe), "-H", "127.0.0.1", "-p", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port, 30, proc)
        endpoint = f"http://127.0.0.1:{port}"
        boot = {
            "endpoint_url": endpoint,
            "aws_access_key_id": "testing",
            "aws_secret_access_key": "testing",
            "region_name": "us-east-1",
        }
        iam = boto3.client("iam", **boot)
        boto3.client("s3", **boot).create_bucket(Bucket="own-bucket")
        iam.create_user(UserName="rw")
        rw = iam.create_access_key(UserName="rw")["AccessKey"]
        allow_all = {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
        }
        iam.put_user_policy(UserName="rw", PolicyName="all", PolicyDocument=json.dumps(allow_all))
        iam.create_user(UserName="ro")
        ro = iam.create_access_key(UserName="ro")["AccessKey"]
        # From here on moto checks credentials: the rw user grants the read-only policy.
        as_rw = {
            **boot,
            "aws_access_key_id": rw["AccessKeyId"],
            "aws_secret_access_key": rw["SecretAccessKey"],
        }
        read_only = {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Action": ["s3:GetObject", "s3:ListBucket"], "Resource": "*"}
            ],
        }
        boto3.client("iam", **as_rw).put_user_policy(
            UserName="ro", PolicyName="ro", PolicyDocument=json.dumps(read_only)
        )
        yield AuthS3(
            endpoint,
            "own-bucket",
            (rw["AccessKeyId"], rw["SecretAccessKey"]),
            (ro["AccessKeyId"], ro["SecretAccessKey"]),
        )
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.fixture
def env(request: pytest.FixtureRequest, tmp_path: Path, db_url: str) -> dict[str, str]:
    """The app's environment; a test may add settings with ``parametrize("env", ..., indirect)``."""
    extra: dict[str, str] = getattr(request, "param", {})
    return make_env(tmp_path / "data", db_url, **extra)


@pytest.fixture(scope="module")
def speech(tmp_path_factory: pytest.TempPathFactory) -> SpeechRecording:
    """A real two-voice recording."""
    return make_speech_recording(tmp_path_factory.mktemp("org-storage-speech"))


@pytest.fixture
def seed(
    app: Litestar, settings: Settings, speech: SpeechRecording, tmp_path: Path
) -> SeedRecording:
    """Calls of this test's app with a recording published for real, started when asked."""
    return seeder(settings, app.state.storages, speech, tmp_path)


async def _enterprise(tenant: Tenant) -> Tenant:
    await Org.filter(id=tenant.org.id).update(plan=Plan.ENTERPRISE)
    return tenant


async def test_get_storage_states_plan_and_retention(
    client: httpx.AsyncClient, tenant: Tenant, db_backend: str
) -> None:
    resp = await client.get("/api/v1/org/storage", headers=tenant.api())
    assert resp.status_code == 200
    body = resp.json()
    assert body["plan"] == "pro"
    assert body["retention_days"] == 365
    assert body["storage"] == "platform"
    assert body["bucket"] is None
    agent = await client.get("/api/v1/org/storage", headers=tenant.api("agent"))
    assert agent.status_code == 403
    assert agent.json() == {"status_code": 403, "detail": "This needs an admin."}


async def test_non_enterprise_gets_403(
    client: httpx.AsyncClient, tenant: Tenant, auth_s3: AuthS3
) -> None:
    for body in ({"retention_days": 90}, auth_s3.body()):
        resp = await client.patch("/api/v1/org/storage", json=body, headers=tenant.api())
        assert resp.status_code == 403
        assert "enterprise plan" in resp.json()["detail"]
        assert "pro plan" in resp.json()["detail"]
    assert auth_s3.object_keys() == set()


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"access_key_id": "AKIANOSUCHKEY000"}, "Wrong credentials"),
        ({"secret_access_key": "not-the-secret-at-all"}, "Wrong credentials"),
        ({"bucket": "no-such-bucket-here"}, "No such bucket"),
        ("read-only", "No permission: this key may not write objects"),
        ({"endpoint_url": "http://127.0.0.1:9"}, "cannot be reached"),
        ({"bucket": "Bad_Name"}, "not a valid bucket name"),
        ({"endpoint_url": "ftp://x"}, "endpoint_url"),
    ],
)
async def test_bad_bucket_settings_are_refused_and_nothing_saved(
    client: httpx.AsyncClient, tenant: Tenant, auth_s3: AuthS3, change: Any, words: str
) -> None:
    await _enterprise(tenant)
    if change == "read-only":
        change = {"access_key_id": auth_s3.ro[0], "secret_access_key": auth_s3.ro[1]}
    resp = await client.patch(
        "/api/v1/org/storage", json=auth_s3.body(**change), headers=tenant.api()
    )
    assert resp.status_code in (400, 422), resp.text
    assert words in resp.json()["detail"]
    org = await Org.get(id=tenant.org.id)
    assert org.bucket_name is None
    assert org.bucket_secret_encrypted is None
    assert auth_s3.object_keys() == set()


async def test_own_bucket_saved_new_recordings_go_there_old_stay_readable(
    client: httpx.AsyncClient,
    tenant: Tenant,
    auth_s3: AuthS3,
    speech: SpeechRecording,
    seed: SeedRecording,
    db_backend: str,
) -> None:
    await _enterprise(tenant)
    org = await Org.get(id=tenant.org.id)
    now = datetime.now(UTC)
    before, _ = await seed(org, now - timedelta(days=1))
    keys_before = auth_s3.object_keys()

    resp = await client.patch("/api/v1/org/storage", json=auth_s3.body(), headers=tenant.api())
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["storage"] == "own bucket"
    assert body["bucket"] == auth_s3.bucket
    assert body["secret_access_key_last4"] == auth_s3.rw[1][-4:]
    assert auth_s3.rw[1] not in resp.text
    # The probe object is gone again; the secret is stored encrypted.
    assert auth_s3.object_keys() == keys_before
    org = await Org.get(id=tenant.org.id)
    assert org.bucket_secret_encrypted
    assert auth_s3.rw[1] not in org.bucket_secret_encrypted
    got = await client.get("/api/v1/org/storage", headers=tenant.api())
    assert got.json() == body

    after, rec = await seed(org, now)
    assert rec.storage_target == "org"
    assert f"calls/{rec.storage_key}" in auth_s3.object_keys()
    for call in (before, after):
        dl = await client.get(f"/api/v1/calls/{call.id}/recording", headers=tenant.api())
        assert dl.status_code == 200
        assert dl.content == speech.mp3
    old = await Recording.get(call_id=before.id)
    assert old.storage_target == "platform"

    # Moving away while recordings are in the bucket would strand them: refused.
    moved = await client.patch(
        "/api/v1/org/storage", json={"prefix": "elsewhere"}, headers=tenant.api()
    )
    assert moved.status_code == 409
    assert "recording(s) are stored" in moved.json()["detail"]
    # Rotating the secret is fine, and a blank secret keeps the stored one.
    same = await client.patch(
        "/api/v1/org/storage", json={"region": "us-east-1"}, headers=tenant.api()
    )
    assert same.status_code == 200, same.text


async def test_retention_days_for_enterprise(
    client: httpx.AsyncClient,
    tenant: Tenant,
    seed: SeedRecording,
) -> None:
    await _enterprise(tenant)
    org = await Org.get(id=tenant.org.id)
    call, rec = await seed(org, datetime.now(UTC) - timedelta(days=5))
    assert rec.purge_at is None
    resp = await client.patch(
        "/api/v1/org/storage", json={"retention_days": 90}, headers=tenant.api()
    )
    assert resp.status_code == 200
    assert resp.json()["retention_days"] == 90
    fresh = await Recording.get(id=rec.id)
    assert fresh.purge_at == call.started_at + timedelta(days=90)
    forever = await client.patch(
        "/api/v1/org/storage", json={"retention_days": None}, headers=tenant.api()
    )
    assert forever.json()["retention_days"] is None
    assert (await Recording.get(id=rec.id)).purge_at is None
    for bad in ({"retention_days": 0}, {"retention_days": "ten"}, {"plan": "free"}):
        r = await client.patch("/api/v1/org/storage", json=bad, headers=tenant.api())
        assert r.status_code == 400, r.text
        assert r.json()["status_code"] == 400


async def test_storage_page(client: httpx.AsyncClient, tenant: Tenant, auth_s3: AuthS3) -> None:
    token = await login(client, tenant.agent.email)
    denied = await client.get("/settings/storage", headers={"Accept": "text/html"})
    assert denied.status_code == 403
    assert "Only admins" in denied.text
    assert "<html" in denied.text.lower()

    client.cookies.clear()
    token = await login(client, tenant.admin.email)
    page = await client.get("/settings/storage", headers={"Accept": "text/html"})
    assert page.status_code == 200
    for words in ("30 days", "365 days", "730 days", "set by you", "pro</strong> plan"):
        assert words in page.text
    assert "enterprise plan" in page.text  # the bucket form is not offered
    assert 'name="secret_access_key"' not in page.text

    await _enterprise(tenant)
    form = {"_csrf_token": token, "action": "bucket", **auth_s3.body(bucket="no-such-bucket-xyz")}
    bad = await client.post("/settings/storage", data=form, headers={"Accept": "text/html"})
    assert bad.status_code == 422
    assert "No such bucket" in bad.text
    assert auth_s3.rw[1] not in bad.text
    good = await client.post(
        "/settings/storage",
        data={"_csrf_token": token, "action": "bucket", **auth_s3.body()},
        headers={"Accept": "text/html"},
    )
    assert good.status_code == 200
    assert "Saved." in good.text
    assert auth_s3.rw[1] not in good.text
    assert auth_s3.rw[1][-4:] in good.text
    days = await client.post(
        "/settings/storage",
        data={"_csrf_token": token, "action": "retention", "retention_days": "120"},
        headers={"HX-Request": "true"},
    )
    assert days.status_code == 200
    assert "120 days" in days.text
    assert (await Org.get(id=tenant.org.id)).retention_days == 120


async def test_api_keys_page(client: httpx.AsyncClient, tenant: Tenant) -> None:
    token = await login(client, tenant.agent.email)
    assert (await client.get("/settings/api-keys")).status_code == 403
    client.cookies.clear()
    token = await login(client, tenant.admin.email)
    page = await client.get("/settings/api-keys")
    assert page.status_code == 200
    assert "never" in page.text

    created = await client.post(
        "/settings/api-keys", data={"_csrf_token": token, "name": "pipeline", "role": "agent"}
    )
    assert created.status_code == 200
    start = created.text.index("data-new-key>") + len("data-new-key>")
    key = created.text[start : created.text.index("</code>", start)]
    assert key.startswith("tk_")
    # Shown once: the list never shows it again.
    again = await client.get("/settings/api-keys")
    assert key not in again.text
    assert key.split("_")[1] in again.text

    used = await client.get("/api/v1/assistants", headers={"Authorization": f"Bearer {key}"})
    assert used.status_code == 200
    listed = await client.get("/settings/api-keys")
    row = listed.text[listed.text.index('<th scope="row">pipeline') :]
    assert "UTC</time>" in row.split("</tr>")[0]

    from web.models import ApiKey

    row_id = (await ApiKey.get(name="pipeline")).id
    revoked = await client.post(f"/settings/api-keys/{row_id}/revoke", data={"_csrf_token": token})
    assert revoked.status_code == 200
    assert "revoked" in revoked.text
    refused = await client.get("/api/v1/assistants", headers={"Authorization": f"Bearer {key}"})
    assert refused.status_code == 401
    other = await make_tenant("Other org")
    other_key = await ApiKey.filter(org_id=other.org.id).first()
    assert other_key is not None
    cross = await client.post(
        f"/settings/api-keys/{other_key.id}/revoke", data={"_csrf_token": token}
    )
    assert cross.status_code == 404
    assert (await ApiKey.get(id=other_key.id)).revoked_at is None


async def test_legal_hold(
    client: httpx.AsyncClient,
    app: Litestar,
    settings: Settings,
    tenant: Tenant,
    seed: SeedRecording,
    db_backend: str,
) -> None:
    from web.recordings.jobs import purge

    org = await Org.get(id=tenant.org.id)
    call, _ = await seed(org, datetime.now(UTC) - timedelta(days=400))
    url = f"/api/v1/calls/{call.id}/legal-hold"
    agent = await client.put(url, json={"legal_hold": True}, headers=tenant.api("agent"))
    assert agent.status_code == 403
    bad = await client.put(url, json={"legal_hold": "yes"}, headers=tenant.api())
    assert bad.status_code == 400
    on = await client.put(url, json={"legal_hold": True}, headers=tenant.api())
    assert on.status_code == 200
    assert on.json()["legal_hold"] is True
    assert await purge.purge_due(settings, app.state.storages) == 0

    token = await login(client, tenant.admin.email)
    panel = await client.get(f"/calls/{call.id}", headers={"HX-Request": "true"})
    assert "Release legal hold" in panel.text
    off = await client.post(
        f"/calls/{call.id}/legal-hold",
        data={"_csrf_token": token, "legal_hold": "false"},
        headers={"HX-Request": "true"},
    )
    assert off.status_code == 200
    assert "Put under legal hold" in off.text
    assert await purge.purge_due(settings, app.state.storages) == 1
    gone = await client.put(url, json={"legal_hold": True}, headers=tenant.api())
    assert gone.status_code == 409


async def _refused(client: httpx.AsyncClient, tenant: Tenant, body: dict[str, Any]) -> str:
    """PATCH the org's storage with ``body``: refused with 422 and nothing saved; the detail."""
    resp = await client.patch("/api/v1/org/storage", json=body, headers=tenant.api())
    assert resp.status_code == 422, resp.text
    assert (await Org.get(id=tenant.org.id)).bucket_name is None
    return str(resp.json()["detail"])


GUARDED = {"TALKTURO_ALLOW_PRIVATE_ENDPOINTS": "0"}


@pytest.mark.parametrize("env", [GUARDED], indirect=True)
@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1",
        "localhost",
        "2130706433",
        "0x7f.1",
        "0177.0.0.1",
        "127.1",
        "[::ffff:127.0.0.1]",
        "[::ffff:7f00:1]",
        "[::1]",
        "0.0.0.0",
        "169.254.169.254",
        "[fd00:ec2::254]",
        "10.0.0.5",
    ],
)
async def test_an_own_bucket_on_our_network_is_refused_without_a_request(
    client: httpx.AsyncClient, tenant: Tenant, auth_s3: AuthS3, host: str
) -> None:
    await _enterprise(tenant)
    port = auth_s3.endpoint.rsplit(":", 1)[1]
    before = auth_s3.object_keys()
    body = auth_s3.body(endpoint_url=f"http://{host}:{port}")
    detail = await _refused(client, tenant, body)
    # The guard's sentence: refused before any request was made.
    assert "public internet address" in detail
    assert port not in detail
    assert auth_s3.object_keys() == before


@pytest.mark.parametrize("env", [{"TALKTURO_ENDPOINT_PROBE_TIMEOUT": "0.5"}], indirect=True)
async def test_an_endpoint_that_accepts_and_never_answers_gives_422(
    client: httpx.AsyncClient, tenant: Tenant, auth_s3: AuthS3
) -> None:
    await _enterprise(tenant)
    # Connections complete in the kernel's backlog; nothing ever reads or answers them.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        port = str(silent.getsockname()[1])
        body = auth_s3.body(endpoint_url=f"http://127.0.0.1:{port}")
        detail = await _refused(client, tenant, body)
    assert "did not answer within 0.5 s" in detail
    assert port not in detail


async def test_an_endpoint_named_by_host_name_is_probed_at_the_checked_address(
    client: httpx.AsyncClient, tenant: Tenant, auth_s3: AuthS3
) -> None:
    await _enterprise(tenant)
    port = auth_s3.endpoint.rsplit(":", 1)[1]
    body = auth_s3.body(endpoint_url=f"http://localhost:{port}")
    resp = await client.patch("/api/v1/org/storage", json=body, headers=tenant.api())
    assert resp.status_code == 200, resp.text
    assert resp.json()["endpoint_url"] == f"http://localhost:{port}"


async def test_a_closed_port_and_a_refusing_host_read_the_same(
    client: httpx.AsyncClient, tenant: Tenant, auth_s3: AuthS3
) -> None:
    await _enterprise(tenant)
    details = []
    for endpoint in (f"http://127.0.0.1:{free_port()}", "http://127.0.0.1:9"):
        body = auth_s3.body(endpoint_url=endpoint)
        details.append(await _refused(client, tenant, body))
    assert details[0] == details[1]
