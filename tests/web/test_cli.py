"""The ``talkturo`` command line, run as a real subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tests.conftest import ROOT, make_env


def talkturo(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """Run ``talkturo ARGS`` with only our settings in the environment."""
    full = {"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/tmp"), **env}
    return subprocess.run(
        [sys.executable, "-m", "web", *args],
        env=full,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def cli_env(env: dict[str, str]) -> dict[str, str]:
    return env


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["nonsense"],
        ["org", "create"],
        ["org", "create", "Acme", "--plan", "gold"],
        [
            "user",
            "create",
            "--org",
            "not-a-uuid",
            "--email",
            "a@b.co",
            "--password",
            "x" * 10,
            "--role",
            "admin",
        ],
        [
            "user",
            "create",
            "--org",
            str(uuid.uuid4()),
            "--email",
            "a@b.co",
            "--password",
            "x" * 10,
            "--role",
            "boss",
        ],
        ["apikey", "create", "--org", str(uuid.uuid4())],
        ["serve", "--port", "99999"],
        ["purge", "--now"],
    ],
)
def test_bad_arguments_exit_2_with_one_line(cli_env: dict[str, str], args: list[str]) -> None:
    result = talkturo(cli_env, *args)
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr


def test_bad_setting_names_the_setting(tmp_path: Path) -> None:
    env = make_env(tmp_path / "data", "mysql://nope")
    result = talkturo(env, "migrate")
    assert result.returncode == 2
    assert "TALKTURO_DATABASE_URL" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_create_org_user_and_key_print_only_the_id(
    cli_env: dict[str, str], db_backend: str
) -> None:
    org = talkturo(cli_env, "org", "create", "Acme Dental", "--plan", "business")
    assert org.returncode == 0, org.stderr
    org_id = org.stdout.strip()
    assert str(uuid.UUID(org_id)) == org_id
    user = talkturo(
        cli_env,
        "user",
        "create",
        "--org",
        org_id,
        "--email",
        "Ann@Acme.test",
        "--password",
        "long-enough-pw",
        "--role",
        "agent",
    )
    assert user.returncode == 0, user.stderr
    uuid.UUID(user.stdout.strip())
    dup = talkturo(
        cli_env,
        "user",
        "create",
        "--org",
        org_id,
        "--email",
        "ann@acme.test",
        "--password",
        "long-enough-pw",
        "--role",
        "agent",
    )
    assert dup.returncode == 2
    assert "already exists" in dup.stderr
    key = talkturo(cli_env, "apikey", "create", "--org", org_id, "--name", "pipeline")
    assert key.returncode == 0, key.stderr
    assert key.stdout.count("\n") == 1
    assert key.stdout.startswith("tk_")
    assert key.stdout.strip() not in key.stderr


def test_migrate_on_an_empty_database(
    tmp_path: Path, db_backend: str, request: pytest.FixtureRequest
) -> None:
    if db_backend == "sqlite":
        url = f"sqlite://{tmp_path}/fresh.sqlite3"
    else:
        # A brand-new, empty PostgreSQL database, not the session's migrated one.
        import asyncpg

        from tests.conftest import PG_ADMIN_DSN, in_thread

        request.getfixturevalue("pg_database")
        name = f"talkturo_fresh_{uuid.uuid4().hex[:8]}"

        async def sql(stmt: str) -> None:
            conn = await asyncpg.connect(PG_ADMIN_DSN)
            await conn.execute(stmt)
            await conn.close()

        in_thread(sql(f'CREATE DATABASE "{name}"'))
        request.addfinalizer(lambda: in_thread(sql(f'DROP DATABASE "{name}" WITH (FORCE)')))
        url = f"{PG_ADMIN_DSN.rsplit('/', 1)[0]}/{name}"
    env = make_env(tmp_path / "data", url)
    first = talkturo(env, "migrate")
    assert first.returncode == 0, first.stderr
    again = talkturo(env, "migrate")
    assert again.returncode == 0, again.stderr
    org = talkturo(env, "org", "create", "After migrate", "--plan", "free")
    assert org.returncode == 0, org.stderr


def test_purge_reports_nothing_due(cli_env: dict[str, str]) -> None:
    result = talkturo(cli_env, "purge", "--dry-run")
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
