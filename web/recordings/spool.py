"""The spool: a recording's MP3 on the disk of the host that made it, until storage has it.

A live stream appends to its spool file as the MP3 is produced; an upload decodes into it.
Once published, a spool is moved to the trash at once and deleted in the background.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import uuid
from pathlib import Path
from typing import Any

from web.settings import Settings

PEAKS_SUFFIX = ".peaks.json"
# Beside a live spool: the spans silenced so far (keypad tones, pauses), for recovery.
SPANS_SUFFIX = ".spans.json"


def spool_paths(settings: Settings, call_id: uuid.UUID) -> tuple[Path, Path]:
    """The spool MP3 of a call and the peaks file beside it."""
    base = settings.spool_dir / "calls"
    base.mkdir(parents=True, exist_ok=True)
    return base / f"{call_id}.mp3", base / f"{call_id}{PEAKS_SUFFIX}"


def peaks_file(mp3: Path) -> Path:
    """The peaks file kept beside a spool MP3 while its upload waits for a retry."""
    return mp3.with_suffix(PEAKS_SUFFIX)


def spans_file(mp3: Path) -> Path:
    """The spans file kept beside a live spool MP3 (see :meth:`SpoolFile.write_spans`)."""
    return mp3.with_suffix(SPANS_SUFFIX)


def read_spans(mp3: Path) -> dict[str, list[dict[str, Any]]] | None:
    """The spans a live stream noted beside its spool: ``redactions`` and ``pauses``.

    None when there is no such file or it cannot be read (then the row's spans are all).
    """
    try:
        data = json.loads(spans_file(mp3).read_bytes())
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict):
        return None
    spans: dict[str, list[dict[str, Any]]] = {}
    for name in ("redactions", "pauses"):
        items = data.get(name)
        spans[name] = [i for i in items if isinstance(i, dict)] if isinstance(items, list) else []
    return spans


def remove_spool(mp3: Path) -> None:
    """Delete a spool MP3 and the files beside it."""
    mp3.unlink(missing_ok=True)
    peaks_file(mp3).unlink(missing_ok=True)
    spans_file(mp3).unlink(missing_ok=True)


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

    def write_spans(self, redactions: list[dict[str, Any]], pauses: list[dict[str, Any]]) -> None:
        """Replace the spans file beside the spool whole (a crash leaves the old or the new).

        Recovery publishes a recording cut by a crash with these spans.
        """
        target = spans_file(self.path)
        temporary = target.with_name(target.name + ".tmp")
        temporary.write_bytes(json.dumps({"redactions": redactions, "pauses": pauses}).encode())
        os.replace(temporary, target)

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
    """Move a spool MP3 and its peaks file into the trash; returns where they went.

    The small spans file beside a live spool is deleted at once.
    """
    trash = trash_dir(settings)
    trash.mkdir(parents=True, exist_ok=True)
    moved = []
    spans_file(mp3).unlink(missing_ok=True)
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
