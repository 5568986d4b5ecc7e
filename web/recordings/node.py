"""Who this process is, and whether the process holding a claim is still alive.

A spool lives on the disk of the host that recorded the call: ``node`` names that host's
spool, ``worker`` this very process. Claims in the database name a worker.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import socket
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from web.settings import Settings


@dataclass(frozen=True)
class Identity:
    """Who this process is: ``node`` names the host's spool, ``worker`` this very process."""

    node: str
    worker: str


_identities: dict[tuple[Path, int], Identity] = {}


def identity(settings: Settings) -> Identity:
    """This process's identity; the node id is kept in the spool dir so restarts keep it."""
    cache_key = (settings.spool_dir, os.getpid())
    found = _identities.get(cache_key)
    if found is not None:
        return found
    spool = settings.spool_dir
    spool.mkdir(parents=True, exist_ok=True)
    path = spool / "node-id"
    with contextlib.suppress(FileExistsError):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(uuid.uuid4().hex)
    # The host name too: containers sharing a volume must not take each other's spools.
    node = f"{socket.gethostname()}/{path.read_text().strip()}"
    found = Identity(node, f"{node}|{os.getpid()}|{secrets.token_hex(4)}")
    _identities[cache_key] = found
    return found


def owner_is_dead(me: Identity, claimed_by: str | None, claimed_until: datetime | None) -> bool:
    """Whether the process that claimed a row can no longer be working on it."""
    now = datetime.now(UTC)
    if not claimed_by or claimed_until is None or claimed_until < now:
        return True
    if claimed_by == me.worker:
        return False
    owner_node, _, rest = claimed_by.partition("|")
    pid = rest.split("|", 1)[0]
    # A claim of another host runs until it expires; on this host a gone pid frees it now.
    if owner_node != me.node or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False
