"""What every handler may ask for by name: ``settings`` and ``storages`` (the app's)."""

from __future__ import annotations

from litestar.datastructures import State
from litestar.di import Provide

from web.settings import Settings
from web.storage import Storages


def app_settings(state: State) -> Settings:
    """The settings the app was created with."""
    settings: Settings = state.settings
    return settings


def app_storages(state: State) -> Storages:
    """The storages opened in the app's lifespan."""
    storages: Storages = state.storages
    return storages


APP_DEPENDENCIES = {
    "settings": Provide(app_settings, sync_to_thread=False),
    "storages": Provide(app_storages, sync_to_thread=False),
}
