"""A full disk: readiness names the data directory, and signing in never fails on a counter.

The data directory test fills a real tmpfs of its own (it needs the right to mount, as
root has; elsewhere it is skipped with the reason). The database's full disk is injected
with triggers that fail writes the way a full disk does, on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from tortoise import connections

from tests.conftest import PASSWORD, Tenant, app_client, make_env
from tests.ingest.conftest import tmpfs
from web import ratelimit
from web.app import create_app
from web.settings import load_settings


@pytest.fixture
def small_tmpfs(tmp_path: Path) -> Iterator[Path]:
    """A 32 MiB tmpfs mounted for this test only."""
    with tmpfs(tmp_path / "small-disk", "32m") as mount:
        yield mount


def _fill(directory: Path) -> Path:
    """Write zeros into ``directory`` until its file system is full."""
    filler = directory / "filler"
    with filler.open("wb") as fh, contextlib.suppress(OSError):
        while True:
            fh.write(b"\0" * (1 << 20))
            fh.flush()
    return filler


def _remount(mount: Path, mode: str) -> None:
    subprocess.run(["mount", "-o", f"remount,{mode}", str(mount)], check=True)


async def test_readyz_names_the_data_directory_when_it_is_full_or_read_only(
    small_tmpfs: Path, db_url: str
) -> None:
    data = small_tmpfs / "data"
    app = create_app(load_settings(make_env(data, db_url)))
    async with app_client(app) as client:
        assert (await client.get("/readyz")).status_code == 200
        filler = _fill(small_tmpfs)
        resp = await client.get("/readyz")
        assert resp.status_code == 503
        problem = resp.json()["problems"]["data_dir"]
        assert str(data) in problem
        assert "full" in problem
        filler.unlink()
        assert (await client.get("/readyz")).status_code == 200
        _remount(small_tmpfs, "ro")
        try:
            resp = await client.get("/readyz")
            assert resp.status_code == 503
            assert str(data) in resp.json()["problems"]["data_dir"]
            assert "cannot be written" in resp.json()["problems"]["data_dir"]
        finally:
            _remount(small_tmpfs, "rw")


_SQLITE_FULL = """
CREATE TRIGGER full_rc_i BEFORE INSERT ON rate_counter
BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END;
CREATE TRIGGER full_rc_u BEFORE UPDATE ON rate_counter
BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END;
CREATE TRIGGER full_us_i BEFORE INSERT ON user_session
BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END;
CREATE TRIGGER full_user_u BEFORE UPDATE ON "user"
BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END;
"""
_SQLITE_FREE = """
DROP TRIGGER IF EXISTS full_rc_i; DROP TRIGGER IF EXISTS full_rc_u;
DROP TRIGGER IF EXISTS full_us_i; DROP TRIGGER IF EXISTS full_user_u;
"""
_PG_FULL = """
CREATE OR REPLACE FUNCTION test_disk_full() RETURNS trigger AS $$
BEGIN RAISE EXCEPTION 'could not extend file: No space left on device' USING ERRCODE = 'disk_full';
END $$ LANGUAGE plpgsql;
CREATE TRIGGER full_rc BEFORE INSERT OR UPDATE ON rate_counter
    FOR EACH ROW EXECUTE FUNCTION test_disk_full();
CREATE TRIGGER full_us BEFORE INSERT ON user_session
    FOR EACH ROW EXECUTE FUNCTION test_disk_full();
CREATE TRIGGER full_user BEFORE UPDATE ON "user"
    FOR EACH ROW EXECUTE FUNCTION test_disk_full();
"""
_PG_FREE = """
DROP TRIGGER IF EXISTS full_rc ON rate_counter; DROP TRIGGER IF EXISTS full_us ON user_session;
DROP TRIGGER IF EXISTS full_user ON "user"; DROP FUNCTION IF EXISTS test_disk_full();
"""


@pytest.fixture
async def database_full(client: httpx.AsyncClient, db_backend: str) -> AsyncIterator[None]:
    """Writes of sign-in (counters, sessions, last sign-in) fail as on a full disk."""
    conn = connections.get("default")
    full, free = (_PG_FULL, _PG_FREE) if db_backend == "postgres" else (_SQLITE_FULL, _SQLITE_FREE)
    await conn.execute_script(full)
    try:
        yield
    finally:
        await conn.execute_script(free)
        ratelimit._fallback.clear()


async def _sign_in(client: httpx.AsyncClient, email: str, password: str) -> httpx.Response:
    page = await client.get("/login")
    token = page.cookies.get("talkturo_csrf") or client.cookies.get("talkturo_csrf")
    return await client.post(
        "/login",
        data={"email": email, "password": password, "_csrf_token": token},
        headers={"Accept": "text/html"},
        follow_redirects=False,
    )


async def test_sign_in_when_the_database_cannot_be_written(
    client: httpx.AsyncClient, tenant: Tenant, database_full: None
) -> None:
    # A wrong password is still just that: the failed counter write is not the user's problem.
    wrong = await _sign_in(client, tenant.agent.email, "not-the-password")
    assert wrong.status_code == 401, wrong.text
    assert "Wrong email or password" in wrong.text
    # The right one: a clear message on the form (the session cannot be saved), never a 500.
    right = await _sign_in(client, tenant.agent.email, PASSWORD)
    assert right.status_code == 503, right.text
    assert "disk" in right.text
    assert 'name="password"' in right.text
    # Failures are still limited while the counters cannot be written (counted in memory).
    for _ in range(ratelimit.LOGIN_PER_EMAIL.count - 1):
        assert (await _sign_in(client, tenant.admin.email, "nope")).status_code == 401
    assert (await _sign_in(client, tenant.admin.email, "nope")).status_code == 401
    limited = await _sign_in(client, tenant.admin.email, PASSWORD)
    assert limited.status_code == 429
    assert "Too many requests" in limited.text


async def test_sign_in_works_again_once_the_database_can_be_written(
    client: httpx.AsyncClient, tenant: Tenant, db_backend: str
) -> None:
    resp = await _sign_in(client, tenant.agent.email, PASSWORD)
    assert resp.status_code == 303
    assert (await client.get("/calls")).status_code == 200
