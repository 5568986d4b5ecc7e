"""Real processes: kill -9 between the state change and its delivery; two workers at once."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from standardwebhooks.webhooks import Webhook

from tests.conftest import ROOT, ServerProcess, make_tenant
from tests.webhooks.conftest import Receiver, add_endpoint, new_call, queue_events, upload
from web.models import WebhookDelivery
from web.settings import Settings
from web.webhooks import endpoints, events

pytestmark = pytest.mark.usefixtures("db")


async def wait_for(check: Callable[[], Any], within: float, what: str) -> None:
    """Poll ``check`` (sync or async) while this loop keeps serving the receiver."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while loop.time() < deadline:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def workers(
    tmp_path: Path,
) -> Iterator[Callable[[dict[str, str], int], list[subprocess.Popen[bytes]]]]:
    """Start ``talkturo worker`` processes; each is stopped after the test."""
    started: list[subprocess.Popen[bytes]] = []

    def start(env: dict[str, str], count: int) -> list[subprocess.Popen[bytes]]:
        full = {"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/tmp"), **env}
        for i in range(count):
            with (tmp_path / f"worker-{len(started)}-{i}.log").open("ab") as log:
                started.append(
                    subprocess.Popen(
                        [sys.executable, "-m", "web", "worker"],
                        env=full,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        cwd=ROOT,
                    )
                )
        return started[-count:]

    yield start
    for proc in started:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


async def test_kill_9_after_the_state_change_loses_no_event(
    env: dict[str, str],
    server_factory: Callable[..., ServerProcess],
    receiver: Receiver,
    speech_wav: bytes,
    db_backend: str,
) -> None:
    tenant = await make_tenant("Org A")
    # The web process runs no worker: the event can only be sent after it is gone.
    first = server_factory({**env, "TALKTURO_EMBEDDED_WORKER": "0"})
    async with httpx.AsyncClient(base_url=first.url, timeout=60) as http:
        hook = await add_endpoint(http, tenant, receiver.url)
        call_id = await new_call(http, tenant)
        await upload(http, tenant, call_id, speech_wav)
    first.kill9()
    (row,) = await WebhookDelivery.filter(endpoint_id=hook["id"])
    assert (row.status, row.type, str(row.call_id)) == ("pending", "recording.available", call_id)
    assert receiver.received == []

    server_factory({**env, "TALKTURO_EMBEDDED_WORKER": "1"})
    await wait_for(lambda: receiver.received, 60, "the delivery after the restart")
    got = receiver.received[0]
    payload = Webhook(hook["secret"]).verify(got.body, got.headers)
    assert got.headers["webhook-id"] == row.event_id
    assert payload["data"]["call"]["id"] == call_id
    assert payload["data"]["call"]["recording"]["status"] == "available"


async def test_two_worker_processes_deliver_each_event_exactly_once(
    env: dict[str, str],
    settings: Settings,
    workers: Callable[[dict[str, str], int], list[subprocess.Popen[bytes]]],
    receiver: Receiver,
    db_backend: str,
) -> None:
    tenant = await make_tenant("Org A")
    endpoint, secret = await endpoints.create(
        tenant.org.id, settings, receiver.url, list(events.EVENT_TYPES)
    )
    count = 40
    kinds = [events.EVENT_TYPES[i % len(events.EVENT_TYPES)] for i in range(count)]
    assert await queue_events(tenant.org.id, kinds) == count
    procs = workers(env, 2)

    async def all_delivered() -> bool:
        return (
            await WebhookDelivery.filter(endpoint_id=endpoint.id, status="delivered").count()
            == count
        )

    await wait_for(all_delivered, 90, "every delivery")
    # One more pass of both workers: nothing is sent again.
    await asyncio.sleep(4.5)
    assert all(p.poll() is None for p in procs)
    seen = Counter(receiver.ids())
    assert len(seen) == count
    assert set(seen.values()) == {1}
    for got in receiver.received:
        Webhook(secret).verify(got.body, got.headers)
    attempts = await WebhookDelivery.filter(endpoint_id=endpoint.id).values_list(
        "attempts", flat=True
    )
    assert set(attempts) == {1}
