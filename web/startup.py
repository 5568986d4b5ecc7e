"""Start-up checks: a process with a bad setting stops at once, naming the setting."""

from __future__ import annotations

from tortoise import connections

from web.db import close_db, migrate, open_db
from web.settings import Settings, SettingsError
from web.storage import Storages


async def check_database(settings: Settings, *, apply_migrations: bool) -> None:
    """Reach the database (and migrate it); SettingsError naming the URL setting otherwise."""
    try:
        if apply_migrations:
            await migrate(settings.database)
        await open_db(settings.database)
        try:
            await connections.get("default").execute_query("SELECT 1")
        finally:
            await close_db()
    except SettingsError:
        raise
    except Exception as exc:  # whatever the driver raises, the operator needs one line
        raise SettingsError(
            f"TALKTURO_DATABASE_URL: cannot use the database ({type(exc).__name__}: {exc})"
        ) from None


async def check_storage(settings: Settings) -> None:
    """Reach the platform storage (the bucket must exist); SettingsError otherwise."""
    try:
        async with Storages(settings) as storages:
            await storages.platform().probe()
    except Exception as exc:  # whatever the client raises, the operator needs one line
        raise SettingsError(f"TALKTURO_STORAGE_URL: {exc}") from None


async def validate(settings: Settings, *, apply_migrations: bool) -> None:
    """Everything a process needs before it serves or works."""
    await check_database(settings, apply_migrations=apply_migrations)
    await check_storage(settings)
