"""A PATH without some commands, to run things as on a machine that lacks them."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path


def path_without(directory: Path, hidden: Iterable[str]) -> str:
    """A PATH (one folder of symlinks) holding every command of the current one but ``hidden``."""
    skip = set(hidden)
    directory.mkdir()
    for entry in os.environ.get("PATH", "").split(os.pathsep):
        folder = Path(entry)
        if not folder.is_dir():
            continue
        for exe in folder.iterdir():
            link = directory / exe.name
            if exe.name in skip or link.exists() or link.is_symlink():
                continue
            link.symlink_to(exe)
    return str(directory)
