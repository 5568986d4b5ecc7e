"""Fixtures shared by every test: real databases, real servers, real users.

SQLite tests get a fresh database file per test (copied from a migrated template);
PostgreSQL tests share one database per session, migrated once and truncated
between tests. A test that skips because a tool or service is missing (PostgreSQL,
espeak-ng, sox, ...) fails instead, unless TALKTURO_TEST_ALLOW_SKIP=1 asks for skips;
`make test` installs or checks all of them first (.ci/setup-system).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from litestar import Litestar

from web.app import create_app
from web.db import close_db, migrate, open_db
from web.models import Org, Plan, Role, User
from web.services.accounts import create_api_key, create_org, create_user
from web.settings import Settings, load_settings

ROOT = Path(__file__).resolve().parent.parent
PG_ADMIN_DSN = os.environ.get("TALKTURO_TEST_PG", "postgres://postgres@127.0.0.1:5432/test")
PASSWORD = "correct-horse-battery"
ALLOW_SKIP = os.environ.get("TALKTURO_TEST_ALLOW_SKIP") == "1"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Turn a skip for something missing into a failure: the suite never passes by skipping.

    Only skips written into a test (``skip``/``skipif`` marks) stay skips.
    """
    outcome = yield
    report = outcome.get_result()
    if not report.skipped or ALLOW_SKIP or hasattr(report, "wasxfail"):
        return
    if item.get_closest_marker("skip") or item.get_closest_marker("skipif"):
        return
    reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
    report.outcome = "failed"
    report.longrepr = (
        f"{reason} (a missing tool or service fails the run: `make test` installs or names "
        "what is missing; set TALKTURO_TEST_ALLOW_SKIP=1 to skip instead)"
    )


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(
    port: int, timeout: float = 20.0, proc: subprocess.Popen[Any] | None = None
) -> None:
    """Block until something accepts connections on ``port``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before listening")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listened on {port} within {timeout}s")


async def _pg_reachable() -> str | None:
    try:
        conn = await asyncpg.connect(PG_ADMIN_DSN, timeout=3)
    except Exception as exc:  # any failure means: skip with the reason
        return f"PostgreSQL not reachable at {PG_ADMIN_DSN}: {exc}"
    await conn.close()
    return None


def in_thread(coro: Any) -> Any:
    """Run a coroutine to completion on a loop of its own (safe inside a running loop)."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


async def _migrate_fresh(url: str) -> None:
    from web.settings import DatabaseSettings

    await migrate(DatabaseSettings(url))
    await close_db()


