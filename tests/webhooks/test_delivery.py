"""Delivery: signed per Standard Webhooks, retried on schedule, never lost, never stuck."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import httpx
import pytest
from litestar import Litestar
from prometheus_client import REGISTRY
from standardwebhooks.webhooks import Webhook, WebhookVerificationError
from tortoise.transactions import in_transaction

from tests.conftest import Tenant
from tests.webhooks.conftest import (
    Receiver,
    add_endpoint,
    deliver_until,
    new_call,
    upload,
)
from web.models import Recording, RecordingStatus, WebhookDelivery
from web.settings import Settings
from web.webhooks import events, outbox
from web.webhooks.delivery import RETRY_DELAYS_S, Dispatcher, close_worker, retry_delay
from web.worker import run_pass


def _sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_available_is_delivered_signed_with_the_call_json(
    client: httpx.AsyncClient,
    tenant: Tenant,
    receiver: Receiver,
    dispatcher: Dispatcher,
    speech_wav: bytes,
    db_backend: str,
) -> None:
    hook = await add_endpoint(client, tenant, receiver.url)
    call_id = await new_call(client, tenant)
    delivered_before = _sample("talkturo_webhook_deliveries_total", outcome="delivered")
    await upload(client, tenant, call_id, speech_wav)
    # The event exists as soon as the recording is available, before any delivery.
    rows = await WebhookDelivery.filter(endpoint_id=hook["id"])
    assert [(r.type, str(r.call_id), r.status) for r in rows] == [
        ("recording.available", call_id, "pending")
    ]

    await deliver_until(dispatcher, lambda: receiver.received)
    got = receiver.received[0]
    payload = Webhook(hook["secret"]).verify(got.body, got.headers)
    assert got.headers["webhook-id"] == rows[0].event_id
    assert got.headers["webhook-signature"].startswith("v1,")
    assert abs(int(got.headers["webhook-timestamp"]) - int(rows[0].occurred_at.timestamp())) < 60
    assert payload["type"] == "recording.available"
    assert payload["timestamp"] == rows[0].occurred_at.isoformat()
    api = (await client.get(f"/api/v1/calls/{call_id}", headers=tenant.api())).json()
    sent = payload["data"]["call"]
    assert sent["recording"]["status"] == "available"
    # The same JSON as GET /api/v1/calls/{id}; only the signed link's expiry may differ.
    sent_url, api_url = sent["recording"].pop("url"), api["recording"].pop("url")
    assert sent_url.split("?")[0] == api_url.split("?")[0] == f"/api/v1/calls/{call_id}/recording"
    assert sent == api
    # A wrong secret does not verify.
    with pytest.raises(WebhookVerificationError):
        Webhook("whsec_" + "A" * 44).verify(got.body, got.headers)

    log = await client.get(f"/api/v1/webhooks/{hook['id']}/deliveries", headers=tenant.api())
    (item,) = log.json()["items"]
    assert item["status"] == "delivered"
    assert item["attempts"] == 1
    assert item["last_status_code"] == 200
    assert item["delivered_at"] is not None
    assert item["next_attempt_at"] is None
    assert _sample("talkturo_webhook_deliveries_total", outcome="delivered") == delivered_before + 1


async def test_500s_then_200_retries_with_the_same_event_id(
    client: httpx.AsyncClient,
    tenant: Tenant,
    receiver: Receiver,
    dispatcher: Dispatcher,
    speech_wav: bytes,
    db_backend: str,
) -> None:
    hook = await add_endpoint(client, tenant, receiver.url)
    receiver.script = [500, 503, 500]
    failures_before = _sample("talkturo_webhook_delivery_failures_total")
    await upload(client, tenant, await new_call(client, tenant), speech_wav)
    await deliver_until(dispatcher, lambda: len(receiver.received) == 4)
    assert len(set(receiver.ids())) == 1
    for got in receiver.received:
        Webhook(hook["secret"]).verify(got.body, got.headers)
    (row,) = await WebhookDelivery.filter(endpoint_id=hook["id"])
    assert row.status == "delivered"
    assert row.attempts == 4
    assert row.last_status_code == 200
    assert _sample("talkturo_webhook_delivery_failures_total") == failures_before + 3


async def test_endpoint_down_then_up(
    client: httpx.AsyncClient,
    tenant: Tenant,
    dispatcher: Dispatcher,
    speech_wav: bytes,
    db_backend: str,
) -> None:
    receiver = Receiver(0)
    await receiver.start()
    port = receiver.port
    await receiver.stop()  # down: nothing listens on the port
    hook = await add_endpoint(client, tenant, f"http://127.0.0.1:{port}/hooks/talkturo")
    await upload(client, tenant, await new_call(client, tenant), speech_wav)

    async def failed_twice() -> bool:
        row = await WebhookDelivery.get(endpoint_id=hook["id"])
        return row.attempts >= 2

    await deliver_until(dispatcher, failed_twice)
    row = await WebhookDelivery.get(endpoint_id=hook["id"])
    assert row.status == "pending"
    assert row.last_status_code is None
    assert row.last_error == "could not connect to the endpoint"
    assert str(port) not in row.last_error

    up = Receiver(port)
    await up.start()
    try:
        await deliver_until(dispatcher, lambda: up.received)
        Webhook(hook["secret"]).verify(up.received[0].body, up.received[0].headers)
        row = await WebhookDelivery.get(endpoint_id=hook["id"])
        assert row.status == "delivered"
        assert row.attempts >= 3
    finally:
        await up.stop()


async def test_after_the_whole_schedule_the_delivery_is_failed_and_can_be_redelivered(
    client: httpx.AsyncClient,
    tenant: Tenant,
    receiver: Receiver,
    dispatcher: Dispatcher,
    speech_wav: bytes,
) -> None:
    hook = await add_endpoint(client, tenant, receiver.url)
    receiver.script = [500] * (len(RETRY_DELAYS_S) + 1)
    await upload(client, tenant, await new_call(client, tenant), speech_wav)

    async def failed() -> bool:
        return (await WebhookDelivery.get(endpoint_id=hook["id"])).status == "failed"

    await deliver_until(dispatcher, failed)
    row = await WebhookDelivery.get(endpoint_id=hook["id"])
    assert row.attempts == len(RETRY_DELAYS_S) + 1
    assert row.last_status_code == 500
    assert row.last_error == "the endpoint answered HTTP 500"

    receiver.script = []
    retry = await client.post(
        f"/api/v1/webhooks/{hook['id']}/deliveries/{row.id}/retry", headers=tenant.api()
    )
    assert retry.status_code == 200, retry.text
    assert retry.json()["status"] == "pending"
    await deliver_until(dispatcher, lambda: len(receiver.received) == len(RETRY_DELAYS_S) + 2)
    row = await WebhookDelivery.get(endpoint_id=hook["id"])
    assert row.status == "delivered"
    assert len(set(receiver.ids())) == 1


def test_the_retry_schedule() -> None:
    waits = [retry_delay(n) for n in range(1, len(RETRY_DELAYS_S) + 2)]
    assert waits[:5] == [5, 30, 120, 600, 3600]
    assert set(waits[5:-1]) == {3 * 3600}
    # Every 3 h for 24 h after the first hour, then failed.
    assert sum(w for w in waits[5:-1] if w) == 24 * 3600
    assert waits[-1] is None
    assert retry_delay(2, 0.5) == 15


async def test_a_rolled_secret_signs_beside_the_old_one_for_a_day(
    client: httpx.AsyncClient,
    tenant: Tenant,
    receiver: Receiver,
    dispatcher: Dispatcher,
    speech_wav: bytes,
) -> None:
    hook = await add_endpoint(client, tenant, receiver.url)
    rolled = await client.post(f"/api/v1/webhooks/{hook['id']}/roll-secret", headers=tenant.api())
    new_secret = rolled.json()["secret"]
    await upload(client, tenant, await new_call(client, tenant), speech_wav)
    await deliver_until(dispatcher, lambda: receiver.received)
    got = receiver.received[0]
    assert len(got.headers["webhook-signature"].split(" ")) == 2
    Webhook(new_secret).verify(got.body, got.headers)
    Webhook(hook["secret"]).verify(got.body, got.headers)


async def test_events_only_for_subscribed_enabled_endpoints_of_the_org(
    client: httpx.AsyncClient,
    tenant: Tenant,
    other_tenant: Tenant,
    receiver: Receiver,
    dispatcher: Dispatcher,
    speech_wav: bytes,
) -> None:
    wanted = await add_endpoint(client, tenant, receiver.url)
    other_event = await add_endpoint(client, tenant, receiver.url, ["recording.purged"])
    disabled = await add_endpoint(client, tenant, receiver.url)
    await client.patch(
        f"/api/v1/webhooks/{disabled['id']}", json={"enabled": False}, headers=tenant.api()
    )
    other_org = await add_endpoint(client, other_tenant, receiver.url)
    await upload(client, tenant, await new_call(client, tenant), speech_wav)
    await deliver_until(dispatcher, lambda: receiver.received)
    await dispatcher.pass_once()
    await dispatcher.drain()
    assert len(receiver.received) == 1
    Webhook(wanted["secret"]).verify(receiver.received[0].body, receiver.received[0].headers)
    for quiet in (other_event, disabled, other_org):
        assert await WebhookDelivery.filter(endpoint_id=quiet["id"]).count() == 0


async def test_the_event_is_written_with_the_state_change_or_not_at_all(
    client: httpx.AsyncClient, tenant: Tenant, receiver: Receiver, speech_wav: bytes
) -> None:
    hook = await add_endpoint(client, tenant, receiver.url, ["recording.deleted"])
    call_id = await new_call(client, tenant)
    await upload(client, tenant, call_id, speech_wav)
    rec = await Recording.get(call_id=call_id)

    class Boom(Exception):
        pass

    async def change_then_fail() -> None:
        async with in_transaction():
            await Recording.filter(id=rec.id).update(status=RecordingStatus.DELETED)
            await outbox.record(events.RECORDING_DELETED, tenant.org.id, call_id)
            raise Boom

    with pytest.raises(Boom):
        await change_then_fail()
    assert (await Recording.get(id=rec.id)).status == "available"
    assert await WebhookDelivery.filter(endpoint_id=hook["id"]).count() == 0

    deleted = await client.delete(f"/api/v1/calls/{call_id}/recording", headers=tenant.api())
    assert deleted.status_code in (200, 204), deleted.text
    (row,) = await WebhookDelivery.filter(endpoint_id=hook["id"])
    assert row.type == "recording.deleted"


async def test_a_dead_endpoint_does_not_hold_up_the_others(
    client: httpx.AsyncClient,
    tenant: Tenant,
    receiver: Receiver,
    settings: Settings,
    speech_wav: bytes,
) -> None:
    # A long attempt limit: the stuck endpoint's attempts stay open for the whole test.
    patient = replace(settings, endpoints=replace(settings.endpoints, webhook_timeout_s=60))
    dispatcher = Dispatcher(patient)
    slow = Receiver(0, hang=True)
    await slow.start()
    try:
        stuck = await add_endpoint(client, tenant, slow.url)
        healthy = await add_endpoint(client, tenant, receiver.url)
        for _ in range(3):
            await upload(client, tenant, await new_call(client, tenant), speech_wav)
        # Passes without waiting for what is in flight, as the worker loop runs them.
        for _ in range(500):
            await dispatcher.pass_once()
            if len(receiver.received) == 3:
                break
            await asyncio.sleep(0.01)
        # All of the healthy endpoint's events arrived while the stuck ones are still open.
        assert len(receiver.received) == 3
        await slow.arrived.wait()
        stuck_rows = await WebhookDelivery.filter(endpoint_id=stuck["id"])
        assert [r.attempts for r in stuck_rows] == [0, 0, 0]
        assert sum(1 for r in stuck_rows if r.claimed_by) == 2
        ok_rows = await WebhookDelivery.filter(endpoint_id=healthy["id"], status="delivered")
        assert len(ok_rows) == 3
    finally:
        await dispatcher.close()
        await slow.stop()


async def test_the_oldest_pending_age_is_a_metric(
    client: httpx.AsyncClient,
    tenant: Tenant,
    dispatcher: Dispatcher,
    speech_wav: bytes,
) -> None:
    await add_endpoint(client, tenant, "http://127.0.0.1:9/hook")
    await upload(client, tenant, await new_call(client, tenant), speech_wav)
    row = await WebhookDelivery.first()
    assert row is not None
    await WebhookDelivery.filter(id=row.id).update(
        created_at=row.created_at.replace(year=row.created_at.year - 1)
    )
    await dispatcher.pass_once()
    assert _sample("talkturo_webhook_oldest_pending_seconds") > 300 * 86400


async def test_the_worker_pass_does_not_wait_for_a_hanging_endpoint(
    client: httpx.AsyncClient,
    app: Litestar,
    tenant: Tenant,
    speech_wav: bytes,
) -> None:
    slow = Receiver(0, hang=True)
    await slow.start()
    try:
        hook = await add_endpoint(client, tenant, slow.url)
        await upload(client, tenant, await new_call(client, tenant), speech_wav)
        done = await run_pass(app.state)
        # The pass is over (recovery, purge and the rest ran) while the send is still open.
        assert done["webhooks"] == 1
        dispatcher = app.state.webhook_dispatcher
        assert len(dispatcher.tasks) == 1
        await slow.arrived.wait()
        row = await WebhookDelivery.get(endpoint_id=hook["id"])
        assert (row.status, row.attempts) == ("pending", 0)
        assert row.claimed_by == dispatcher.worker
    finally:
        await close_worker(app.state)
        await slow.stop()
