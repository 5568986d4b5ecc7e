"""The spool: a recording's MP3 on the disk of the host that made it, until storage has it.

A live stream appends to its spool file as the MP3 is produced; an upload decodes into it.
Once published, a spool is moved to the trash at once and deleted in the background.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import uuid
from pathlib import Path

from web.settings import Settings

PEAKS_SUFFIX = ".peaks.json"


def spool_paths(settings: Settings, call_id: uuid.UUID) -> tuple[Path, Path]:
    """The spool MP3 of a call and the peaks file beside it."""
    base = settings.spool_dir / "calls"
    base.mkdir(parents=True, exist_ok=True)
    return base / f"{call_id}.mp3", base / f"{call_id}{PEAKS_SUFFIX}"


def peaks_file(mp3: Path) -> Path:
    """The peaks file kept beside a spool MP3 while its upload waits for a retry."""
    return mp3.with_suffix(PEAKS_SUFFIX)


def remove_spool(mp3: Path) -> None:
    """Delete a spool MP3 and its peaks file."""
    mp3.unlink(missing_ok=True)
    peaks_file(mp3).unlink(missing_ok=True)


class SpoolFile:
    """A spool MP3 open for appending, written unbuffered (what was written is in the OS)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.size = 0
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND, 0o600)

    def write(self, data: bytes) -> None:
        """Append ``data`` whole, even if killed right after."""
        view = memoryview(data)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]
        self.size += len(data)

    def close(self) -> None:
        """Close the file; safe to call twice."""
        fd, self._fd = self._fd, -1
        if fd >= 0:
            with contextlib.suppress(OSError):
                os.close(fd)


def trash_dir(settings: Settings) -> Path:
    """Where published spools wait to be deleted (beside the spool, on the same disk)."""
    return settings.data_dir / "spool-trash"


def move_to_trash(settings: Settings, mp3: Path) -> list[Path]:
    """Move a spool MP3 and its peaks file into the trash; returns where they went."""
    trash = trash_dir(settings)
    trash.mkdir(parents=True, exist_ok=True)
    moved = []
    for path in (mp3, peaks_file(mp3)):
        target = trash / f"{secrets.token_hex(8)}-{path.name}"
        try:
            path.rename(target)
        except FileNotFoundError:
            continue
        except OSError:
            path.unlink(missing_ok=True)  # another disk: delete it here and now
            continue
        moved.append(target)
    return moved


def _unlink_all(paths: list[Path]) -> None:
    for path in paths:
        path.unlink(missing_ok=True)


def empty_trash(settings: Settings) -> int:
    """Delete every file in the spool trash; returns how many."""
    removed = 0
    with contextlib.suppress(FileNotFoundError):
        for path in trash_dir(settings).iterdir():
            path.unlink(missing_ok=True)
            removed += 1
    return removed


_DELETING: set[asyncio.Task[None]] = set()


async def discard_spool(settings: Settings, mp3: Path) -> None:
    """Take a published spool out of the spool at once; delete it in the background.

    Unlinking an hour-long call's file costs milliseconds that the hang-up need not wait for.
    A crash before the delete leaves it in the trash, which the worker empties.
    """
    moved = await asyncio.to_thread(move_to_trash, settings, mp3)
    if moved:
        task = asyncio.get_running_loop().create_task(asyncio.to_thread(_unlink_all, moved))
        _DELETING.add(task)
        task.add_done_callback(_DELETING.discard)