async def _admin_sql(sql: str) -> None:
    conn = await asyncpg.connect(PG_ADMIN_DSN)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def empty_pg_database(prefix: str) -> tuple[str, Callable[[], None]]:
    """A brand-new, empty PostgreSQL database (not the session's migrated one): its URL,
    and a function that drops it."""
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    in_thread(_admin_sql(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        in_thread(_admin_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))

    return f"{PG_ADMIN_DSN.rsplit('/', 1)[0]}/{name}", drop


def talkturo(
    env: dict[str, str], *args: str, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run ``talkturo ARGS`` as a subprocess with only our settings in the environment."""
    full = {"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/tmp"), **env}
    return subprocess.run(
        [sys.executable, "-m", "web", *args],
        env=full,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """A fresh PostgreSQL database for this test session, migrated once, dropped at the end."""
    reason = in_thread(_pg_reachable())
    if reason and os.environ.get("TALKTURO_TEST_REQUIRE_PG"):
        pytest.fail(reason)
    if reason:
        pytest.skip(reason)
    name = f"talkturo_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    in_thread(_admin_sql(f'CREATE DATABASE "{name}"'))
    url = f"{PG_ADMIN_DSN.rsplit('/', 1)[0]}/{name}"
    in_thread(_migrate_fresh(url))
    yield url
    in_thread(_admin_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file that each test copies instead of migrating again."""
    path = tmp_path_factory.mktemp("sqlite-template") / "talkturo.sqlite3"
    in_thread(_migrate_fresh(f"sqlite://{path}"))
    return path


async def _truncate(url: str) -> None:
    conn = await asyncpg.connect(url.replace("postgres://", "postgresql://", 1))
    tables = await conn.fetch(
        "SELECT tablename FROM pg_tables"
        " WHERE schemaname='public' AND tablename NOT LIKE 'tortoise%'"
    )
    names = ", ".join(f'"{r["tablename"]}"' for r in tables)
    if names:
        await conn.execute(f"TRUNCATE {names} CASCADE")
    await conn.close()


def make_env(data_dir: Path, db_url: str, **extra: str) -> dict[str, str]:
    """The environment of a test process: only our settings, isolated from the developer's."""
    env = {
        "TALKTURO_DATA_DIR": str(data_dir),
        "TALKTURO_DATABASE_URL": db_url,
        "TALKTURO_SECRET_KEY": "test-secret-key-0123456789abcdef",
        "TALKTURO_EMBEDDED_WORKER": "0",
        # moto_server and webhook receivers run on loopback; guard tests set "0".
        "TALKTURO_ALLOW_PRIVATE_ENDPOINTS": "1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": "us-east-1",
    }
    env.update(extra)
    return env


def make_s3_env(
    data_dir: Path, db_url: str, endpoint: str, bucket: str, prefix: str = "rec", **extra: str
) -> dict[str, str]:
    """:func:`make_env` with the platform's recordings in ``bucket`` (under ``prefix``) of
    the S3 server at ``endpoint``."""
    return make_env(
        data_dir,
        db_url,
        TALKTURO_STORAGE_URL=f"s3://{bucket}/{prefix}",
        TALKTURO_S3_ENDPOINT_URL=endpoint,
        **extra,
    )


def storage_env(request: pytest.FixtureRequest, storage_kind: str) -> dict[str, str]:
    """The settings for ``storage_kind``: none for local storage (the default), a fresh
    bucket on the session's moto_server for ``s3``."""
    if storage_kind != "s3":
        return {}
    moto: MotoServer = request.getfixturevalue("moto_server")
    return {
        "TALKTURO_STORAGE_URL": f"s3://{create_bucket(moto.endpoint)}/rec",
        "TALKTURO_S3_ENDPOINT_URL": moto.endpoint,
    }


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_backend(request: pytest.FixtureRequest) -> str:
    """Runs the test once on SQLite and once on PostgreSQL."""
    return str(request.param)


@pytest.fixture
async def db_url(
    request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path
) -> AsyncIterator[str]:
    """A clean, migrated database URL: PostgreSQL when the test uses ``db_backend`` = postgres."""
    backend = (
        request.getfixturevalue("db_backend") if "db_backend" in request.fixturenames else "sqlite"
    )
    if backend == "postgres":
        url = str(request.getfixturevalue("pg_database"))
        in_thread(_truncate(url))
        yield url
        return
    path = tmp_path / "talkturo.sqlite3"
    shutil.copy(sqlite_template, path)
    yield f"sqlite://{path}"


@pytest.fixture
def env(tmp_path: Path, db_url: str) -> dict[str, str]:
    """The environment the app under test reads (local storage under tmp_path)."""
    return make_env(tmp_path / "data", db_url)


@pytest.fixture
def settings(env: dict[str, str]) -> Settings:
    """Settings built from :func:`env`, exactly as a process would build them."""
    return load_settings(env)


@pytest.fixture
async def db(settings: Settings) -> AsyncIterator[None]:
    """The ORM opened on the test database, for service-level tests without HTTP."""
    await open_db(settings.database)
    yield
    await close_db()


@pytest.fixture
def app(settings: Settings) -> Litestar:
    """The app built by the real factory."""
    return create_app(settings)


@asynccontextmanager
async def app_client(
    app: Litestar, base_url: str = "http://testserver.local"
) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client calling the app in THIS event loop, with its lifespan running.

    Use this rather than Litestar's AsyncTestClient, which runs the app on a loop in
    another thread: the ORM connections would then be split across two loops and the
    test's own queries (``await Call.filter(...)``) would leak a connection.
    """
    started, stop = asyncio.Event(), asyncio.Event()

    async def run_lifespan() -> None:
        # Entered and exited in one task of its own: the lifespan holds anyio cancel scopes.
        async with app.lifespan():
            started.set()
            await stop.wait()

    task = asyncio.create_task(run_lifespan())
    waiter = asyncio.create_task(started.wait())
    await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
    if task.done():
        waiter.cancel()
        task.result()  # raises the start-up error
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=base_url) as c:
            yield c
    finally:
        stop.set()
        await task


@pytest.fixture
async def client(app: Litestar) -> AsyncIterator[httpx.AsyncClient]:
    """An anonymous HTTP client on the app (lifespan runs; same event loop as the test)."""
    async with app_client(app) as c:
        yield c


@dataclass
class Tenant:
    """An org with an admin user, an agent user and admin/agent/ingest API keys."""

    org: Org
    admin: User
    agent: User
    admin_key: str
    agent_key: str
    ingest_key: str = ""

    def api(self, role: str = "admin") -> dict[str, str]:
        key = {"admin": self.admin_key, "ingest": self.ingest_key}.get(role, self.agent_key)
        return {"Authorization": f"Bearer {key}"}


async def post_call(
    client: httpx.AsyncClient, tenant: Tenant, assistant_id: str, **fields: object
) -> httpx.Response:
    """POST /api/v1/calls on ``assistant_id``: inbound from +1 415 555 0101 to
    +1 415 555 0100 unless ``fields`` say otherwise. The answer, unchecked."""
    return await client.post(
        "/api/v1/calls",
        json={
            "assistant_id": assistant_id,
            "direction": "inbound",
            "from_number": "+1 415 555 0101",
            "to_number": "+1 415 555 0100",
            **fields,
        },
        headers=tenant.api(),
    )


async def api_call(
    client: httpx.AsyncClient,
    tenant: Tenant,
    *,
    recording: bool = True,
    name: str = "Ava",
    direction: str = "inbound",
    from_number: str = "+1 415 555 0101",
    to_number: str = "+1 415 555 0100",
) -> tuple[str, str]:
    """A new assistant and a call on it, through the API: (assistant id, call id)."""
    asst = await client.post(
        "/api/v1/assistants",
        json={"name": name, "recording_enabled": recording},
        headers=tenant.api(),
    )
    assert asst.status_code == 201, asst.text
    call = await post_call(
        client,
        tenant,
        asst.json()["id"],
        direction=direction,
        from_number=from_number,
        to_number=to_number,
    )
    assert call.status_code == 201, call.text
    return str(asst.json()["id"]), str(call.json()["id"])


async def make_tenant(name: str, plan: Plan = Plan.PRO) -> Tenant:
    """Create an org with users and keys (the ORM must be open)."""
    org = await create_org(name, plan)
    slug = uuid.uuid4().hex[:8]
    admin = await create_user(org, f"admin-{slug}@example.com", PASSWORD, Role.ADMIN)
    agent = await create_user(org, f"agent-{slug}@example.com", PASSWORD, Role.AGENT)
    _, admin_key = await create_api_key(org, "admin", Role.ADMIN)
    _, agent_key = await create_api_key(org, "agent", Role.AGENT)
    _, ingest_key = await create_api_key(org, "ingest", Role.INGEST)
    return Tenant(org, admin, agent, admin_key, agent_key, ingest_key)


@pytest.fixture
async def tenant(client: httpx.AsyncClient) -> Tenant:
    """Org A, created inside the running app."""
    return await make_tenant("Org A")


@pytest.fixture
async def other_tenant(client: httpx.AsyncClient) -> Tenant:
    """Org B: must never see anything of org A."""
    return await make_tenant("Org B")


async def login(client: httpx.AsyncClient, email: str, password: str = PASSWORD) -> str:
    """Sign in through the real form; returns the CSRF token for later unsafe requests."""
    resp, token = await login_response(client, email, password)
    assert resp.status_code == 303, resp.text
    return token


async def login_response(
    client: httpx.AsyncClient, email: str, password: str = PASSWORD
) -> tuple[httpx.Response, str]:
    """Post the login form as a browser does: the answer (not followed), and the CSRF token."""
    page = await client.get("/login")
    token = page.cookies.get("talkturo_csrf") or client.cookies.get("talkturo_csrf")
    assert token, "the login page sets a CSRF cookie"
    resp = await client.post(
        "/login",
        data={"email": email, "password": password, "_csrf_token": token},
        follow_redirects=False,
    )
    return resp, str(token)


@dataclass
class ServerProcess:
    """``talkturo serve`` running as a real subprocess on a free port."""

    proc: subprocess.Popen[bytes]
    port: int
    env: dict[str, str]
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    def kill9(self) -> None:
        self.proc.kill()
        self.proc.wait(5)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def start_server(env: dict[str, str], log_path: Path, *args: str) -> ServerProcess:
    """Start ``talkturo serve`` with ``env`` and wait until it listens."""
    port = free_port()
    full_env = {"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/tmp"), **env}
    full_env["TALKTURO_PORT"] = str(port)
    with log_path.open("ab") as fh:
        proc = subprocess.Popen(
            [sys.executable, "-m", "web", "serve", *args],
            env=full_env,
            stdout=fh,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )
    server = ServerProcess(proc, port, full_env, log_path)
    try:
        wait_for_port(port, 60, proc)
    except Exception:
        server.stop()
        raise RuntimeError(f"server did not start:\n{server.log()}") from None
    return server


@pytest.fixture
def server_factory(tmp_path: Path) -> Iterator[Any]:
    """Start real server subprocesses; every one is stopped after the test."""
    started: list[ServerProcess] = []

    def factory(env: dict[str, str], *args: str) -> ServerProcess:
        s = start_server(env, tmp_path / f"server-{len(started)}.log", *args)
        started.append(s)
        return s

    yield factory
    for s in started:
        s.stop()


@dataclass
class MotoServer:
    """A real S3-protocol server (moto_server) on a loopback port."""

    proc: subprocess.Popen[bytes]
    port: int

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)

    def start(self) -> None:
        """Start it again on the same port (its buckets are gone)."""
        self.proc = _spawn_moto(self.port)


def _spawn_moto(port: int) -> subprocess.Popen[bytes]:
    exe = Path(sys.executable).with_name("moto_server")
    proc = subprocess.Popen(
        [str(exe), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_for_port(port, 30, proc)
    return proc


@pytest.fixture(scope="session")
def moto_server() -> Iterator[MotoServer]:
    """One moto_server for the session; tests make their own buckets (see ``s3_bucket``)."""
    port = free_port()
    server = MotoServer(_spawn_moto(port), port)
    yield server
    server.stop()


@pytest.fixture
def moto_server_private() -> Iterator[MotoServer]:
    """A moto_server of this test's own, for tests that stop and restart it."""
    port = free_port()
    server = MotoServer(_spawn_moto(port), port)
    yield server
    server.stop()


def aws_client(
    service: str, endpoint: str, key_id: str = "testing", secret: str = "testing"
) -> Any:
    """A plain boto3 client of ``service`` at ``endpoint`` (no code of ours involved)."""
    import boto3

    return boto3.client(
        service,
        endpoint_url=endpoint,
        aws_access_key_id=key_id,
        aws_secret_access_key=secret,
        region_name="us-east-1",
    )


def s3_client(endpoint: str, key_id: str = "testing", secret: str = "testing") -> Any:
    """A plain boto3 S3 client of ``endpoint`` (no code of ours involved)."""
    return aws_client("s3", endpoint, key_id, secret)


def s3_keys(
    endpoint: str, bucket: str, key_id: str = "testing", secret: str = "testing"
) -> set[str]:
    """Every object key in ``bucket``, read over plain HTTP (no code of ours involved)."""
    s3 = s3_client(endpoint, key_id, secret)
    keys: set[str] = set()
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        keys.update(str(o["Key"]) for o in page.get("Contents", []))
    return keys


def create_bucket(endpoint: str, name: str | None = None) -> str:
    """Create a bucket on an S3 endpoint over plain HTTP (no code of ours involved)."""
    name = name or f"tt-{uuid.uuid4().hex[:12]}"
    s3_client(endpoint).create_bucket(Bucket=name)
    return name


@pytest.fixture
def s3_bucket(moto_server: MotoServer) -> str:
    """A fresh, empty bucket on the session's moto_server."""
    return create_bucket(moto_server.endpoint)


def run_async(coro: Any) -> Any:
    """Run a coroutine from sync test code."""
    return asyncio.get_event_loop().run_until_complete(coro)


_EXIT_STATUS = pytest.StashKey[int]()
# Non-daemon threads by the test during which they started: the leak guard names the test.
_THREAD_ORIGIN: dict[int | None, str] = {}


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Any:
    before = {t.ident for t in threading.enumerate()}
    try:
        return (yield)
    finally:
        for t in threading.enumerate():
            if t.ident not in before and not t.daemon:
                _THREAD_ORIGIN.setdefault(t.ident, item.nodeid)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Keep the run's status for the leak guard (which runs after the summary is printed)."""
    session.config.stash[_EXIT_STATUS] = int(exitstatus)


def pytest_unconfigure(config: pytest.Config) -> None:
    """Never let a leaked non-daemon thread hang the run after the results are in.

    Runs after the terminal summary, so the pass/fail counts are printed either way.
    """
    leaked = [
        f"{t.name} (started during {_THREAD_ORIGIN.get(t.ident, 'no test')})"
        for t in threading.enumerate()
        if t is not threading.main_thread() and not t.daemon and t.is_alive()
    ]
    if leaked:
        sys.stderr.write(f"\nleaked threads at exit (a resource was not closed): {leaked}\n")
        sys.stderr.flush()
        sys.stdout.flush()
        os._exit(config.stash.get(_EXIT_STATUS, 1))
