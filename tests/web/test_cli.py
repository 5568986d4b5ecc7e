"""The ``talkturo`` command line, run as a real subprocess."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from tests.conftest import empty_pg_database, make_env, talkturo


@pytest.fixture
def cli_env(env: dict[str, str]) -> dict[str, str]:
    return env


def _user_create(org: str, email: str, role: str, password: str = "long-enough-pw") -> list[str]:
    """The arguments of ``talkturo user create``."""
    return [
        "user",
        "create",
        "--org",
        org,
        "--email",
        email,
        "--password",
        password,
        "--role",
        role,
    ]


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["nonsense"],
        ["org", "create"],
        ["org", "create", "Acme", "--plan", "gold"],
        _user_create("not-a-uuid", "a@b.co", "admin", "x" * 10),
        _user_create(str(uuid.uuid4()), "a@b.co", "boss", "x" * 10),
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
    user = talkturo(cli_env, *_user_create(org_id, "Ann@Acme.test", "agent"))
    assert user.returncode == 0, user.stderr
    uuid.UUID(user.stdout.strip())
    dup = talkturo(cli_env, *_user_create(org_id, "ann@acme.test", "agent"))
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
        request.getfixturevalue("pg_database")
        url, drop = empty_pg_database("talkturo_fresh")
        request.addfinalizer(drop)
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


def test_serve_takes_the_long_lived_heap_out_of_the_collector() -> None:
    """Before serving, what lives as long as the process is frozen and young objects are
    collected less often (every media frame allocates; the old heap is not walked again)."""
    import gc

    from web.cli import _settle_heap

    threshold = gc.get_threshold()
    try:
        _settle_heap()
        assert gc.get_freeze_count() > 1000
        assert gc.get_threshold()[0] == 10_000
    finally:
        gc.unfreeze()
        gc.set_threshold(*threshold)
